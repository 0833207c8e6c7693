#include "src/pipeline/checkpoint.h"

#include <fmt/format.h>

#include <sstream>

namespace ctrjoin {

namespace {

constexpr std::string_view kMagic = "ctrjoin-checkpoint 1";

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
  std::string out(kMagic);
  out += '\n';
  out += fmt::format("epoch {}\nshards {}\nwatermark {}\ncreated_ms {}\nstate_bytes {}\n", epoch,
                     shards, watermark.ms, created_ms, state_bytes);
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
  if (!std::getline(in, line) || line != kMagic) {
    return Status::Corruption("checkpoint metadata: not a ctrjoin checkpoint (first line '" + line +
                              "')");
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
  return m;
}

}  // namespace ctrjoin
