#pragma once
// SourceStage: the body of the pipeline's source node. Each call to Next
// makes the graph's next message: a batch read from the Source, a checkpoint
// barrier from the hooks (alone, as an empty batch), or the last message once
// the input ended, a stop was asked or the run failed.
//
// Called only from the source thread (SourceFeeder, source_feeder.h), so it
// needs no lock. Owns the message sequence, the
// positions read so far (a barrier's checkpoint offsets), the read times of
// the current epoch and when consumer lag is next reported; borrows the
// Source, the hooks (may be null: no checkpoints), the metrics and the
// RunControl.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "src/core/hash.h"
#include "src/core/status.h"
#include "src/pipeline/checkpoint.h"
#include "src/pipeline/graph_messages.h"
#include "src/pipeline/pipeline_metrics.h"
#include "src/pipeline/run_control.h"
#include "src/pipeline/source.h"

namespace ctrjoin {

class SourceStage {
 public:
  // Reads batches of up to batch_size records for a graph of groups.shards shards,
  // from `positions` on (a resumed run's checkpoint; empty: from the start).
  SourceStage(Source* source, CheckpointHooks* hooks, PipelineMetrics* metrics, RunControl* run,
              size_t batch_size, KeyGroups groups, SourcePositions positions);

  // The next message, or null once the last one was returned.
  SourcePtr Next();

 private:
  // Reads one batch into msg; an error marks msg last.
  Status Read(SourceMsg& msg);
  // Moves the positions past msg's records.
  void Advance(const SourceBatch& batch);
  // Asks the hooks for a barrier now, carrying the positions of what was
  // read before it; sets msg.barrier if one comes. An error: the hooks could
  // not open the epoch (the run then fails).
  Status TakeBarrier(SourceMsg& msg, bool final);
  // Fills in the barrier's source fields (positions, shards, read times)
  // and puts it on msg.
  void Attach(SourceMsg& msg, std::shared_ptr<Barrier> barrier);
  void ReportLag(Clock::time_point now);
  // Mode group with checkpoints, after a batch with `revoking`: a barrier
  // right behind it (TakeRevocationBarrier), then, before the next read,
  // waits until its epoch committed, forgets the revoked partitions'
  // positions and lets the source give them up (FinishRevocation).
  Status TakeRevocationBarrier(SourceMsg& msg);
  Status FinishRevocation();

  Source* const source_;
  CheckpointHooks* const hooks_;
  PipelineMetrics* const metrics_;
  RunControl* const run_;
  const size_t batch_size_;
  const KeyGroups groups_;

  uint64_t next_seq_ = 0;
  bool done_ = false;
  SourcePositions positions_;  // read so far
  // Read times of the batches with records since the last barrier: the
  // barrier takes them to the commit, for read_to_commit.
  std::vector<Clock::time_point> epoch_reads_;
  Clock::time_point next_lag_report_;
  // A revocation in progress: its partitions and its barrier's epoch (0: none).
  std::vector<PartitionId> revoking_;
  uint64_t revoke_epoch_ = 0;
};

}  // namespace ctrjoin
