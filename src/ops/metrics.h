#pragma once
// The metric types: counters, gauges and latency histograms. Written from
// any thread with relaxed atomics (hot paths add per batch, not per event);
// read by progress reporting, the end-of-run summary and the /metrics
// endpoint. Each component defines its metrics beside its code
// (src/pipeline/pipeline_metrics.h, joins/join_metrics.h,
// joins/lookup_metrics.h, txn/checkpoint_metrics.h) and says how they are
// exposed; src/ops/prometheus.h renders whatever is registered with a
// MetricRegistry. The owner of a metrics struct is whoever assembles the
// pipeline (main, the demo, tests); it outlives the pipeline and the HTTP
// server.

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
  static constexpr double kBoundsMs[] = {0.05, 0.1, 0.2, 0.5, 1,    2,    5,    10,   20,
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

}  // namespace ctrjoin
