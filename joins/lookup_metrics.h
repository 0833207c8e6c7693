#pragma once
// Feature lookups, summed over all lookups (user, item, ...). Written by the
// lookup services' callers and completion threads (relaxed atomics); read by
// /metrics and summaries. Owned by whoever assembles the pipeline; borrowed
// by every LookupService and FeatureCache.

#include "src/ops/metrics.h"
#include "src/ops/prometheus.h"

namespace ctrjoin {

struct LookupMetrics {
  Counter cache_hits;
  Counter cache_misses;
  Counter cache_evictions;
  Gauge cache_entries;
  Gauge cache_bytes;
  Counter requests;          // rows asked of the store (after coalescing)
  Counter store_calls;       // GetMultiple calls
  Counter coalesced;         // misses that joined a request already pending
  Counter retries;           // rows of failed store calls queued for a retry
  Counter errors;            // failed store calls
  Counter partial;           // lookups given up (emit_partial), impressions flagged partial
  Counter cells_rejected;    // cells not of their column's declared type, left out
  LatencyHistogram latency;  // one store call (GetMultiple), retries counted apart
  // When the feature store stopped answering (wall-clock ms), 0 while it
  // answers.
  Gauge store_unreachable_since_ms;

  // Writes the families of these metrics (src/ops/README.md lists them).
  void Expose(Exposition& e) const;
};

}  // namespace ctrjoin
