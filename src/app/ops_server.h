#pragma once
// A run's /metrics, /healthz and /ready (src/ops/README.md): started before
// anything else, so that a start-up that waits (for a broker, a lock, a
// restore) is visible and /ready says what it waits for, and stopped after
// the pipeline.
//
// Created and destroyed by main's thread (RunPipeline, or RunPipelineWith
// when its caller brought none); the routes run on the HTTP server's
// thread. Owns the server and the metric registry; borrows the metrics,
// which must outlive it.

#include <memory>
#include <mutex>
#include <string>

#include "src/app/config.h"
#include "src/app/run_metrics.h"
#include "src/ops/http_server.h"
#include "src/ops/prometheus.h"
#include "src/state/spill_store.h"

namespace ctrjoin {

class OpsServer {
 public:
  // checkpoints: readiness then also watches checkpoint age.
  static Result<std::unique_ptr<OpsServer>> Start(const Config& config, Metrics& metrics,
                                                  bool checkpoints);
  ~OpsServer();

  // The spill store's memory, once the pipeline built it: its usage is
  // exported on each scrape.
  void Attach(std::shared_ptr<const SpillMemory> memory);
  std::string Url() const;

 private:
  OpsServer() = default;
  MetricRegistry registry_;
  std::mutex mu_;  // guards memory_
  std::shared_ptr<const SpillMemory> memory_;
  std::unique_ptr<HttpServer> server_;
};

}  // namespace ctrjoin
