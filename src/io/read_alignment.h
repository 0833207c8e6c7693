#pragma once
// ReadAlignment: which input partitions the Kafka source pauses so that none
// reads further ahead in time than `max_ahead_ms` of the slowest partition
// that still has records to read (Flink's watermark alignment, within one
// consumer). While a job catches up on a backlog, the clicks topic (a few
// percent of the impressions' bytes per fetch) otherwise runs far ahead of
// the impressions: its clicks wait in state for impressions not read yet,
// and keep the changelog topic's heads from being deleted. Time is the Kafka
// record timestamp. Only the order of reading changes, never what is read
// (src/README.md, "Sources").
//
// The frontier is the smallest timestamp read among the partitions (paused
// ones too) that have records left (next offset < end, or the end is not
// known yet) and delivered one within kStalledAfterMs. After an assignment, until every partition
// delivered its first record (or kStalledAfterMs after the first one that did), nothing says how
// far behind the others are, so the frontier is before every timestamp: at the start of a backlog
// one fetch of clicks can span all of it. A running partition more than max_ahead_ms past the
// frontier pauses, at the record that got it there (within a batch: pausing drops what librdkafka
// fetched beyond it); a paused one resumes once it is at most max_ahead_ms / 2 past it (so the
// slowest resumes at the next Update), and every one resumes when there is no frontier: alignment
// never stops a job.
//
// Called by KafkaSource on the source thread only; owns its partition map.

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <vector>

#include "src/pipeline/source.h"

namespace ctrjoin {

class ReadAlignment {
 public:
  // A partition that delivered nothing for this long does not hold others
  // back (an open transaction or a broker outage may stall it).
  static constexpr int64_t kStalledAfterMs = 1'000;
  // A partition's end offset as last seen, or -1 when unknown.
  using EndOf = std::function<int64_t(PartitionId)>;

  // max_ahead_ms > 0.
  ReadAlignment(int64_t max_ahead_ms, EndOf end_of)
      : max_ahead_ms_(max_ahead_ms), end_of_(std::move(end_of)) {}

  // `id` was assigned: it waits for its first record.
  void Assigned(PartitionId id);
  // A record of `id` with this timestamp (-1: none) was read at `now_ms`;
  // `next_offset` is the offset after it. True when `id` must pause now:
  // the record is more than max_ahead_ms past the frontier.
  bool Read(PartitionId id, int64_t timestamp_ms, int64_t next_offset, int64_t now_ms);
  // `id` is no longer read (revoked, or its bounded run finished).
  void Forget(PartitionId id) { partitions_.erase(id); }
  void Clear();

  struct Change {
    std::vector<PartitionId> pause;
    std::vector<PartitionId> resume;
  };
  // Recomputes the frontier and pauses or resumes against it.
  Change Update(int64_t now_ms);

  int64_t paused() const;
  std::vector<PartitionId> PausedIds() const;

 private:
  struct Partition {
    int64_t max_timestamp_ms = -1;
    int64_t next_offset = -1;
    int64_t last_read_ms = 0;
    bool delivered = false;
    bool paused = false;
  };
  static constexpr int64_t kBeforeAll = std::numeric_limits<int64_t>::min() / 2;

  // Sets frontier_ and frontier_id_ from the partitions.
  void Recompute(int64_t now_ms);
  bool Waiting(const Partition& p, int64_t now_ms) const;

  const int64_t max_ahead_ms_;
  const EndOf end_of_;
  std::map<PartitionId, Partition> partitions_;
  std::optional<int64_t> first_delivery_ms_;  // since the last assignment
  std::optional<int64_t> frontier_;
  std::optional<PartitionId> frontier_id_;  // the partition that set it, if one did
};

}  // namespace ctrjoin
