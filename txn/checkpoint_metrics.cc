#include "txn/checkpoint_metrics.h"

namespace ctrjoin {

const char* CheckpointMetrics::PhaseName(size_t phase) {
  static constexpr const char* kNames[kPhases] = {"align",   "pre_commit", "queued",
                                                  "durable", "metadata",   "commit"};
  return phase < kPhases ? kNames[phase] : "?";
}

void CheckpointMetrics::Expose(Exposition& e) const {
  e.Histogram("ctrjoin_end_to_end_commit_latency_seconds",
              "Source read -> the batch's epoch committed (output visible), per batch with "
              "records; exactly-once runs only.",
              read_to_commit);
  e.Metric("ctrjoin_checkpoints_completed_total",
           "Checkpoints completed (state snapshot and pre-committed output).", completed);
  e.Metric("ctrjoin_checkpoint_epochs_committed_total", "Epochs committed.", committed);
  e.Metric("ctrjoin_checkpoint_epochs_aborted_total",
           "Epochs aborted (a failed commit, or the run failed).", aborted_epochs);
  e.Metric("ctrjoin_checkpoint_restores_total", "Starts that restored a checkpoint.", restores);
  e.Metric("ctrjoin_checkpoint_last_committed_epoch", "The last epoch committed.",
           last_committed_epoch);
  if (last_completed_ms.Get() > 0) {
    e.Single("ctrjoin_checkpoint_last_completed_timestamp_seconds", "gauge",
             "When the last checkpoint completed, in seconds since the Unix epoch.",
             Seconds(last_completed_ms.Get()));
  }
  e.Metric("ctrjoin_checkpoint_last_size_bytes",
           "Changelog bytes the last checkpoint's epoch appended.", last_bytes);
  e.Metric("ctrjoin_checkpoint_written_bytes_total", "Changelog bytes written for checkpoints.",
           bytes_total);
  e.Metric("ctrjoin_changelog_disk_bytes",
           "The shards' changelog segments on disk (the current generation), after the last "
           "commit.",
           changelog_disk_bytes);
  e.Histogram("ctrjoin_checkpoint_duration_seconds",
              "Barrier injected -> checkpoint complete (every shard's changelog marker durable, "
              "metadata written); every epoch but the run's final one.",
              duration);
  e.Histogram("ctrjoin_checkpoint_commit_latency_seconds",
              "Barrier injected -> epoch committed (its output visible); every epoch but the "
              "run's final one.",
              commit_lag);
  e.Family("ctrjoin_checkpoint_phase_seconds", "histogram",
           "Where an epoch's commit latency goes, per epoch of the commit latency: align "
           "(barrier injected -> at the sink), pre_commit, queued (behind earlier commits), "
           "durable (changelog markers), metadata, commit (offsets and the sink's commit).");
  for (size_t p = 0; p < kPhases; ++p) {
    e.Histogram("ctrjoin_checkpoint_phase_seconds", {{"phase", PhaseName(p)}}, phase[p]);
  }
}

}  // namespace ctrjoin
