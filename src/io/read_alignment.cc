#include "src/io/read_alignment.h"

#include <algorithm>
#include <utility>

namespace ctrjoin {

void ReadAlignment::Assigned(PartitionId id) {
  partitions_[id] = Partition{};
  first_delivery_ms_.reset();
  frontier_ = kBeforeAll;
  frontier_id_.reset();
}

void ReadAlignment::Clear() {
  partitions_.clear();
  first_delivery_ms_.reset();
  frontier_.reset();
  frontier_id_.reset();
}

bool ReadAlignment::Waiting(const Partition& p, int64_t now_ms) const {
  // Until some partition delivered, every one waits.
  return !p.delivered && !p.paused &&
         (!first_delivery_ms_ || now_ms - *first_delivery_ms_ <= kStalledAfterMs);
}

void ReadAlignment::Recompute(int64_t now_ms) {
  frontier_.reset();
  frontier_id_.reset();
  for (const auto& [id, p] : partitions_) {
    int64_t at = p.max_timestamp_ms;
    if (Waiting(p, now_ms)) {
      at = kBeforeAll;
    } else if (p.max_timestamp_ms < 0 || now_ms - p.last_read_ms > kStalledAfterMs) {
      continue;
    } else if (const int64_t end = end_of_(id); end >= 0 && p.next_offset >= end) {
      continue;  // caught up
    }
    if (!frontier_ || at < *frontier_) {
      frontier_ = at;
      frontier_id_ = id;
    }
  }
}

bool ReadAlignment::Read(PartitionId id, int64_t timestamp_ms, int64_t next_offset,
                         int64_t now_ms) {
  Partition& p = partitions_[id];
  p.max_timestamp_ms = std::max(p.max_timestamp_ms, timestamp_ms);
  p.next_offset = std::max(p.next_offset, next_offset);
  p.last_read_ms = now_ms;
  if (!first_delivery_ms_) first_delivery_ms_ = now_ms;
  // Its first record: the frontier may no longer wait. (The slowest
  // partition's records move it too, but only up: the next Update sees
  // that; meanwhile the others pause a little early.)
  if (!std::exchange(p.delivered, true)) Recompute(now_ms);
  if (p.paused || !frontier_ || id == frontier_id_ || timestamp_ms < 0 ||
      timestamp_ms <= *frontier_ + max_ahead_ms_) {
    return false;
  }
  p.paused = true;
  return true;
}

ReadAlignment::Change ReadAlignment::Update(int64_t now_ms) {
  Recompute(now_ms);
  Change change;
  for (auto& [id, p] : partitions_) {
    if (!p.paused && frontier_ && p.max_timestamp_ms >= 0 &&
        p.max_timestamp_ms > *frontier_ + max_ahead_ms_) {
      p.paused = true;
      change.pause.push_back(id);
    } else if (p.paused && (!frontier_ || p.max_timestamp_ms <= *frontier_ + max_ahead_ms_ / 2)) {
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

std::vector<PartitionId> ReadAlignment::PausedIds() const {
  std::vector<PartitionId> ids;
  for (const auto& [id, p] : partitions_) {
    if (p.paused) ids.push_back(id);
  }
  return ids;
}

}  // namespace ctrjoin
