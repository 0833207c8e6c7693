#pragma once
// SinkAligner: the body of the pipeline's sink node. It takes every shard's
// output for every batch, writes the samples to the SampleSink and the
// batch's dead letters (carried by shard 0's output) to the DeadLetterSink,
// and once all
// shards have delivered a batch returns that batch's token to the source
// (also after a failure: the graph drains instead of waiting forever).
//
// At a checkpoint barrier it aligns the shards: output from a shard that has
// passed the barrier (a later batch) is held until every shard has passed it
// and the hooks have completed it (OnBarrier), so each sink write belongs to
// exactly one epoch, dead letters included. It relies on each shard's
// outputs arriving in batch order (the pipeline puts a sequencer between
// every shard node and the sink: a serial oneTBB node may hand its outputs
// on out of order); an output of a batch before the last completed barrier
// fails the run instead of landing in the wrong epoch.
//
// Called only from the sink node (serial: one output at a time, on any
// oneTBB worker), so it needs no lock. Owns the per-batch arrivals, the
// barrier being aligned and the output held behind it; borrows the sinks, the
// hooks (may be null: no checkpoints, hence no barriers), the metrics and
// the RunControl.

#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <unordered_map>

#include "src/core/status.h"
#include "src/pipeline/checkpoint.h"
#include "src/pipeline/graph_messages.h"
#include "src/pipeline/pipeline_metrics.h"
#include "src/pipeline/run_control.h"
#include "src/pipeline/sink.h"

namespace ctrjoin {

class SinkAligner {
 public:
  SinkAligner(uint32_t shards, SampleSink* sink, DeadLetterSink* dead_letters,
              CheckpointHooks* hooks, PipelineMetrics* metrics, RunControl* run);

  // Takes one shard's output; calls return_token once for each batch this
  // completes (the output may release held output of later batches too).
  void Accept(OutPtr out, const std::function<void()>& return_token);

 private:
  // Per batch (seq) whose shard outputs are still arriving: how many came,
  // when the slowest shard finished, whether they held negatives.
  struct Arrivals {
    uint32_t outputs = 0;
    Clock::time_point shards_done;
    bool negatives = false;
  };
  static constexpr uint64_t kNoBarrier = std::numeric_limits<uint64_t>::max();

  Status Write(const ShardOut& out);
  // Counts out; true once it completed its batch (then records the batch's
  // latencies).
  bool Arrived(const ShardOut& out);
  // Every shard has passed the barrier: the hooks complete it.
  Status CompleteBarrier(Barrier& barrier);

  const uint32_t shards_;
  SampleSink* const sink_;
  DeadLetterSink* const dead_letters_;
  CheckpointHooks* const hooks_;
  PipelineMetrics* const metrics_;
  RunControl* const run_;

  std::unordered_map<uint64_t, Arrivals> arrived_;
  // A barrier that some shards have passed and others not yet: output from
  // the shards past it (seq > barrier_seq_) waits in held_.
  uint64_t barrier_seq_ = kNoBarrier;
  uint64_t barrier_bytes_ = 0;  // the shards' changelog bytes at it, so far
  // The last barrier completed: every output of a batch up to it is written.
  uint64_t completed_seq_ = kNoBarrier;
  std::deque<OutPtr> held_;
};

}  // namespace ctrjoin
