#pragma once
// A minimal JSON writer for the benchmarks' results (ctrjoin bench, e2e_bench): nested
// objects and arrays, commas placed automatically, non-finite numbers
// written as null. One owner thread.

#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sinks/json_encoder.h"
#include "src/bench/probe.h"
#include "src/ops/metrics.h"

namespace ctrjoin::bench {

class JsonWriter {
 public:
  // key is ignored inside arrays and for the outermost value.
  JsonWriter& BeginObject(std::string_view key = {}) { return Begin(key, '{'); }
  JsonWriter& EndObject() { return End('}'); }
  JsonWriter& BeginArray(std::string_view key = {}) { return Begin(key, '['); }
  JsonWriter& EndArray() { return End(']'); }
  JsonWriter& Number(std::string_view key, double v) {
    Key(key);
    if (std::isfinite(v)) {
      out_ += fmt::format("{:.6g}", v);
    } else {
      out_ += "null";
    }
    return *this;
  }
  JsonWriter& Int(std::string_view key, int64_t v) {
    Key(key);
    out_ += std::to_string(v);
    return *this;
  }
  JsonWriter& String(std::string_view key, std::string_view v) {
    Key(key);
    AppendJsonString(v, out_);
    return *this;
  }
  JsonWriter& Bool(std::string_view key, bool v) {
    Key(key);
    out_ += v ? "true" : "false";
    return *this;
  }
  // An already encoded JSON value.
  JsonWriter& Raw(std::string_view key, std::string_view json) {
    Key(key);
    out_ += json;
    return *this;
  }
  // {"count", "p50", "p99", "p999", "max", "mean"} in milliseconds.
  JsonWriter& Quantiles(std::string_view key, const Histogram& h) {
    return BeginObject(key)
        .Int("count", static_cast<int64_t>(h.count()))
        .Number("p50", h.QuantileMs(0.50))
        .Number("p99", h.QuantileMs(0.99))
        .Number("p999", h.QuantileMs(0.999))
        .Number("max", h.MaxMs())
        .Number("mean", h.MeanMs())
        .EndObject();
  }

  // The same for one of the pipeline's own per-batch histograms
  // (src/ops/metrics.h: fixed buckets, quantiles interpolated inside them).
  JsonWriter& Quantiles(std::string_view key, const LatencyHistogram& h) {
    return BeginObject(key)
        .Int("count", static_cast<int64_t>(h.count()))
        .Number("p50", h.QuantileMs(0.50))
        .Number("p99", h.QuantileMs(0.99))
        .Number("p999", h.QuantileMs(0.999))
        .Number("max", h.max_ms())
        .Number("mean", h.count() > 0 ? h.sum_ms() / static_cast<double>(h.count()) : 0)
        .EndObject();
  }

  const std::string& str() const { return out_; }

 private:
  JsonWriter& Begin(std::string_view key, char open) {
    Key(key);
    out_ += open;
    first_.push_back(true);
    in_array_.push_back(open == '[');
    return *this;
  }
  JsonWriter& End(char close) {
    out_ += close;
    first_.pop_back();
    in_array_.pop_back();
    return *this;
  }
  void Key(std::string_view key) {
    if (first_.empty()) return;
    if (!first_.back()) out_ += ',';
    first_.back() = false;
    if (!in_array_.back()) {
      AppendJsonString(key, out_);
      out_ += ':';
    }
  }

  std::string out_;
  std::vector<bool> first_;
  std::vector<bool> in_array_;
};

}  // namespace ctrjoin::bench
