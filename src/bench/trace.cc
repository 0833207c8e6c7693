#include "src/bench/trace.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <memory>
#include <queue>
#include <string_view>
#include <unordered_map>
#include <variant>

#include "src/core/clock.h"
#include "src/core/hash.h"
#include "src/io/kafka_client.h"
#include "src/pipeline/event_parser.h"

namespace ctrjoin::bench {

namespace {

constexpr char kMagic[8] = {'E', '2', 'E', 'T', 'R', 'C', '0', '2'};

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

template <typename T>
bool Put(std::FILE* f, const T& v) {
  return std::fwrite(&v, sizeof(T), 1, f) == 1;
}
template <typename T>
bool Get(std::FILE* f, T& v) {
  return std::fread(&v, sizeof(T), 1, f) == 1;
}

}  // namespace

TraceBuilder::TraceBuilder(int32_t partitions, int64_t window_ms, const SchemaOptions& schema)
    : parser_(schema), now_ms_(WallClockMs()) {
  trace_.partitions_ = partitions;
  trace_.window_ms_ = window_ms;
}

int64_t TraceBuilder::EventTime(StreamKind stream, std::string_view json) {
  ParseResult parsed = parser_.Parse(stream, json, now_ms_);
  if (auto* imp = std::get_if<Impression>(&parsed)) return imp->ts.ms;
  if (auto* click = std::get_if<Click>(&parsed)) return click->ts.ms;
  return Trace::kNoTs;
}

void TraceBuilder::Add(StreamKind stream, std::string json) {
  Trace& t = trace_;
  const auto index = static_cast<uint32_t>(t.ts_.size());
  int64_t ts = Trace::kNoTs;
  bytes_ += json.size();
  ParseResult parsed = parser_.Parse(stream, json, now_ms_);
  if (auto* imp = std::get_if<Impression>(&parsed)) {
    ts = imp->ts.ms;
    impressions_[imp->impression_id].push_back(index);
  } else if (auto* click = std::get_if<Click>(&parsed)) {
    ts = click->ts.ms;
    clicks_.emplace_back(std::move(click->impression_id), index);
  }
  t.stream_.push_back(stream);
  t.ts_.push_back(ts);
  t.payloads_.push_back(std::move(json));
}

Trace TraceBuilder::Finish() {
  Trace& t = trace_;
  t.impressions_ = impressions_.size();
  t.impression_keys_.reserve(impressions_.size());
  for (const auto& [id, records] : impressions_) t.impression_keys_.push_back(ImpressionKey(id));
  std::sort(t.impression_keys_.begin(), t.impression_keys_.end());
  std::unordered_map<std::string_view, ClickedImpression> clicked;
  for (const auto& [id, click] : clicks_) {
    auto imp = impressions_.find(id);
    if (imp == impressions_.end()) continue;  // an orphan click
    const int64_t imp_ts = t.ts_[imp->second.front()];
    const int64_t click_ts = t.ts_[click];
    if (click_ts < imp_ts || click_ts > imp_ts + t.window_ms_) continue;
    ClickedImpression& c = clicked[imp->first];
    if (c.impressions[0] == ClickedImpression::kNone) {
      c.sample_id = ImpressionKey(imp->first);
      for (size_t i = 0; i < 2 && i < imp->second.size(); ++i) c.impressions[i] = imp->second[i];
    }
    for (uint32_t& slot : c.clicks) {
      if (slot == ClickedImpression::kNone) {
        slot = click;
        break;
      }
    }
  }
  for (auto& [id, c] : clicked) t.clicked_.push_back(c);
  std::sort(t.clicked_.begin(), t.clicked_.end(),
            [](const auto& a, const auto& b) { return a.sample_id < b.sample_id; });
  t.Index();
  impressions_.clear();
  clicks_.clear();
  return std::move(trace_);
}

Trace Trace::Generate(const TraceOptions& options) {
  TraceBuilder builder(options.partitions, options.window_ms, SchemaOptions{});
  WorkloadGenerator gen(options.workload);
  while (builder.size() < options.min_events) {
    GeneratedRecord g = gen.Next();
    builder.Add(g.stream, std::move(g.json));
  }
  GeneratedRecord tail;
  while (gen.Drain(tail)) builder.Add(tail.stream, std::move(tail.json));
  return builder.Finish();
}

void Trace::Index() {
  for (auto& v : by_stream_) v.clear();
  for (uint32_t i = 0; i < stream_.size(); ++i) {
    by_stream_[static_cast<size_t>(stream_[i])].push_back(i);
  }
}

uint32_t Trace::IndexOf(StreamKind stream, int32_t partition, int64_t offset) const {
  const std::vector<uint32_t>& v = by_stream_[static_cast<size_t>(stream)];
  const int64_t n = offset * partitions_ + partition;
  if (partition < 0 || partition >= partitions_ || offset < 0 ||
      n >= static_cast<int64_t>(v.size())) {
    return ClickedImpression::kNone;
  }
  return v[static_cast<size_t>(n)];
}

const ClickedImpression* Trace::FindClicked(uint64_t sample_id) const {
  auto it =
      std::lower_bound(clicked_.begin(), clicked_.end(), sample_id,
                       [](const ClickedImpression& c, uint64_t id) { return c.sample_id < id; });
  return it != clicked_.end() && it->sample_id == sample_id ? &*it : nullptr;
}

Status Trace::Write(const std::string& path) const {
  File f(std::fopen(path.c_str(), "wb"));
  if (!f) return Status::IoError("cannot create " + path);
  std::setvbuf(f.get(), nullptr, _IOFBF, 1 << 20);
  bool ok = std::fwrite(kMagic, sizeof(kMagic), 1, f.get()) == 1 && Put(f.get(), partitions_) &&
            Put(f.get(), window_ms_) && Put(f.get(), impressions_) &&
            Put(f.get(), static_cast<uint64_t>(clicked_.size()));
  for (const ClickedImpression& c : clicked_) ok = ok && Put(f.get(), c);
  ok = ok && Put(f.get(), static_cast<uint64_t>(size()));
  for (size_t i = 0; i < size(); ++i) {
    const std::string& p = payloads_[i];
    ok = ok && Put(f.get(), static_cast<uint8_t>(stream_[i])) && Put(f.get(), ts_[i]) &&
         Put(f.get(), static_cast<uint32_t>(p.size())) &&
         (p.empty() || std::fwrite(p.data(), p.size(), 1, f.get()) == 1);
  }
  if (!ok || std::fflush(f.get()) != 0) return Status::IoError("cannot write " + path);
  return Status::Ok();
}

Result<Trace> Trace::Read(const std::string& path, uint64_t limit, bool payloads) {
  File f(std::fopen(path.c_str(), "rb"));
  if (!f) return Status::IoError("cannot open " + path);
  std::setvbuf(f.get(), nullptr, _IOFBF, 1 << 20);
  const Status bad = Status::Corruption(path + ": not a complete e2e trace");
  char magic[sizeof(kMagic)];
  Trace t;
  uint64_t clicked = 0, records = 0;
  if (std::fread(magic, sizeof(magic), 1, f.get()) != 1 ||
      !std::equal(magic, magic + sizeof(magic), kMagic) || !Get(f.get(), t.partitions_) ||
      !Get(f.get(), t.window_ms_) || !Get(f.get(), t.impressions_) || !Get(f.get(), clicked)) {
    return bad;
  }
  t.clicked_.resize(clicked);
  for (ClickedImpression& c : t.clicked_) {
    if (!Get(f.get(), c)) return bad;
  }
  if (!Get(f.get(), records)) return bad;
  if (limit > 0) records = std::min(records, limit);
  t.stream_.resize(records);
  t.ts_.resize(records);
  t.payloads_.resize(payloads ? records : 0);
  for (size_t i = 0; i < records; ++i) {
    uint8_t stream = 0;
    uint32_t size = 0;
    if (!Get(f.get(), stream) || !Get(f.get(), t.ts_[i]) || !Get(f.get(), size)) return bad;
    t.stream_[i] = static_cast<StreamKind>(stream);
    if (payloads) {
      t.payloads_[i].resize(size);
      if (size > 0 && std::fread(t.payloads_[i].data(), size, 1, f.get()) != 1) return bad;
    } else if (std::fseek(f.get(), size, SEEK_CUR) != 0) {
      return bad;
    }
  }
  t.Index();
  return t;
}

SampleAccount AccountSamples(const Trace& trace, std::vector<uint64_t> written) {
  std::sort(written.begin(), written.end());
  SampleAccount a;
  const std::vector<uint64_t>& keys = trace.impression_keys();
  a.impressions = keys.size();
  size_t k = 0;
  for (size_t i = 0; i < written.size(); ++i) {
    if (i > 0 && written[i] == written[i - 1]) {
      ++a.written_twice;
      continue;
    }
    while (k < keys.size() && keys[k] < written[i]) ++k;
    if (k < keys.size() && keys[k] == written[i]) {
      ++a.with_sample;
    } else {
      ++a.unknown;
    }
  }
  a.without_sample = a.impressions - a.with_sample;
  return a;
}

Status ProduceTrace(const Trace& trace, const std::string& brokers) {
  auto producer = BulkProducer::Open({{"bootstrap.servers", brokers},
                                      {"enable.idempotence", "true"},
                                      {"linger.ms", "5"},
                                      {"batch.num.messages", "10000"},
                                      {"queue.buffering.max.messages", "1000000"},
                                      {"queue.buffering.max.kbytes", "1048576"}});
  if (!producer.ok()) return producer.status();
  Placement placement(trace.partitions());
  for (size_t i = 0; i < trace.size(); ++i) {
    const SourcePosition pos = placement.Next(trace.stream(i));
    const std::string topic = pos.stream == StreamKind::kImpression ? "impressions" : "clicks";
    CTRJOIN_RETURN_IF_ERROR((*producer)->Produce(topic, pos.partition, trace.payload(i)));
  }
  return (*producer)->Flush(120'000).WithContext("producing the trace");
}

void PartitionMerge::Add(StreamKind stream, int32_t partition, std::string json) {
  ++size_;
  bytes_ += json.size();
  partitions_[{stream, partition}].push_back(std::move(json));
}

void PartitionMerge::Into(TraceBuilder& builder) {
  using Id = std::pair<StreamKind, int32_t>;
  using Head = std::pair<int64_t, Id>;  // the event time of a partition's next record
  std::priority_queue<Head, std::vector<Head>, std::greater<>> heads;
  auto push = [&](const Id& id) {
    const std::deque<std::string>& records = partitions_[id];
    if (!records.empty()) heads.push({builder.EventTime(id.first, records.front()), id});
  };
  for (const auto& [id, records] : partitions_) push(id);
  while (!heads.empty()) {
    const Id id = heads.top().second;
    heads.pop();
    std::deque<std::string>& records = partitions_[id];
    builder.Add(id.first, std::move(records.front()));
    records.pop_front();
    push(id);
  }
  partitions_.clear();
  size_ = 0;
  bytes_ = 0;
}

}  // namespace ctrjoin::bench
