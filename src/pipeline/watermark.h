#pragma once
// Per-partition event-time watermarks with bounded out-of-orderness and
// idleness, as Flink's per-partition watermark generators do.
//
//   partition watermark = max event ts seen on it - out_of_orderness
//   global watermark    = min over active partitions
//
// A partition is active while it is assigned, not finished and not idle.
// It is idle when it delivered nothing for idle_timeout of processing time
// and the source did not report records of it pending;
// an assigned partition that never delivered anything holds the watermark at
// its minimum until it becomes idle. When every partition is idle the
// watermark is the min over partitions that have data. Time during which the
// tracker itself was not advanced (the pipeline was back-pressured and read
// nothing) does not count towards idleness. A window [ts, ts + W] is closed once the
// watermark is strictly greater than ts + W.
//
// Called only from the pipeline's router node (serial).

#include <chrono>
#include <map>
#include <utility>
#include <vector>

#include "src/core/event.h"
#include "src/pipeline/source.h"

namespace ctrjoin {

struct WatermarkOptions {
  int64_t out_of_orderness_ms = 5'000;
  // 0 disables idleness (a silent partition holds the watermark forever).
  int64_t idle_timeout_ms = 30'000;
};

class WatermarkTracker {
 public:
  using Clock = std::chrono::steady_clock;

  explicit WatermarkTracker(WatermarkOptions options) : options_(options) {}

  void Assign(PartitionId p, Clock::time_point now);
  void Revoke(PartitionId p);
  void Finish(PartitionId p);
  // Records an event; partitions seen for the first time are assigned.
  void Observe(PartitionId p, EventTime ts, Clock::time_point now);
  // The source holds records of p it has not delivered yet, the next with
  // event time next_ts (Min: not known): p is not idle (as if it had
  // delivered now), and next_ts counts as seen, since it will be delivered
  // (a held-back file thus does not hold the watermark at its last record).
  void Pending(PartitionId p, EventTime next_ts, Clock::time_point now);
  // Recomputes the global watermark at processing time `now`. Never moves
  // backwards. With every partition finished it is EventTime::Max().
  EventTime Advance(Clock::time_point now);
  // Forces the watermark to the end (bounded input fully read).
  void FinishAll();

  // What a checkpoint keeps: every partition the tracker knows with the
  // largest event time seen on it, EventTime::Min() for one that has not
  // delivered anything yet (it holds the watermark back just the same, so a
  // restored tracker must know it too). Idleness and processing times are
  // not kept: a restored partition is active until it goes idle again.
  // Finished flags are not kept either: the source reports its finished
  // partitions again after a restore (until then they only hold back).
  std::vector<std::pair<PartitionId, EventTime>> Snapshot() const;
  // Starts from a snapshot and the watermark it had (which never moves back).
  void Restore(const std::vector<std::pair<PartitionId, EventTime>>& max_ts, EventTime watermark,
               Clock::time_point now);

  EventTime current() const { return current_; }
  size_t active_partitions() const { return active_; }

 private:
  struct PartitionState {
    EventTime max_ts = EventTime::Min();
    Clock::time_point last_activity;
    bool finished = false;
  };

  WatermarkOptions options_;
  std::map<PartitionId, PartitionState> partitions_;
  EventTime current_ = EventTime::Min();
  Clock::time_point last_advance_;  // previous Advance(), to tell our own stalls
  size_t active_ = 0;
  bool all_finished_ = false;
};

}  // namespace ctrjoin
