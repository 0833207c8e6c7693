#pragma once
// Feature lookup metrics: one set of counters per lookup (user, item, ...),
// exposed with the label lookup="<name>", and the store's own figures
// (reachability, circuit breaker). Counters are written by the lookup
// services' callers and io threads, and by the caches (relaxed atomics);
// read by /metrics and summaries. Owned by whoever assembles the pipeline;
// borrowed by every LookupService and FeatureCache.

#include <deque>
#include <mutex>
#include <string>

#include "src/ops/metrics.h"
#include "src/ops/prometheus.h"

namespace ctrjoin {

// One lookup's figures.
struct LookupCounters {
  std::string name;  // the lookup's name: the label's value
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
};

class LookupMetrics {
 public:
  // The counters of the lookup called name, made on first use (a lookup
  // service built again for the same lookups finds its own). Any thread;
  // the address stays valid for the life of this object.
  LookupCounters& For(const std::string& name);
  // The sum of one counter over every lookup (summaries, tests).
  uint64_t Sum(Counter LookupCounters::*field) const;

  // When the feature store stopped answering (wall-clock ms), 0 while it
  // answers.
  Gauge store_unreachable_since_ms;
  Gauge breaker_state;       // BreakerState: 0 closed, 1 open, 2 half-open
  Counter breaker_openings;  // times the breaker opened

  // Writes the families of these metrics (src/ops/README.md lists them).
  void Expose(Exposition& e) const;

 private:
  mutable std::mutex mu_;               // protects the deque's structure, not the counters
  std::deque<LookupCounters> lookups_;  // deque: addresses stay put
};

}  // namespace ctrjoin
