#include "src/pipeline/watermark.h"

#include <algorithm>

namespace ctrjoin {

void WatermarkTracker::Assign(PartitionId p, Clock::time_point now) {
  auto [it, inserted] = partitions_.try_emplace(p);
  if (inserted) it->second.last_activity = now;
}

void WatermarkTracker::Revoke(PartitionId p) { partitions_.erase(p); }

void WatermarkTracker::Finish(PartitionId p) { partitions_[p].finished = true; }

void WatermarkTracker::Observe(PartitionId p, EventTime ts, Clock::time_point now) {
  auto [it, inserted] = partitions_.try_emplace(p);
  PartitionState& s = it->second;
  s.max_ts = std::max(s.max_ts, ts);
  s.last_activity = now;
}

void WatermarkTracker::Pending(PartitionId p, EventTime next_ts, Clock::time_point now) {
  PartitionState& s = partitions_[p];
  s.last_activity = now;
  s.max_ts = std::max(s.max_ts, next_ts);
}

std::vector<std::pair<PartitionId, EventTime>> WatermarkTracker::Snapshot() const {
  std::vector<std::pair<PartitionId, EventTime>> out;
  // Partitions without data too: leaving them out would let a restored
  // tracker compute the watermark without them (before the source reports
  // its assignment again), past what the checkpoint's watermark allowed.
  for (const auto& [id, s] : partitions_) out.emplace_back(id, s.max_ts);
  return out;
}

void WatermarkTracker::Restore(const std::vector<std::pair<PartitionId, EventTime>>& max_ts,
                               EventTime watermark, Clock::time_point now) {
  for (const auto& [id, ts] : max_ts) {
    if (ts == EventTime::Min()) {
      Assign(id, now);  // known, no data yet: holds the watermark back
    } else {
      Observe(id, ts, now);
    }
  }
  current_ = std::max(current_, watermark);
}

void WatermarkTracker::FinishAll() {
  all_finished_ = true;
  current_ = EventTime::Max();
}

EventTime WatermarkTracker::Advance(Clock::time_point now) {
  if (all_finished_) return current_;
  const auto idle = std::chrono::milliseconds(options_.idle_timeout_ms);
  // If we ourselves did not run for a while (backpressure: nothing was read),
  // the partitions were not idle: move their activity forward by the gap.
  if (last_advance_ != Clock::time_point() && now - last_advance_ > idle) {
    const auto gap = now - last_advance_;
    for (auto& [id, s] : partitions_) s.last_activity += gap;
  }
  last_advance_ = now;
  EventTime low = EventTime::Max();
  size_t active = 0;
  bool any_partition = false;
  for (const auto& [id, s] : partitions_) {
    if (s.finished) continue;
    any_partition = true;
    if (options_.idle_timeout_ms > 0 && now - s.last_activity >= idle) continue;
    ++active;
    EventTime wm = s.max_ts == EventTime::Min()
                       ? EventTime::Min()
                       : EventTime{s.max_ts.ms - options_.out_of_orderness_ms};
    low = std::min(low, wm);
  }
  active_ = active;
  if (!any_partition) {
    // Every known partition finished (or none is known yet).
    if (!partitions_.empty()) current_ = EventTime::Max();
    return current_;
  }
  if (active == 0) {
    // Every unfinished partition is idle: hold at the slowest bound among
    // partitions that have data, so that one far-ahead partition (or one
    // outlier event) cannot drag every window shut.
    low = EventTime::Max();
    for (const auto& [id, s] : partitions_) {
      if (s.finished || s.max_ts == EventTime::Min()) continue;
      low = std::min(low, EventTime{s.max_ts.ms - options_.out_of_orderness_ms});
    }
    if (low == EventTime::Max()) low = EventTime::Min();
  }
  current_ = std::max(current_, low);
  return current_;
}

}  // namespace ctrjoin
