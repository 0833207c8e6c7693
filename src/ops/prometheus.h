#pragma once
// The Prometheus text exposition format, version 0.0.4 (what /metrics
// serves), and the registry it renders. Names follow Prometheus'
// conventions: prefix `ctrjoin_`, counters end in `_total`, times are in
// `_seconds`, sizes in `_bytes`, each family has HELP and TYPE lines, and a
// family's series are told apart by labels (`topic`, `stage`, `kind`).
// src/ops/README.md lists every family; a test checks the two agree.
//
// The exporter knows no component: each one writes its own families
// (PipelineMetrics::Expose, JoinMetrics::Expose, ...) through an Exposition,
// and whoever assembles the process adds those writers to a MetricRegistry.
// Rendering reads atomics that other threads keep writing (each value is read
// atomically; a histogram's buckets, sum and count are not one snapshot, but
// its +Inf bucket always equals its _count). Any thread.

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "src/ops/metrics.h"

namespace ctrjoin {

inline constexpr char kPrometheusContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// Writes one family at a time into a text buffer: HELP and TYPE, then its
// samples. Used on the rendering thread only; borrows the buffer.
class Exposition {
 public:
  using Label = std::pair<std::string_view, std::string_view>;

  // now_ms: the wall clock of this rendering (ms since the Unix epoch), for
  // figures such as a lag behind real time.
  Exposition(std::string& out, int64_t now_ms) : out_(out), now_ms_(now_ms) {}

  int64_t now_ms() const { return now_ms_; }

  void Family(std::string_view name, std::string_view type, std::string_view help);
  void Sample(std::string_view name, std::initializer_list<Label> labels, double value);
  void Sample(std::string_view name, std::initializer_list<Label> labels, uint64_t value);
  void Sample(std::string_view name, std::initializer_list<Label> labels, int64_t value);

  // One counter or gauge family with a single unlabelled series.
  template <typename T>
  void Single(std::string_view name, std::string_view type, std::string_view help, T value) {
    Family(name, type, help);
    Sample(name, {}, value);
  }

  // A Counter is exposed as a counter, a Gauge as a gauge: the type comes
  // from the metric, never from a string at the call site.
  void Metric(std::string_view name, std::string_view help, const Counter& c) {
    Single(name, "counter", help, c.Get());
  }
  void Metric(std::string_view name, std::string_view help, const Gauge& g) {
    Single(name, "gauge", help, g.Get());
  }

  // _bucket (cumulative, le in seconds, ending with +Inf), _sum, _count.
  void Histogram(std::string_view name, std::initializer_list<Label> labels,
                 const LatencyHistogram& h);
  // A histogram family with a single unlabelled series.
  void Histogram(std::string_view name, std::string_view help, const LatencyHistogram& h) {
    Family(name, "histogram", help);
    Histogram(name, {}, h);
  }

 private:
  void Series(std::string_view name, std::initializer_list<Label> labels, Label extra);
  void Escape(std::string_view text, bool quotes);

  std::string& out_;
  const int64_t now_ms_;
};

// The components whose metrics /metrics serves. Filled by whoever assembles
// the process before the HTTP server starts; rendered on the server's thread
// afterwards (no writer after that, so no lock). The writers borrow their
// metrics, which must outlive the registry's renderings.
class MetricRegistry {
 public:
  using Writer = std::function<void(Exposition&)>;

  // Writers render in the order they were added, after the process's own
  // families (ctrjoin_up, ctrjoin_process_start_time_seconds).
  void Add(Writer writer) { writers_.push_back(std::move(writer)); }

  std::string Render(int64_t now_ms) const;

 private:
  std::vector<Writer> writers_;
};

// The wall clock when this process started (ms since the Unix epoch).
int64_t ProcessStartMs();

// Milliseconds since the Unix epoch as seconds, as Prometheus wants times.
inline double Seconds(int64_t ms) { return static_cast<double>(ms) / 1000; }

}  // namespace ctrjoin
