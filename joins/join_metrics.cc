#include "joins/join_metrics.h"

namespace ctrjoin {

void JoinMetrics::Expose(Exposition& e) const {
  e.Family("ctrjoin_join_samples_total", "counter",
           "Samples emitted by the label join, by kind: positive, negative, correction (a late "
           "click turned an emitted negative positive).");
  e.Sample("ctrjoin_join_samples_total", {{"kind", "positive"}}, positives.Get());
  e.Sample("ctrjoin_join_samples_total", {{"kind", "negative"}}, negatives.Get());
  e.Sample("ctrjoin_join_samples_total", {{"kind", "correction"}}, corrections.Get());
  e.Metric("ctrjoin_join_duplicate_clicks_total",
           "Further clicks for an already labelled impression (not emitted).", duplicate_clicks);
  e.Metric("ctrjoin_join_duplicate_impressions_total",
           "Impression ids seen again (the first wins).", duplicate_impressions);
  e.Metric("ctrjoin_join_orphan_clicks_total", "Held clicks whose impression never came (dropped).",
           orphan_clicks);
  e.Metric("ctrjoin_join_late_clicks_total",
           "Clicks that came after their impression's negative was emitted.", late_clicks);
  e.Metric("ctrjoin_join_clicks_outside_window_total",
           "Clicks with ts before their impression or after its window.", clicks_outside_window);
  e.Metric("ctrjoin_join_late_impressions_total",
           "Impressions whose window had already closed when they came.", late_impressions);
  e.Metric("ctrjoin_join_state_entries", "Keys held in join state (memory and RocksDB).",
           state_entries);
  e.Metric("ctrjoin_join_state_memory_bytes", "Bytes of join state held in memory.",
           state_memory_bytes);
  e.Metric("ctrjoin_join_state_spilled_entries", "Keys whose state lives in RocksDB.",
           spilled_entries);
  e.Metric("ctrjoin_join_spill_writes_total", "State entries moved to RocksDB.", spill_writes);
  e.Metric("ctrjoin_rocksdb_memory_bytes", "RocksDB block cache and memtables of the state stores.",
           rocksdb_memory_bytes);
  e.Metric("ctrjoin_rocksdb_memory_limit_bytes", "RocksDB's share of the state memory budget.",
           rocksdb_memory_limit_bytes);
}

}  // namespace ctrjoin
