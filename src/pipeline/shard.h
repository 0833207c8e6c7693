#pragma once
// The interface between the pipeline and the keyed operator that runs inside
// each shard (the label join, in joins/). The pipeline routes every event by
// its key group (xxh3(impression_id) % key_groups) to the shard that owns
// that group's range (src/core/hash.h), so a shard owns its keys outright.
// In mode group it routes by task instead (partition p of both topics, to
// shard p % shards), and the shard keeps each task's state apart
// (TaskShard).
//
// A ShardProcessor is called only from its own shard node, which is serial:
// never concurrently, always in the order the router emitted batches.

#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "src/core/event.h"
#include "src/core/status.h"
#include "src/pipeline/checkpoint.h"
#include "src/pipeline/sink.h"

namespace ctrjoin {

// An event together with its precomputed key (xxh3-64 of impression_id).
struct KeyedEvent {
  uint64_t key = 0;
  std::variant<Impression, Click> event;
  int32_t task = -1;  // mode group: the partition it was read from; else -1
};

// Mode group: a task's own watermark (the minimum over its impressions and
// clicks partition, as WatermarkTracker computes it for the pair).
struct TaskWatermark {
  int32_t task = 0;
  EventTime watermark = EventTime::Min();
};

struct ShardBatch {
  std::vector<KeyedEvent> events;  // in arrival order
  // The global watermark after this batch's events: no further event with
  // ts <= watermark - 0 is expected on time (see watermark.h).
  EventTime watermark = EventTime::Min();
  bool end_of_input = false;  // the watermark is final: close every window
  // Set on a checkpoint barrier's batch (which has no events): after
  // Process, the shard node calls Checkpoint.
  std::shared_ptr<Barrier> barrier;
  // Mode group only (src/pipeline/task_shard.h): the watermark of every task
  // this shard holds, and the tasks the process lost, whose state goes.
  std::vector<TaskWatermark> task_watermarks;
  std::vector<int32_t> dropped_tasks;
};

class ShardProcessor {
 public:
  virtual ~ShardProcessor() = default;
  // Applies the events, then advances to batch.watermark; appends emitted
  // samples to out. An error is fatal for the run (e.g. state I/O failed).
  virtual Status Process(ShardBatch& batch, std::vector<Sample>& out) = 0;
  // The keys it keeps (in memory and spilled), for the per-task metrics.
  virtual uint64_t state_entries() const { return 0; }
  // At a checkpoint barrier, after Process: marks the barrier's epoch in
  // the shard's changelog and fills in barrier.marks[shard] (O(1): the
  // log's I/O thread makes it durable); new_bytes is what the changelog
  // grew by since the previous barrier.
  virtual Status Checkpoint(Barrier& barrier, uint32_t shard, uint64_t& new_bytes) {
    (void)barrier;
    (void)shard;
    (void)new_bytes;
    return Status::Internal("this shard processor cannot checkpoint", Effect::kNoEffect);
  }
  // After every batch: changelog chunks that go out with the batch's
  // samples, in the same epoch (mode group; others keep their log on disk).
  virtual void TakeChangelog(std::vector<ChangelogChunk>& out) { (void)out; }
};

}  // namespace ctrjoin
