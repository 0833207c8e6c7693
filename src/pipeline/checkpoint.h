#pragma once
// Checkpoint barriers: where the pipeline (src/) meets the checkpoint
// coordinator (txn/), without src/ depending on txn/.
//
// The source node asks CheckpointHooks::NextBarrier before every read; a
// barrier it returns travels through the graph as an empty batch, in order,
// behind every record read before it (the source's positions at that point
// are the checkpoint's offsets). The router adds the watermark state, each
// shard snapshots its state into barrier.dir/shard-<i> when the barrier
// reaches it (the other shards go on), and the sink node calls OnBarrier
// once all output from before the barrier has been written. Output after
// the barrier is held back until OnBarrier returned: it belongs to the next
// epoch.

#include <chrono>
#include <cstdint>
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

// What a checkpoint records besides the shards' state. Stored as text
// ("key value" lines) so that an operator can read it.
struct CheckpointMeta {
  uint64_t epoch = 0;
  uint32_t shards = 0;
  SourcePositions positions;
  // The watermark tracker's partitions: max event ts seen, EventTime::Min()
  // for a partition known (assigned) that had delivered nothing yet.
  std::vector<std::pair<PartitionId, EventTime>> partition_max_ts;
  EventTime watermark = EventTime::Min();
  int64_t created_ms = 0;    // wall clock
  uint64_t state_bytes = 0;  // state files new in this checkpoint (the rest are hard links)

  std::string Encode() const;
  static Result<CheckpointMeta> Decode(std::string_view text);
};

// One barrier on its way through the graph. Created by the coordinator;
// filled in by the pipeline's source, router and shard nodes one after the
// other (each writes only its own fields, before passing the batch on).
struct Barrier {
  uint64_t epoch = 0;
  std::string dir;     // shards write their state to dir/shard-<i>
  bool final = false;  // the run's last barrier (input ended, or stop)
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
  // shard has snapshotted its state. An error fails the run.
  virtual Status OnBarrier(Barrier& barrier) = 0;
};

}  // namespace ctrjoin
