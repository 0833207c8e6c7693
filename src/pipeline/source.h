#pragma once
// The interface between the pipeline and where events come from (Kafka,
// JSON-lines files, an in-process generator).
//
// A Source is called only from the pipeline's source node, one call at a
// time (never concurrently), so implementations need no locking of their own
// unless they run background threads.

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "src/core/event.h"
#include "src/core/status.h"

namespace ctrjoin {

// One input partition: a Kafka topic partition, or one input file.
struct PartitionId {
  StreamKind stream = StreamKind::kImpression;
  int32_t partition = 0;
  auto operator<=>(const PartitionId&) const = default;
};

// Records of a partition not read yet (Kafka: high watermark - position).
struct PartitionLag {
  PartitionId id;
  int64_t records = 0;
};

// The next offset to read, per input partition: the Kafka offset, or for a
// file the next line number (1-based).
using SourcePositions = std::map<PartitionId, int64_t>;

struct SourceBatch {
  std::vector<RawRecord> records;
  // Partitions assigned since the previous batch. An assigned partition holds
  // the watermark back until it delivers data or goes idle.
  std::vector<PartitionId> assigned;
  // Partitions revoked since the previous batch: they stop holding the
  // watermark back.
  std::vector<PartitionId> revoked;
  // Partitions that reached the end of a bounded input.
  std::vector<PartitionId> finished;
  // Partitions holding records the source has read but not delivered yet
  // (the file source's merge holds a file back), with the event time of the
  // next one (EventTime::Min() if not known): not idle, whatever the time
  // since they last delivered, and their watermark counts that next record
  // as seen.
  std::vector<std::pair<PartitionId, EventTime>> pending;
  // No further batch will come: every window may be closed.
  bool end_of_input = false;
  // Mode group with checkpoints: the group is taking these partitions away
  // (the eager protocol: all of them). The source reads nothing more until
  // ReleaseRevoked, which the pipeline calls once the epoch holding
  // everything read from them has committed (txn/README.md, "Several
  // processes on one job").
  std::vector<PartitionId> revoking;
  // Between giving partitions up and the group's next assignment: the batch
  // is empty, and must not move the watermark of tasks that may be gone.
  bool suspended = false;
};

class Source {
 public:
  virtual ~Source() = default;
  // Returns up to max_records records; blocks for at most the source's poll
  // timeout, so it may return an empty batch (which still lets idle
  // partitions advance the watermark). An error ends the run.
  virtual Result<SourceBatch> Next(size_t max_records) = 0;
  // Called before the first Next to continue from a checkpoint: reading
  // starts at these positions; partitions not named start as configured.
  virtual Status Seek(const SourcePositions& positions) {
    (void)positions;
    return Status::InvalidArgument(Describe() + ": cannot resume from a checkpoint");
  }
  // Where every partition it reads starts, as absolute positions (after
  // Seek: the sought ones): a checkpoint then names every partition from the
  // first epoch on, also one that never delivers a record. Empty where the
  // source has no such positions (files, a consumer group's assignment).
  virtual SourcePositions StartPositions() const { return {}; }
  // After a batch with `revoking`: gives those partitions up (the group's
  // rebalance goes on). Called from the source node, before the next Next.
  virtual Status ReleaseRevoked() { return Status::Ok(); }
  // A human-readable description for logs ("files a.jsonl + b.jsonl").
  virtual std::string Describe() const = 0;
  // Records not read yet, per assigned partition whose lag is known: for
  // Kafka the high watermark minus the position (known once a fetch came
  // back and a record was read); none for files. Must be cheap (no broker
  // round trip): the source node asks about once a second.
  virtual std::vector<PartitionLag> ConsumerLag() { return {}; }
  // When the source's brokers stopped answering (wall-clock ms since the
  // epoch), or 0 while they answer (or the source has none). Called about
  // once a second from the source node; during an outage it may ask the
  // brokers (briefly) whether they answer again.
  virtual int64_t UnreachableSinceMs() { return 0; }
  // Partitions paused now because they read too far ahead of the others
  // (Kafka: source.kafka.max_read_ahead_ms). Called with UnreachableSinceMs.
  virtual int64_t PausedPartitions() { return 0; }
};

}  // namespace ctrjoin
