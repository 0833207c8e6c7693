#include "src/io/replay_range.h"

#include <fmt/format.h>

#include <charconv>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <vector>

#include "src/io/kafka_client.h"

namespace ctrjoin {

namespace {

constexpr int kRequestTimeoutMs = 10'000;
constexpr int64_t kYearMs = 366LL * 24 * 3600 * 1000;

Result<int64_t> ParseInt(std::string_view text, std::string_view option, std::string_view what) {
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size()) {
    return Status::InvalidArgument(
        fmt::format("{}: expected {}, got '{}'", option, what, std::string(text)));
  }
  return v;
}

std::string OffsetsText(const std::map<int32_t, int64_t>& offsets) {
  std::string out;
  for (const auto& [p, o] : offsets) out += fmt::format("{}{}={}", out.empty() ? "" : ",", p, o);
  return out;
}

// Offsets-for-times for every partition of topic at time ms; partitions
// with no record at or after ms get `none`.
Result<std::map<int32_t, int64_t>> OffsetsForTime(rd_kafka_t* rk, const std::string& topic,
                                                  const std::vector<int32_t>& partitions,
                                                  int64_t ms,
                                                  const std::map<int32_t, int64_t>& none) {
  KafkaPartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size())));
  for (int32_t p : partitions) {
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p)->offset = ms;
  }
  CTRJOIN_RETURN_IF_ERROR(KafkaStatus(rd_kafka_offsets_for_times(rk, list.get(), kRequestTimeoutMs),
                                      fmt::format("replay: offsets for time {} in {}", ms, topic)));
  std::map<int32_t, int64_t> out;
  for (int i = 0; i < list->cnt; ++i) {
    const rd_kafka_topic_partition_t& e = list->elems[i];
    CTRJOIN_RETURN_IF_ERROR(KafkaStatus(
        e.err, fmt::format("replay: offset for time {} in {}[{}]", ms, topic, e.partition)));
    out[e.partition] = e.offset >= 0 ? e.offset : none.at(e.partition);
  }
  return out;
}

// The smallest record timestamp among the records at these offsets (the
// first record of each non-empty range).
Result<int64_t> FirstTimestamp(rd_kafka_t* rk, const std::string& topic,
                               const std::map<int32_t, int64_t>& start,
                               const std::map<int32_t, int64_t>& end) {
  KafkaPartitionList list(rd_kafka_topic_partition_list_new(0));
  for (const auto& [p, offset] : start) {
    if (offset < end.at(p)) {
      rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p)->offset = offset;
    }
  }
  int64_t first = std::numeric_limits<int64_t>::max();
  if (list->cnt == 0) return first;
  CTRJOIN_RETURN_IF_ERROR(KafkaStatus(rd_kafka_assign(rk, list.get()), "replay: assigning"));
  std::map<int32_t, bool> seen;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(kRequestTimeoutMs);
  while (seen.size() < static_cast<size_t>(list->cnt) &&
         std::chrono::steady_clock::now() < deadline) {
    KafkaMessage msg(rd_kafka_consumer_poll(rk, 100));
    if (!msg || msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) continue;
    if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_assign(rk, nullptr);
      return KafkaStatus(
          msg->err,
          fmt::format("replay: reading the first record of {}[{}]", topic, msg->partition),
          rd_kafka_message_errstr(msg.get()));
    }
    if (seen.contains(msg->partition)) continue;
    seen[msg->partition] = true;
    // Past the range's end (only aborted or control records inside it): no
    // first record there.
    if (msg->offset >= end.at(msg->partition)) continue;
    rd_kafka_timestamp_type_t type;
    const int64_t ts = rd_kafka_message_timestamp(msg.get(), &type);
    if (ts >= 0) first = std::min(first, ts);
  }
  rd_kafka_assign(rk, nullptr);
  if (seen.size() < static_cast<size_t>(list->cnt)) {
    return Status::TimedOut(
        fmt::format("replay: could not read the first records of the range in {} within {} ms",
                    topic, kRequestTimeoutMs));
  }
  return first;
}

}  // namespace

Status ReplayRange::Validate() const {
  if (!start_offsets.empty() && start_ms) {
    return Status::InvalidArgument("--start-offsets: give either --start-offsets or --start-time");
  }
  if (!end_offsets.empty() && end_ms) {
    return Status::InvalidArgument("--end-offsets: give either --end-offsets or --end-time");
  }
  if ((start_ms && *start_ms < 0) || (end_ms && *end_ms < 0)) {
    return Status::InvalidArgument(fmt::format(
        "{}: must not be before 1970", start_ms && *start_ms < 0 ? "--start-time" : "--end-time"));
  }
  if (start_ms && end_ms && *end_ms <= *start_ms) {
    return Status::InvalidArgument(
        fmt::format("--end-time: must be after --start-time ({} <= {})", *end_ms, *start_ms));
  }
  for (const auto& [p, o] : start_offsets) {
    if (auto e = end_offsets.find(p); e != end_offsets.end() && e->second < o) {
      return Status::InvalidArgument(fmt::format(
          "--end-offsets: partition {} ends at {}, before its start offset {}", p, e->second, o));
    }
  }
  if (click_lookback_ms < 0 || click_lookback_ms > kYearMs) {
    return Status::InvalidArgument(
        fmt::format("--click-lookback-ms: must be in [0, one year], got {}", click_lookback_ms));
  }
  return Status::Ok();
}

std::string ReplayRange::Describe() const {
  std::string from = start_ms                 ? fmt::format("time {}", *start_ms)
                     : !start_offsets.empty() ? "offsets " + OffsetsText(start_offsets)
                                              : std::string("earliest");
  std::string to = end_ms                 ? fmt::format("time {}", *end_ms)
                   : !end_offsets.empty() ? "offsets " + OffsetsText(end_offsets)
                                          : std::string("the end at start-up");
  return fmt::format("from {} to {}", from, to);
}

Result<std::map<int32_t, int64_t>> ParsePartitionOffsets(std::string_view text,
                                                         std::string_view option) {
  std::map<int32_t, int64_t> out;
  if (text.ends_with(',')) {
    return Status::InvalidArgument(
        fmt::format("{}: trailing comma in '{}'", option, std::string(text)));
  }
  while (!text.empty()) {
    const size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      return Status::InvalidArgument(
          fmt::format("{}: expected partition=offset[,partition=offset...], got '{}'", option,
                      std::string(item)));
    }
    Result<int64_t> p = ParseInt(item.substr(0, eq), option, "a partition number");
    if (!p.ok()) return p.status();
    Result<int64_t> o = ParseInt(item.substr(eq + 1), option, "an offset");
    if (!o.ok()) return o.status();
    if (*p < 0 || *p > std::numeric_limits<int32_t>::max() || *o < 0) {
      return Status::InvalidArgument(fmt::format(
          "{}: partition and offset must not be negative: '{}'", option, std::string(item)));
    }
    if (!out.emplace(static_cast<int32_t>(*p), *o).second) {
      return Status::InvalidArgument(fmt::format("{}: partition {} given twice", option, *p));
    }
  }
  if (out.empty()) return Status::InvalidArgument(fmt::format("{}: no partitions given", option));
  return out;
}

Result<int64_t> ParseTimestampMs(std::string_view text, std::string_view option) {
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos) {
    return ParseInt(text, option, "a time");
  }
  const Status bad = Status::InvalidArgument(fmt::format(
      "{}: expected a UTC time like 2026-11-20T10:00:00Z (or .250Z) or milliseconds since the "
      "epoch, got '{}'",
      option, std::string(text)));
  // YYYY-MM-DDTHH:MM:SS[.mmm]Z, digits exactly where the layout has them.
  const std::string_view layout = "dddd-dd-ddTdd:dd:dd";
  if (text.size() != layout.size() + 1 && text.size() != layout.size() + 5) return bad;
  for (size_t i = 0; i < layout.size(); ++i) {
    const bool digit = text[i] >= '0' && text[i] <= '9';
    if (layout[i] == 'd' ? !digit : text[i] != layout[i]) return bad;
  }
  auto num = [&](size_t at, size_t len) {
    int v = 0;
    for (size_t i = at; i < at + len; ++i) v = v * 10 + (text[i] - '0');
    return v;
  };
  int ms = 0;
  std::string_view rest = text.substr(layout.size());
  if (rest.size() == 5) {
    if (rest[0] != '.') return bad;
    for (size_t i = 1; i < 4; ++i) {
      if (rest[i] < '0' || rest[i] > '9') return bad;
    }
    ms = num(layout.size() + 1, 3);
    rest = rest.substr(4);
  }
  if (rest != "Z") return bad;
  std::tm tm{};
  tm.tm_year = num(0, 4) - 1900;
  tm.tm_mon = num(5, 2) - 1;
  tm.tm_mday = num(8, 2);
  tm.tm_hour = num(11, 2);
  tm.tm_min = num(14, 2);
  tm.tm_sec = num(17, 2);
  const std::tm given = tm;
  const std::time_t secs = timegm(&tm);
  // timegm normalises (Feb 31 -> Mar 3): a changed field means it was out of range.
  if (tm.tm_year != given.tm_year || tm.tm_mon != given.tm_mon || tm.tm_mday != given.tm_mday ||
      tm.tm_hour != given.tm_hour || tm.tm_min != given.tm_min || tm.tm_sec != given.tm_sec ||
      secs < 0) {
    return bad;
  }
  return static_cast<int64_t>(secs) * 1000 + ms;
}

std::string ResolvedRange::Describe() const {
  std::string out;
  for (const auto& [id, s] : start) {
    out += fmt::format("{}{}[{}] {}..{}", out.empty() ? "" : ", ", StreamName(id.stream),
                       id.partition, s, end.at(id));
  }
  return out;
}

Result<ResolvedRange> ResolveReplayRange(const KafkaSourceOptions& source,
                                         const ReplayRange& range) {
  CTRJOIN_RETURN_IF_ERROR(range.Validate());
  std::map<std::string, std::string> properties = {
      {"bootstrap.servers", source.brokers},
      {"group.id", source.group_id},
      {"isolation.level", "read_committed"},
      {"enable.auto.commit", "false"},
  };
  for (const auto& [name, value] : source.properties) properties[name] = value;
  Result<KafkaConf> conf = MakeKafkaConf(properties);
  if (!conf.ok()) return conf.status().WithContext("source.kafka.properties");
  Result<KafkaHandle> consumer = MakeKafkaHandle(RD_KAFKA_CONSUMER, std::move(conf).value());
  if (!consumer.ok()) return consumer.status().WithContext("replay");
  rd_kafka_t* rk = consumer->get();
  rd_kafka_poll_set_consumer(rk);

  ResolvedRange out;
  // Per topic: low and high watermark offsets of every partition.
  auto bounds = [&](const std::string& topic, std::map<int32_t, int64_t>& low,
                    std::map<int32_t, int64_t>& high) -> Result<std::vector<int32_t>> {
    Result<std::vector<int32_t>> ids = KafkaTopicPartitions(rk, topic, kRequestTimeoutMs);
    if (!ids.ok()) return ids.status();
    for (int32_t p : *ids) {
      int64_t lo = 0, hi = 0;
      CTRJOIN_RETURN_IF_ERROR(KafkaStatus(
          rd_kafka_query_watermark_offsets(rk, topic.c_str(), p, &lo, &hi, kRequestTimeoutMs),
          fmt::format("replay: end offsets of {}[{}]", topic, p)));
      low[p] = lo;
      high[p] = hi;
    }
    return ids;
  };

  std::map<int32_t, int64_t> imp_low, imp_high;
  Result<std::vector<int32_t>> imp_ids = bounds(source.impressions_topic, imp_low, imp_high);
  if (!imp_ids.ok()) return imp_ids.status();
  for (const auto* given : {&range.start_offsets, &range.end_offsets}) {
    for (const auto& [p, o] : *given) {
      if (!imp_high.contains(p)) {
        return Status::InvalidArgument(
            fmt::format("{}: topic {} has no partition {} (it has {})",
                        given == &range.start_offsets ? "--start-offsets" : "--end-offsets",
                        source.impressions_topic, p, imp_high.size()));
      }
      if (o < imp_low[p] || o > imp_high[p]) {
        return Status::InvalidArgument(
            fmt::format("{}: offset {} of {}[{}] is outside its retained offsets [{}, {}]",
                        given == &range.start_offsets ? "--start-offsets" : "--end-offsets", o,
                        source.impressions_topic, p, imp_low[p], imp_high[p]));
      }
    }
  }

  std::map<int32_t, int64_t> imp_start = imp_low, imp_end = imp_high;
  if (range.start_ms) {
    auto r = OffsetsForTime(rk, source.impressions_topic, *imp_ids, *range.start_ms, imp_high);
    if (!r.ok()) return r.status();
    imp_start = *r;
  }
  for (const auto& [p, o] : range.start_offsets) imp_start[p] = o;
  if (range.end_ms) {
    auto r = OffsetsForTime(rk, source.impressions_topic, *imp_ids, *range.end_ms, imp_high);
    if (!r.ok()) return r.status();
    imp_end = *r;
  }
  for (const auto& [p, o] : range.end_offsets) imp_end[p] = o;
  for (int32_t p : *imp_ids) {
    if (imp_end[p] < imp_start[p]) {
      return Status::InvalidArgument(
          fmt::format("replay: {}[{}] would end at offset {} before it starts at {}",
                      source.impressions_topic, p, imp_end[p], imp_start[p]));
    }
    out.start[{StreamKind::kImpression, p}] = imp_start[p];
    out.end[{StreamKind::kImpression, p}] = imp_end[p];
    out.impressions += static_cast<uint64_t>(imp_end[p] - imp_start[p]);
  }

  // Clicks: from the range's start time minus the lookback.
  int64_t from_ms = 0;
  if (range.start_ms) {
    from_ms = *range.start_ms;
  } else if (!range.start_offsets.empty()) {
    Result<int64_t> first = FirstTimestamp(rk, source.impressions_topic, imp_start, imp_end);
    if (!first.ok()) return first.status();
    from_ms = *first;
  }
  std::map<int32_t, int64_t> clk_low, clk_high;
  Result<std::vector<int32_t>> clk_ids = bounds(source.clicks_topic, clk_low, clk_high);
  if (!clk_ids.ok()) return clk_ids.status();
  std::map<int32_t, int64_t> clk_start = clk_low;
  // No impression in the range: clicks from the start (none will match).
  if (from_ms == std::numeric_limits<int64_t>::max()) from_ms = 0;
  out.click_start_ms = from_ms > range.click_lookback_ms ? from_ms - range.click_lookback_ms : 0;
  if (out.click_start_ms > 0) {
    auto r = OffsetsForTime(rk, source.clicks_topic, *clk_ids, out.click_start_ms, clk_high);
    if (!r.ok()) return r.status();
    clk_start = *r;
  }
  for (int32_t p : *clk_ids) {
    out.start[{StreamKind::kClick, p}] = clk_start[p];
    out.end[{StreamKind::kClick, p}] = clk_high[p];
  }
  return out;
}

namespace {
constexpr std::string_view kRangeMagic = "ctrjoin-replay-range 1";
}  // namespace

Status SaveResolvedRange(const std::string& path, const ReplayRange& range,
                         const ResolvedRange& resolved) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  if (ec) return Status::IoError(fmt::format("replay: creating {}: {}", path, ec.message()));
  std::string text = fmt::format("{}\nspec {}\nclick_start_ms {}\nimpressions {}\n", kRangeMagic,
                                 range.Describe(), resolved.click_start_ms, resolved.impressions);
  for (const auto& [id, start] : resolved.start) {
    text += fmt::format("partition {} {} {} {}\n", static_cast<int>(id.stream), id.partition, start,
                        resolved.end.at(id));
  }
  text += "end\n";
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    out.flush();
    if (!out) return Status::IoError("replay: writing " + tmp);
  }
  fs::rename(tmp, path, ec);
  if (ec) return Status::IoError(fmt::format("replay: renaming {}: {}", tmp, ec.message()));
  return Status::Ok();
}

Result<ResolvedRange> LoadResolvedRange(const std::string& path, const ReplayRange& range) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("replay: no resolved range at " + path);
  const Status corrupt = Status::Corruption("replay: " + path +
                                            " is damaged; remove the replay's "
                                            "state dir to start it afresh");
  std::string line;
  if (!std::getline(in, line) || line != kRangeMagic) return corrupt;
  if (!std::getline(in, line) || !line.starts_with("spec ")) return corrupt;
  const std::string spec = line.substr(5);
  if (spec != range.Describe()) {
    return Status::InvalidArgument(fmt::format(
        "this replay was started with the range {}, not {}; resume it with the same range, or "
        "give a new --name",
        spec, range.Describe()));
  }
  ResolvedRange out;
  bool ended = false;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string key;
    words >> key;
    if (key == "click_start_ms") {
      words >> out.click_start_ms;
    } else if (key == "impressions") {
      words >> out.impressions;
    } else if (key == "partition") {
      int stream = -1;
      int32_t partition = -1;
      int64_t start = -1, end = -1;
      words >> stream >> partition >> start >> end;
      if (stream < 0 || stream > 1 || partition < 0 || start < 0 || end < start) return corrupt;
      const PartitionId id{static_cast<StreamKind>(stream), partition};
      out.start[id] = start;
      out.end[id] = end;
    } else if (key == "end") {
      ended = true;
      break;
    } else {
      return corrupt;
    }
    if (words.fail()) return corrupt;
  }
  if (!ended || out.start.empty()) return corrupt;
  return out;
}

}  // namespace ctrjoin
