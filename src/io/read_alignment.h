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
// Called by KafkaSource on the source thread only; owns its partition map.

#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "src/pipeline/source.h"

namespace ctrjoin {

class ReadAlignment {
 public:
  // A partition that delivered nothing for this long does not hold others
  // back (an open transaction or a broker outage may stall it).
  static constexpr int64_t kStalledAfterMs = 1'000;

  // max_ahead_ms > 0.
  explicit ReadAlignment(int64_t max_ahead_ms) : max_ahead_ms_(max_ahead_ms) {}

  // A record of `id` with this timestamp (-1: none) was read at `now_ms`
  // (a steady clock); `next_offset` is the offset after it.
  void Read(PartitionId id, int64_t timestamp_ms, int64_t next_offset, int64_t now_ms);
  // `id` is no longer read (revoked, or its bounded run finished).
  void Forget(PartitionId id) { partitions_.erase(id); }
  void Clear() { partitions_.clear(); }

  struct Change {
    std::vector<PartitionId> pause;
    std::vector<PartitionId> resume;
  };
  // end_of(id): the partition's end offset as last seen, or -1. The frontier
  // is the smallest timestamp read among the running partitions with records
  // left (next offset < end) that delivered within kStalledAfterMs. A running
  // partition more than max_ahead_ms past it pauses; a paused one resumes
  // once it is at most max_ahead_ms / 2 past it, and every one resumes when
  // there is no frontier.
  Change Update(int64_t now_ms, const std::function<int64_t(PartitionId)>& end_of);

  int64_t paused() const;

 private:
  struct Partition {
    int64_t max_timestamp_ms = -1;
    int64_t next_offset = -1;
    int64_t last_read_ms = 0;
    bool paused = false;
  };
  const int64_t max_ahead_ms_;
  std::map<PartitionId, Partition> partitions_;
};

}  // namespace ctrjoin
