#include "joins/lookup_metrics.h"

namespace ctrjoin {

LookupCounters& LookupMetrics::For(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  for (LookupCounters& c : lookups_) {
    if (c.name == name) return c;
  }
  LookupCounters& c = lookups_.emplace_back();
  c.name = name;
  return c;
}

uint64_t LookupMetrics::Sum(Counter LookupCounters::*field) const {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t sum = 0;
  for (const LookupCounters& c : lookups_) sum += (c.*field).Get();
  return sum;
}

void LookupMetrics::Expose(Exposition& e) const {
  struct Family {
    const char* name;
    const char* help;
    const Counter LookupCounters::*counter;
    const Gauge LookupCounters::*gauge;
  };
  static constexpr Family kFamilies[] = {
      {"ctrjoin_lookup_cache_hits_total", "Feature lookups answered by the cache.",
       &LookupCounters::cache_hits, nullptr},
      {"ctrjoin_lookup_cache_misses_total", "Feature lookups the cache could not answer.",
       &LookupCounters::cache_misses, nullptr},
      {"ctrjoin_lookup_cache_evictions_total", "Rows evicted from the cache.",
       &LookupCounters::cache_evictions, nullptr},
      {"ctrjoin_lookup_cache_entries", "Rows held in the cache.", nullptr,
       &LookupCounters::cache_entries},
      {"ctrjoin_lookup_cache_bytes", "Bytes held in the cache.", nullptr,
       &LookupCounters::cache_bytes},
      {"ctrjoin_lookup_store_rows_total", "Rows asked of the feature store (after coalescing).",
       &LookupCounters::requests, nullptr},
      {"ctrjoin_lookup_store_calls_total", "Feature store calls (getMultiple).",
       &LookupCounters::store_calls, nullptr},
      {"ctrjoin_lookup_coalesced_total", "Cache misses that joined a request already pending.",
       &LookupCounters::coalesced, nullptr},
      {"ctrjoin_lookup_retries_total", "Rows of failed feature store calls queued for a retry.",
       &LookupCounters::retries, nullptr},
      {"ctrjoin_lookup_errors_total", "Failed feature store calls.", &LookupCounters::errors,
       nullptr},
      {"ctrjoin_lookup_partial_total", "Lookups given up (emit_partial): samples flagged partial.",
       &LookupCounters::partial, nullptr},
      {"ctrjoin_lookup_cells_rejected_total",
       "Feature cells not of their column's declared type, left out of samples.",
       &LookupCounters::cells_rejected, nullptr},
  };
  std::lock_guard<std::mutex> lock(mu_);
  for (const Family& f : kFamilies) {
    e.Family(f.name, f.counter != nullptr ? "counter" : "gauge", f.help);
    for (const LookupCounters& c : lookups_) {
      if (f.counter != nullptr) {
        e.Sample(f.name, {{"lookup", c.name}}, (c.*f.counter).Get());
      } else {
        e.Sample(f.name, {{"lookup", c.name}}, (c.*f.gauge).Get());
      }
    }
  }
  e.Family("ctrjoin_lookup_latency_seconds", "histogram", "Duration of one feature store call.");
  for (const LookupCounters& c : lookups_) {
    e.Histogram("ctrjoin_lookup_latency_seconds", {{"lookup", c.name}}, c.latency);
  }
  e.Single("ctrjoin_feature_store_up", "gauge",
           "1 while the feature store answers, 0 from a failed call until the next success.",
           int64_t{store_unreachable_since_ms.Get() == 0 ? 1 : 0});
  e.Metric("ctrjoin_feature_store_breaker_state",
           "The feature store's circuit breaker: 0 closed, 1 open (calls held back), 2 half-open "
           "(one probe call out).",
           breaker_state);
  e.Metric("ctrjoin_feature_store_breaker_openings_total",
           "Times the feature store's circuit breaker opened.", breaker_openings);
}

}  // namespace ctrjoin
