#include "src/pipeline/checkpoint.h"

#include <fmt/format.h>

#include <sstream>

namespace ctrjoin {

namespace {

constexpr std::string_view kMagicPrefix = "ctrjoin-checkpoint ";

const char* StreamToken(StreamKind s) {
  return s == StreamKind::kImpression ? "impressions" : "clicks";
}

bool ParseStream(const std::string& token, StreamKind& out) {
  if (token == "impressions")
    out = StreamKind::kImpression;
  else if (token == "clicks")
    out = StreamKind::kClick;
  else
    return false;
  return true;
}

}  // namespace

std::string CheckpointMeta::Encode() const {
  std::string out = fmt::format("{}{}\n", kMagicPrefix, kFormat);
  out += fmt::format(
      "epoch {}\nshards {}\nkey_groups {}\nchangelog_generation {}\nwatermark {}\ncreated_ms "
      "{}\nstate_bytes {}\n",
      epoch, shards, key_groups, changelog_generation, watermark.ms, created_ms, state_bytes);
  for (size_t i = 0; i < shard_logs.size(); ++i) {
    out += fmt::format("shard_log {} {} {}\n", i, shard_logs[i].segment, shard_logs[i].offset);
  }
  for (const auto& [p, next] : positions) {
    out += fmt::format("position {} {} {}\n", StreamToken(p.stream), p.partition, next);
  }
  for (const auto& [p, ts] : partition_max_ts) {
    out += fmt::format("max_ts {} {} {}\n", StreamToken(p.stream), p.partition, ts.ms);
  }
  out += "end\n";
  return out;
}

Result<CheckpointMeta> CheckpointMeta::Decode(std::string_view text) {
  std::istringstream in{std::string(text)};
  std::string line;
  if (!std::getline(in, line) || !line.starts_with(kMagicPrefix)) {
    return Status::Corruption("checkpoint metadata: not a ctrjoin checkpoint (first line '" + line +
                              "')");
  }
  if (line != fmt::format("{}{}", kMagicPrefix, kFormat)) {
    return Status::InvalidArgument(fmt::format(
        "checkpoint metadata: format '{}' is not this version's ({}): format 1 held RocksDB "
        "snapshots of each shard, this version restores from changelogs. Finish the job with "
        "the version that wrote it, or start it over (an empty checkpoint.dir, a new output and "
        "consumer group)",
        line.substr(kMagicPrefix.size()), kFormat));
  }
  CheckpointMeta m;
  bool ended = false;
  int line_no = 1;
  while (std::getline(in, line)) {
    ++line_no;
    std::istringstream fields(line);
    std::string key;
    fields >> key;
    bool ok = true;
    if (key == "epoch") {
      ok = static_cast<bool>(fields >> m.epoch);
    } else if (key == "shards") {
      ok = static_cast<bool>(fields >> m.shards);
    } else if (key == "key_groups") {
      ok = static_cast<bool>(fields >> m.key_groups);
    } else if (key == "changelog_generation") {
      ok = static_cast<bool>(fields >> m.changelog_generation);
    } else if (key == "shard_log") {
      size_t i = 0;
      ShardLogPosition pos;
      ok = static_cast<bool>(fields >> i >> pos.segment >> pos.offset) && i == m.shard_logs.size();
      if (ok) m.shard_logs.push_back(pos);
    } else if (key == "watermark") {
      ok = static_cast<bool>(fields >> m.watermark.ms);
    } else if (key == "created_ms") {
      ok = static_cast<bool>(fields >> m.created_ms);
    } else if (key == "state_bytes") {
      ok = static_cast<bool>(fields >> m.state_bytes);
    } else if (key == "position" || key == "max_ts") {
      std::string stream;
      PartitionId p;
      int64_t value = 0;
      ok = static_cast<bool>(fields >> stream >> p.partition >> value) &&
           ParseStream(stream, p.stream);
      if (key == "position")
        m.positions[p] = value;
      else
        m.partition_max_ts.emplace_back(p, EventTime{value});
    } else if (key == "end") {
      ended = true;
      break;
    } else {
      ok = false;
    }
    if (!ok) {
      return Status::Corruption(
          fmt::format("checkpoint metadata line {}: cannot read '{}'", line_no, line));
    }
  }
  if (!ended) return Status::Corruption("checkpoint metadata: truncated (no 'end' line)");
  if (m.epoch == 0) return Status::Corruption("checkpoint metadata: no epoch");
  if (m.key_groups == 0 || m.shards == 0 || m.shard_logs.size() != m.shards) {
    return Status::Corruption("checkpoint metadata: no key_groups, shards or shard_log lines");
  }
  return m;
}

}  // namespace ctrjoin
