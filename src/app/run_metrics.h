#pragma once
// Every metric of a pipeline run, composed: the pipeline's own, the label
// join's, the feature lookups', the checkpoint coordinator's and the Kafka
// sinks' producers' (each defined
// beside its component). Owned by whoever assembles the run (main, the demo,
// the benchmarks, tests) and outlives the pipeline and the HTTP server; its
// parts are written from the components' threads (see each part).
//
// Also what health and readiness mean for a run, for /healthz and /ready.

#include <cstdint>
#include <mutex>
#include <string>

#include "joins/join_metrics.h"
#include "joins/lookup_metrics.h"
#include "sinks/producer_metrics.h"
#include "src/ops/prometheus.h"
#include "src/pipeline/pipeline_metrics.h"
#include "txn/checkpoint_metrics.h"

namespace ctrjoin {

// What start-up is doing or waiting for, until the pipeline runs: /ready
// names it. Written by main's thread, read by the HTTP server's.
class StartupPhase {
 public:
  void Set(std::string what) {
    std::lock_guard lock(mu_);
    what_ = std::move(what);
  }
  std::string Get() const {
    std::lock_guard lock(mu_);
    return what_;
  }

 private:
  mutable std::mutex mu_;
  std::string what_;
};

struct Metrics {
  StartupPhase startup;
  PipelineMetrics pipeline;
  JoinMetrics join;
  LookupMetrics lookup;
  CheckpointMetrics checkpoint;
  ProducerMetrics producer;

  // Adds every part's families to the registry; borrows *this.
  void RegisterWith(MetricRegistry& registry, const TopicLabels& topics) const;
};

// The whole exposition of a run's metrics (what /metrics serves).
std::string RenderPrometheus(const Metrics& metrics, const TopicLabels& topics, int64_t now_ms);

struct ReadinessOptions {
  bool checkpoints = false;  // readiness then also watches checkpoint age
  // Not ready when the newest of (last completed checkpoint, pipeline start)
  // is older than this.
  int64_t max_checkpoint_age_ms = 10'000;
  // Not ready when the source's brokers or the feature store have not
  // answered for longer than this (0: never for that reason).
  int64_t unreachable_grace_ms = 10'000;
};

// Why the run is not ready (one line), or "" when it is. now_ms: wall clock.
std::string NotReadyReason(const Metrics& metrics, const ReadinessOptions& options, int64_t now_ms);

// Why the run is unhealthy (one line), or "" when it is healthy.
std::string UnhealthyReason(const Metrics& metrics);

}  // namespace ctrjoin
