#pragma once
// Process-wide counters and gauges. Written from any pipeline thread with
// relaxed atomics (hot paths add per batch, not per event); read by progress
// reporting and, later, the /metrics endpoint. Owned by whoever assembles the
// pipeline and outlives it.

#include <atomic>
#include <cstdint>

namespace ctrjoin {

class Counter {
 public:
  void Add(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t Get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

class Gauge {
 public:
  void Set(int64_t v) { v_.store(v, std::memory_order_relaxed); }
  void Add(int64_t d) { v_.fetch_add(d, std::memory_order_relaxed); }
  int64_t Get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> v_{0};
};

struct JoinMetrics {
  Counter positives;
  Counter negatives;
  Counter corrections;
  Counter duplicate_clicks;       // further clicks for an already-labelled impression
  Counter duplicate_impressions;  // impression ids seen again; the first wins
  Counter orphan_clicks;          // held clicks whose impression never came
  Counter late_clicks;            // clicks after the negative was emitted
  Counter clicks_outside_window;  // click ts before the impression or after ts + W
  Counter late_impressions;       // impressions whose window had already closed
  Gauge state_entries;            // keys held (in memory and spilled)
  Gauge state_memory_bytes;       // hot (in-memory) state bytes
  Gauge spilled_entries;          // keys whose state lives in RocksDB
  Counter spill_writes;           // entries moved to RocksDB
};

// Feature lookups, summed over all lookups (user, item, ...).
struct LookupMetrics {
  Counter cache_hits;
  Counter cache_misses;
  Counter cache_evictions;
  Gauge cache_entries;
  Gauge cache_bytes;
  Counter requests;        // rows asked of the store (after coalescing)
  Counter store_calls;     // GetMultiple calls
  Counter coalesced;       // misses that joined a request already pending
  Counter retries;         // failed store calls retried
  Counter errors;          // failed store calls
  Counter partial;         // lookups given up (emit_partial), impressions flagged partial
  Counter latency_us_sum;  // store call latency, summed
};

struct Metrics {
  Counter impressions_in;
  Counter clicks_in;
  Counter dead_letters;
  Counter samples_out;
  Counter batches;
  Gauge watermark_ms;     // current global watermark (event time)
  Gauge max_event_ts_ms;  // largest event time seen
  JoinMetrics join;
  LookupMetrics lookup;
};

}  // namespace ctrjoin
