#pragma once
// Process-wide counters and gauges. Written from any pipeline thread with
// relaxed atomics (hot paths add per batch, not per event); read by progress
// reporting and, later, the /metrics endpoint. Owned by whoever assembles the
// pipeline and outlives it.

#include <atomic>
#include <cstddef>
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

// Latencies in fixed buckets (milliseconds), as a Prometheus histogram.
class LatencyHistogram {
 public:
  static constexpr double kBoundsMs[] = {1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};
  static constexpr size_t kBuckets = sizeof(kBoundsMs) / sizeof(kBoundsMs[0]) + 1;  // + Inf

  void Record(double ms) {
    size_t i = 0;
    while (i + 1 < kBuckets && ms > kBoundsMs[i]) ++i;
    buckets_[i].Add();
    sum_us_.Add(static_cast<uint64_t>(ms * 1000));
    count_.Add();
    uint64_t us = static_cast<uint64_t>(ms * 1000), prev = max_us_.load(std::memory_order_relaxed);
    while (us > prev && !max_us_.compare_exchange_weak(prev, us, std::memory_order_relaxed)) {
    }
  }
  uint64_t count() const { return count_.Get(); }
  uint64_t bucket(size_t i) const { return buckets_[i].Get(); }  // not cumulative
  double sum_ms() const { return sum_us_.Get() / 1000.0; }
  double max_ms() const { return max_us_.load(std::memory_order_relaxed) / 1000.0; }
  // The upper bound of the bucket holding quantile q (0..1); 0 when empty.
  double QuantileBoundMs(double q) const {
    const uint64_t n = count();
    if (n == 0) return 0;
    uint64_t seen = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      seen += bucket(i);
      if (seen >= q * n) return i + 1 < kBuckets ? kBoundsMs[i] : max_ms();
    }
    return max_ms();
  }

 private:
  Counter buckets_[kBuckets];
  Counter sum_us_;
  Counter count_;
  std::atomic<uint64_t> max_us_{0};
};

// Exactly-once: the checkpoint coordinator's figures.
struct CheckpointMetrics {
  Counter completed;            // checkpoints written (state + pre-committed output)
  Counter committed;            // epochs committed
  Counter aborted_epochs;       // epochs aborted (a failed commit, or the run failed)
  Counter restores;             // starts that restored a checkpoint
  Gauge last_committed_epoch;
  Gauge last_bytes;             // state bytes the last checkpoint added
  Counter bytes_total;          // summed over checkpoints
  LatencyHistogram duration;    // barrier injected -> checkpoint complete
  LatencyHistogram commit_lag;  // barrier injected -> epoch committed (visible)
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
  CheckpointMetrics checkpoint;
};

}  // namespace ctrjoin
