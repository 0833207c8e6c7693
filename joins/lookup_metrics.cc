#include "joins/lookup_metrics.h"

namespace ctrjoin {

void LookupMetrics::Expose(Exposition& e) const {
  e.Metric("ctrjoin_lookup_cache_hits_total", "Feature lookups answered by the cache.", cache_hits);
  e.Metric("ctrjoin_lookup_cache_misses_total", "Feature lookups the cache could not answer.",
           cache_misses);
  e.Metric("ctrjoin_lookup_cache_evictions_total", "Rows evicted from the cache.", cache_evictions);
  e.Metric("ctrjoin_lookup_cache_entries", "Rows held in the cache.", cache_entries);
  e.Metric("ctrjoin_lookup_cache_bytes", "Bytes held in the cache.", cache_bytes);
  e.Metric("ctrjoin_lookup_store_rows_total", "Rows asked of the feature store (after coalescing).",
           requests);
  e.Metric("ctrjoin_lookup_store_calls_total", "Feature store calls (getMultiple).", store_calls);
  e.Metric("ctrjoin_lookup_coalesced_total", "Cache misses that joined a request already pending.",
           coalesced);
  e.Metric("ctrjoin_lookup_retries_total", "Rows of failed feature store calls queued for a retry.",
           retries);
  e.Metric("ctrjoin_lookup_errors_total", "Failed feature store calls.", errors);
  e.Metric("ctrjoin_lookup_partial_total",
           "Lookups given up (emit_partial): samples flagged partial.", partial);
  e.Metric("ctrjoin_lookup_cells_rejected_total",
           "Feature cells not of their column's declared type, left out of samples.",
           cells_rejected);
  e.Single("ctrjoin_feature_store_up", "gauge",
           "1 while the feature store answers, 0 from a failed call until the next success.",
           int64_t{store_unreachable_since_ms.Get() == 0 ? 1 : 0});
  e.Histogram("ctrjoin_lookup_latency_seconds", "Duration of one feature store call.", latency);
}

}  // namespace ctrjoin
