#pragma once
// The start-up check of `source.kafka.mode: group` (src/README.md, "Scaling
// out"). A task is partition p of both input topics, so both topics need the
// same partition count, and every impression and click must sit on the
// partition Kafka's default partitioner gives its impression id: otherwise
// a click and its impression are read by different tasks, maybe by
// different processes, and never meet.
//
// CheckCoPartitioned compares the partition counts, then reads the newest
// records of every partition of both topics with a consumer of its own
// (read_committed, assigned, no group and no offsets touched) and checks
// their impression ids. A mismatch is refused with what to fix. Records it
// cannot parse are left to the pipeline, which dead-letters them; the
// pipeline also checks every later record (RejectCode::kWrongPartition).
//
// Called from the main thread before the pipeline starts; owns its
// consumer for the call only.

#include <cstdint>

#include "src/core/status.h"
#include "src/io/kafka_source.h"
#include "src/pipeline/event_parser.h"

namespace ctrjoin {

struct CoPartitionCheckOptions {
  int sample_per_partition = 32;  // newest records read from each partition
  int wait_ms = 10'000;           // for the topics to appear, then for the sample
};

struct CoPartitionReport {
  int32_t partitions = 0;  // of each topic
  uint64_t checked = 0;    // records whose impression id matched its partition
  bool complete = true;    // every partition's sample was read within wait_ms
};

Result<CoPartitionReport> CheckCoPartitioned(const KafkaSourceOptions& source,
                                             const SchemaOptions& schema,
                                             CoPartitionCheckOptions options = {});

}  // namespace ctrjoin
