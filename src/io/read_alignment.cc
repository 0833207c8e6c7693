#include "src/io/read_alignment.h"

#include <algorithm>
#include <optional>

namespace ctrjoin {

void ReadAlignment::Read(PartitionId id, int64_t timestamp_ms, int64_t next_offset,
                         int64_t now_ms) {
  Partition& p = partitions_[id];
  p.max_timestamp_ms = std::max(p.max_timestamp_ms, timestamp_ms);
  p.next_offset = std::max(p.next_offset, next_offset);
  p.last_read_ms = now_ms;
}

ReadAlignment::Change ReadAlignment::Update(int64_t now_ms,
                                            const std::function<int64_t(PartitionId)>& end_of) {
  std::optional<int64_t> frontier;
  for (const auto& [id, p] : partitions_) {
    if (p.paused || p.max_timestamp_ms < 0 || now_ms - p.last_read_ms > kStalledAfterMs) continue;
    if (p.next_offset >= end_of(id)) continue;  // caught up (or its end unknown)
    frontier = std::min(frontier.value_or(p.max_timestamp_ms), p.max_timestamp_ms);
  }
  Change change;
  for (auto& [id, p] : partitions_) {
    if (!p.paused && frontier && p.max_timestamp_ms > *frontier + max_ahead_ms_) {
      p.paused = true;
      change.pause.push_back(id);
    } else if (p.paused && (!frontier || p.max_timestamp_ms <= *frontier + max_ahead_ms_ / 2)) {
      p.paused = false;
      change.resume.push_back(id);
    }
  }
  return change;
}

int64_t ReadAlignment::paused() const {
  return std::count_if(partitions_.begin(), partitions_.end(),
                       [](const auto& entry) { return entry.second.paused; });
}

}  // namespace ctrjoin
