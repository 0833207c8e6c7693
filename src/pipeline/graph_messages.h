#pragma once
// The messages that move between the pipeline's nodes, one per source batch
// per hop (src/pipeline/pipeline.cc wires the nodes), and the latency stamps
// they carry. Internal to src/pipeline; tests build them to drive a stage
// without a flow graph.
//
// Messages are shared_ptrs: flow-graph buffers copy messages, and a batch
// must never be copied. A message is touched by one node at a time, the one
// it was handed to.

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "src/core/event.h"
#include "src/core/status.h"
#include "src/pipeline/checkpoint.h"
#include "src/pipeline/pipeline_metrics.h"
#include "src/pipeline/shard.h"
#include "src/pipeline/source.h"

namespace ctrjoin {

using Clock = std::chrono::steady_clock;

// Latency stamps (steady clock) travel with a batch: read_at is when the
// source returned it, left unset for batches without records (empty polls,
// barriers), which are not timed. See PipelineMetrics.
inline bool Timed(Clock::time_point read_at) { return read_at != Clock::time_point(); }

// Ends `stage` of a timed batch: records now - since, and since becomes now.
inline void EndStage(PipelineMetrics& metrics, Stage stage, Clock::time_point read_at,
                     Clock::time_point& since) {
  if (!Timed(read_at)) return;
  const Clock::time_point now = Clock::now();
  metrics.of(stage).Record(now - since);
  since = now;
}

struct SourceMsg {
  uint64_t seq = 0;
  SourceBatch batch;
  // The batch came from Source::Next (a barrier alone, or the stop message,
  // did not read: they must not move the watermark, see the Router).
  bool polled = false;
  bool last = false;                 // no message follows (end of input, stop or failure)
  std::shared_ptr<Barrier> barrier;  // a checkpoint barrier after this batch
  Clock::time_point read_at;
};

struct ParsedEvent {
  PartitionId partition;
  EventTime ts;
  KeyedEvent keyed;
};

struct ParsedMsg {
  uint64_t seq = 0;
  std::vector<ParsedEvent> events;
  std::vector<DeadLetter> dead_letters;
  SourceBatch meta;  // records moved out; partition changes and end flag kept
  bool polled = false;
  bool last = false;
  std::shared_ptr<Barrier> barrier;
  Clock::time_point read_at;
  Clock::time_point stage_done;  // the last stage so far finished (parse or enrich)
};

struct ShardMsg {
  uint64_t seq = 0;
  ShardBatch batch;
  // The batch's dead letters, on shard 0's message only: they travel to the
  // sink node with the batch, so that they belong to the batch's epoch.
  std::vector<DeadLetter> dead_letters;
  bool last = false;
  Clock::time_point read_at;
  Clock::time_point routed_at;  // also when the router advanced the watermark
};

struct ShardOut {
  uint64_t seq = 0;
  std::vector<Sample> samples;
  std::vector<DeadLetter> dead_letters;   // passed on from the ShardMsg
  std::shared_ptr<Barrier> barrier;       // this shard has passed (and snapshotted at) it
  uint64_t state_bytes = 0;               // what its snapshot added
  std::vector<ChangelogChunk> changelog;  // mode group: to the changelog topic, before samples
  Clock::time_point read_at;
  Clock::time_point routed_at;
  Clock::time_point done_at;  // the shard finished the batch
  bool negatives = false;     // samples holds negatives (the watermark closed windows)
};

using SourcePtr = std::shared_ptr<SourceMsg>;
using ParsedPtr = std::shared_ptr<ParsedMsg>;
using ShardPtr = std::shared_ptr<ShardMsg>;
using OutPtr = std::shared_ptr<ShardOut>;

}  // namespace ctrjoin
