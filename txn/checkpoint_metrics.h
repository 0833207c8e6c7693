#pragma once
// Exactly once: the checkpoint coordinator's figures. Written by the
// coordinator (the sink node's thread and its committer thread, relaxed
// atomics); read by /metrics, /ready and summaries. Owned by whoever
// assembles the pipeline; borrowed by the CheckpointCoordinator.

#include "src/ops/metrics.h"
#include "src/ops/prometheus.h"

namespace ctrjoin {

struct CheckpointMetrics {
  Counter completed;       // checkpoints complete (metadata written, markers durable)
  Counter committed;       // epochs committed
  Counter aborted_epochs;  // epochs aborted (a failed commit, or the run failed)
  Counter restores;        // starts that restored a checkpoint
  Gauge last_committed_epoch;
  Gauge last_bytes;            // changelog bytes the last checkpoint's epoch appended
  Counter bytes_total;         // summed over checkpoints
  Gauge changelog_disk_bytes;  // the shards' changelog segments on disk, after each commit
  Gauge last_completed_ms;     // wall clock when the last checkpoint completed; 0: none yet
  // Per epoch but the run's final one (a bounded input's end closes every
  // window in it at once):
  LatencyHistogram duration;    // barrier injected -> checkpoint complete
  LatencyHistogram commit_lag;  // barrier injected -> epoch committed (visible)
  // Source read -> epoch committed, one observation per source batch with
  // records (Barrier::batch_reads): end-to-end latency to visible output.
  LatencyHistogram read_to_commit;

  // Where commit_lag goes, one observation per epoch in commit_lag, in order
  // (txn/README.md, "Where the commit latency goes").
  enum Phase : size_t {
    kAlign,      // barrier injected -> at the sink (behind the epoch's work in the graph)
    kPreCommit,  // the sink's pre-commit (Kafka: flush)
    kQueued,     // pre-committed -> the committer takes it (earlier epochs still committing)
    kDurable,    // waiting for the shards' changelog markers to be durable
    kMetadata,   // writing the checkpoint's metadata
    kCommit,     // before_commit (Kafka: the input offsets) and the sink's commit
    kPhases
  };
  static const char* PhaseName(size_t phase);
  LatencyHistogram phase[kPhases];

  // Writes the families of these metrics (src/ops/README.md lists them).
  void Expose(Exposition& e) const;
};

}  // namespace ctrjoin
