#pragma once
// Renders Metrics in the Prometheus text exposition format, version 0.0.4
// (what /metrics serves). Names follow Prometheus' conventions: prefix
// `ctrjoin_`, counters end in `_total`, times are in `_seconds`, sizes in
// `_bytes`, each family has HELP and TYPE lines, and a family's series are
// told apart by labels (`topic`, `stage`, `kind`). README.md ("HTTP endpoint
// and metrics") lists every family; a test checks the two agree.
//
// Stateless: RenderPrometheus reads the atomics of a Metrics that other
// threads keep writing (each value is read atomically; a histogram's
// buckets, sum and count are not one snapshot, but its +Inf bucket always
// equals its _count). Any thread.

#include <cstdint>
#include <string>

#include "src/metrics.h"

namespace ctrjoin {

inline constexpr char kPrometheusContentType[] = "text/plain; version=0.0.4; charset=utf-8";

struct ExpositionOptions {
  // Values of the `topic` label: the Kafka topics read, or for files the
  // stream names.
  std::string impressions_topic = "impressions";
  std::string clicks_topic = "clicks";
};

// now_ms: the wall clock (ms since the Unix epoch), for the watermark lag.
std::string RenderPrometheus(const Metrics& metrics, const ExpositionOptions& options,
                             int64_t now_ms);

// The wall clock when this process started (ms since the Unix epoch).
int64_t ProcessStartMs();

}  // namespace ctrjoin
