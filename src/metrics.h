#pragma once
// Process-wide counters, gauges and latency histograms. Written from any
// pipeline thread with relaxed atomics (hot paths add per batch, not per
// event); read by progress reporting, the end-of-run summary and the
// /metrics endpoint (src/prometheus.h renders every field; its README
// section names them). Owned by whoever assembles the pipeline (main, the
// demo, tests) and outlives the pipeline and the HTTP server.

#include <algorithm>
#include <atomic>
#include <chrono>
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
  Gauge() = default;
  explicit Gauge(int64_t initial) : v_(initial) {}
  void Set(int64_t v) { v_.store(v, std::memory_order_relaxed); }
  void Add(int64_t d) { v_.fetch_add(d, std::memory_order_relaxed); }
  int64_t Get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> v_{0};
};

// Latencies in fixed exponential buckets, as a Prometheus histogram. Bounds
// go in 1-2-5 steps (x2 to x2.5) from 50 us to 10 s, so that p50, p99 and
// p99.9 below 2 ms still land in different buckets; QuantileMs interpolates
// inside a bucket. Record costs a short scan and three relaxed atomic adds:
// call it per batch, not per event. Any thread; readers (summary logs,
// /metrics) see each field atomically but not all fields at one instant.
class LatencyHistogram {
 public:
  static constexpr double kBoundsMs[] = {0.05, 0.1, 0.2, 0.5, 1,   2,    5,    10,   20,
                                         50,   100, 200, 500, 1000, 2000, 5000, 10000};
  static constexpr size_t kBuckets = sizeof(kBoundsMs) / sizeof(kBoundsMs[0]) + 1;  // + Inf

  void Record(double ms) {
    if (!(ms > 0)) ms = 0;  // also NaN
    size_t i = 0;
    while (i + 1 < kBuckets && ms > kBoundsMs[i]) ++i;
    buckets_[i].Add();
    const auto ns = static_cast<uint64_t>(std::min(ms, 1e12) * 1e6);
    sum_ns_.Add(ns);
    count_.Add();
    uint64_t prev = max_ns_.load(std::memory_order_relaxed);
    while (ns > prev && !max_ns_.compare_exchange_weak(prev, ns, std::memory_order_relaxed)) {
    }
  }
  void Record(std::chrono::steady_clock::duration d) {
    Record(std::chrono::duration<double, std::milli>(d).count());
  }

  uint64_t count() const { return count_.Get(); }
  uint64_t bucket(size_t i) const { return buckets_[i].Get(); }  // not cumulative
  double sum_ms() const { return sum_ns_.Get() / 1e6; }
  double sum_seconds() const { return sum_ns_.Get() / 1e9; }
  double max_ms() const { return max_ns_.load(std::memory_order_relaxed) / 1e6; }

  // The upper bound of the bucket holding quantile q (0..1); the largest
  // value recorded for the +Inf bucket; 0 when empty.
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

  // Quantile q (0..1) estimated by linear interpolation inside its bucket
  // (as Prometheus' histogram_quantile does), never above the largest value
  // recorded; 0 when empty.
  double QuantileMs(double q) const {
    uint64_t counts[kBuckets];
    uint64_t n = 0;
    for (size_t i = 0; i < kBuckets; ++i) n += counts[i] = bucket(i);
    if (n == 0) return 0;
    const double rank = std::clamp(q, 0.0, 1.0) * static_cast<double>(n);
    const double max = max_ms();
    uint64_t below = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      if (counts[i] == 0 || below + counts[i] < rank) {
        below += counts[i];
        continue;
      }
      const double lower = i == 0 ? 0 : kBoundsMs[i - 1];
      const double upper = i + 1 < kBuckets ? std::min(kBoundsMs[i], max) : max;
      const double fraction = (rank - static_cast<double>(below)) / counts[i];
      return std::min(lower + (upper - lower) * fraction, max);
    }
    return max;
  }

 private:
  Counter buckets_[kBuckets];
  Counter sum_ns_;
  Counter count_;
  std::atomic<uint64_t> max_ns_{0};
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
  // RocksDB block cache + memtables of every shard's spill store (SpillMemory),
  // refreshed when /metrics is scraped.
  Gauge rocksdb_memory_bytes;
  Gauge rocksdb_memory_limit_bytes;
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
  Counter retries;         // rows of failed store calls queued for a retry
  Counter errors;          // failed store calls
  Counter partial;         // lookups given up (emit_partial), impressions flagged partial
  LatencyHistogram latency;  // one store call (GetMultiple), retries counted apart
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
  Gauge last_completed_ms;      // wall clock when the last checkpoint completed; 0: none yet
  LatencyHistogram duration;    // barrier injected -> checkpoint complete
  LatencyHistogram commit_lag;  // barrier injected -> epoch committed (visible)
  // Source read -> epoch committed, one observation per source batch with
  // records (Barrier::batch_reads): end-to-end latency to visible output.
  LatencyHistogram read_to_commit;
};

// Where a source batch's time goes, one histogram per stage (not per shard
// or per pair of nodes). Each batch that carried records adds one
// observation to each: parse = source read -> parsed; enrich = parsed ->
// lookups done (only with lookups); route = -> routed (includes the wait in
// the sequencer); shard = routed -> the slowest shard done; sink = -> the
// last of its output written. They add up to end_to_end.
enum class Stage : uint8_t { kParse, kEnrich, kRoute, kShard, kSink };
inline constexpr size_t kStages = 5;

inline const char* StageName(Stage stage) {
  switch (stage) {
    case Stage::kParse: return "parse";
    case Stage::kEnrich: return "enrich";
    case Stage::kRoute: return "route";
    case Stage::kShard: return "shard";
    case Stage::kSink: return "sink";
  }
  return "unknown";
}

struct PipelineMetrics {
  LatencyHistogram stage[kStages];  // indexed by Stage
  LatencyHistogram& of(Stage s) { return stage[static_cast<size_t>(s)]; }
  LatencyHistogram end_to_end;      // source read -> all of the batch's output written
  // A batch whose watermark made shards emit negatives: router advanced the
  // watermark -> the last of those negatives written.
  LatencyHistogram negative_delay;
  Gauge running;              // 1 while Pipeline::Run runs
  Gauge failed;               // 1 once a stage failed (the run then ends)
  Gauge started_ms;           // wall clock when Pipeline::Run began
  Gauge assigned_partitions;  // input partitions assigned to the source (files: 2)
};

struct Metrics {
  Counter impressions_in;
  Counter clicks_in;
  Counter dead_letters;
  Counter dead_letters_in[2];  // the same, by input stream (indexed by StreamKind)
  // Records not read yet, by input stream (indexed by StreamKind): Kafka's
  // high watermark - position summed over assigned partitions; -1: unknown
  // (files, or nothing fetched yet). Set by the source node about once a second.
  Gauge consumer_lag[2] = {Gauge(-1), Gauge(-1)};
  Counter samples_out;
  Counter batches;
  Counter events_past_end;  // replay: read after the range's windows closed, dropped
  Gauge watermark_ms;     // current global watermark (event time)
  Gauge max_event_ts_ms;  // largest event time seen
  JoinMetrics join;
  PipelineMetrics pipeline;
  LookupMetrics lookup;
  CheckpointMetrics checkpoint;
};

}  // namespace ctrjoin
