#pragma once
// What `ctrjoin replay` reads: a bounded range of the impressions topic,
// given per partition as offsets or for all partitions as times, and the
// clicks needed to label it.
//
//   impressions  [start, end) per partition: the given offsets, or
//                offsets-for-times of the given times (first offset whose
//                record timestamp is >= the time), or earliest / the end
//                offset at start-up when a bound is not given.
//   clicks       from offsets-for-times(range start time - click lookback)
//                to the end offset at start-up. The range start time is the
//                given start time, or the smallest record timestamp at the
//                impression start offsets. The pipeline stops reading clicks
//                once the watermark has closed every window the range opens
//                (Pipeline::EndAfterWindows), usually long before that end.
//
// Record timestamps are Kafka's (CreateTime as the producer set it); they
// need to be close to the events' own ts for the click lookback to hold.
//
// Called from main's thread before the pipeline starts. ResolveReplayRange
// makes its own short-lived consumer and owns nothing afterwards.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "src/core/status.h"
#include "src/io/kafka_source.h"
#include "src/pipeline/source.h"

namespace ctrjoin {

struct ReplayRange {
  std::map<int32_t, int64_t> start_offsets;  // impressions partition -> first offset
  std::map<int32_t, int64_t> end_offsets;    // impressions partition -> end (exclusive)
  std::optional<int64_t> start_ms;           // record time, inclusive
  std::optional<int64_t> end_ms;             // record time, exclusive
  int64_t click_lookback_ms = 60'000;

  Status Validate() const;  // names the bad option: "--start-offsets: ..."
  std::string Describe() const;
};

// "0=100,1=250": impressions partition = offset, comma separated.
Result<std::map<int32_t, int64_t>> ParsePartitionOffsets(std::string_view text,
                                                         std::string_view option);
// "2026-11-20T10:00:00Z", "2026-11-20T10:00:00.250Z" (UTC) or milliseconds
// since the epoch ("1763632800000").
Result<int64_t> ParseTimestampMs(std::string_view text, std::string_view option);

struct ResolvedRange {
  std::map<PartitionId, int64_t> start;  // every partition of both topics
  std::map<PartitionId, int64_t> end;    // every partition of both topics
  int64_t click_start_ms = 0;            // record time clicks are read from
  uint64_t impressions = 0;              // records in the impressions range
  std::string Describe() const;
};

Result<ResolvedRange> ResolveReplayRange(const KafkaSourceOptions& source,
                                         const ReplayRange& range);

// The resolved range of a replay, kept in its state dir by its first run so
// that a resume reads the same offsets. Load: NotFound when there is none;
// InvalidArgument when it was resolved from a different range than `range`.
Status SaveResolvedRange(const std::string& path, const ReplayRange& range,
                         const ResolvedRange& resolved);
Result<ResolvedRange> LoadResolvedRange(const std::string& path, const ReplayRange& range);

}  // namespace ctrjoin
