#pragma once
// Checkpoint barriers: where the pipeline (src/) meets the checkpoint
// coordinator (txn/), without src/ depending on txn/.
//
// The source node asks CheckpointHooks::NextBarrier before every read; a
// barrier it returns travels through the graph as an empty batch, in order,
// behind every record read before it (the source's positions at that point
// are the checkpoint's offsets). The router adds the watermark state, each
// shard appends the epoch's marker to its changelog when the barrier reaches
// it and fills in its ShardMark (O(1); the other shards go on), and the sink
// node calls OnBarrier once all output from before the barrier has been
// written. Output after the barrier is held back until OnBarrier returned:
// it belongs to the next epoch. The coordinator waits for every shard's
// marker to be durable before the epoch's metadata, and the epoch, commit.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "src/core/event.h"
#include "src/core/status.h"
#include "src/pipeline/source.h"

namespace ctrjoin {

// Where one shard's changelog holds the checkpoint's marker.
struct ShardLogPosition {
  uint64_t segment = 0;
  uint64_t offset = 0;  // just past the marker
  auto operator<=>(const ShardLogPosition&) const = default;
};

// What a checkpoint records: small, since the state itself is in the
// shards' changelogs up to each one's marker of this epoch. Stored as text
// ("key value" lines) so that an operator can read it; the first line names
// the format, and a checkpoint of another format is refused by name.
struct CheckpointMeta {
  static constexpr int kFormat = 2;  // 1: RocksDB snapshots per shard (before 0.2)

  uint64_t epoch = 0;
  uint32_t shards = 0;
  uint32_t key_groups = 0;                   // fixed when the job was created
  uint64_t changelog_generation = 0;         // the changelog directory the shards wrote
  std::vector<ShardLogPosition> shard_logs;  // one per shard
  SourcePositions positions;
  // The watermark tracker's partitions: max event ts seen, EventTime::Min()
  // for a partition known (assigned) that had delivered nothing yet.
  std::vector<std::pair<PartitionId, EventTime>> partition_max_ts;
  EventTime watermark = EventTime::Min();
  int64_t created_ms = 0;    // wall clock
  uint64_t state_bytes = 0;  // changelog bytes the epoch appended (all shards)

  std::string Encode() const;
  static Result<CheckpointMeta> Decode(std::string_view text);
};

// What shard i did at a barrier (its own slot of Barrier::marks).
struct ShardMark {
  uint64_t segment = 0;
  uint64_t offset = 0;
  EventTime watermark = EventTime::Min();  // the shard's, at the marker
  // Blocks until the marker is durable (any thread); an error is the log's.
  std::function<Status()> wait_durable;
};

// One barrier on its way through the graph. Created by the coordinator;
// filled in by the pipeline's source, router and shard nodes one after the
// other (each writes only its own fields, before passing the batch on; the
// shards, concurrently, each only its own slot of marks).
struct Barrier {
  uint64_t epoch = 0;
  bool final = false;            // the run's last barrier (input ended, or stop)
  std::vector<ShardMark> marks;  // one per shard, sized by the source node
  std::chrono::steady_clock::time_point injected;
  CheckpointMeta meta;
  // When the source read each batch with records of this epoch (set by the
  // source node): the coordinator records read -> committed per batch.
  std::vector<std::chrono::steady_clock::time_point> batch_reads;
};

// Implemented by the checkpoint coordinator (txn/). NextBarrier is called
// from the pipeline's source node, OnBarrier from its sink node; never
// concurrently with themselves.
class CheckpointHooks {
 public:
  virtual ~CheckpointHooks() = default;
  // A barrier to inject now, or null. With final set (the input ended or a
  // stop was asked) it returns the run's last barrier. An error (the epoch
  // could not be opened) fails the run.
  virtual Result<std::shared_ptr<Barrier>> NextBarrier(bool final) = 0;
  // Every output record from before the barrier has been written and every
  // shard has appended its marker (not yet durable: barrier.marks say how
  // to wait for that). An error fails the run.
  virtual Status OnBarrier(Barrier& barrier) = 0;
  // Mode group, when partitions are revoked: a barrier now, whatever the
  // interval, or null while the previous one is still on its way (ask
  // again). From the source node.
  virtual Result<std::shared_ptr<Barrier>> BarrierNow() {
    return Status::Internal("checkpoint: no barriers on demand", Effect::kNoEffect);
  }
  // Waits up to `wait` for epoch to commit; true once it has. An error: a
  // commit failed (the run fails). From the source node.
  virtual Result<bool> WaitCommitted(uint64_t epoch, std::chrono::milliseconds wait) {
    (void)epoch;
    (void)wait;
    return true;
  }
};

}  // namespace ctrjoin
