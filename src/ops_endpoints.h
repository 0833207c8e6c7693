#pragma once
// The operational endpoints of a pipeline run, as routes for HttpServer:
//   /metrics  Metrics in the Prometheus text format (src/prometheus.h);
//   /healthz  200 "ok" while the process runs, 503 once a stage failed;
//   /ready    200 "ready" when the source has its partitions assigned (or
//             its files open) and, with checkpoints, the last checkpoint
//             completed within max_checkpoint_age_ms; else 503 and why.
// Built by RunPipelineWith (src/app.cc), served on the HTTP server's
// thread. Borrows the Metrics, which must outlive the server.

#include <cstdint>
#include <functional>
#include <string>

#include "src/http_server.h"
#include "src/metrics.h"
#include "src/prometheus.h"

namespace ctrjoin {

struct OpsEndpointOptions {
  ExpositionOptions exposition;
  bool checkpoints = false;  // /ready then also watches checkpoint age
  // /ready fails when the newest of (last completed checkpoint, pipeline
  // start) is older than this.
  int64_t max_checkpoint_age_ms = 10'000;
  // Called before each /metrics rendering, on the server thread: refreshes
  // gauges that are read on demand (RocksDB memory). May be empty.
  std::function<void()> before_scrape;
};

HttpRoutes OpsRoutes(const Metrics& metrics, OpsEndpointOptions options);

// Why the run is not ready (one line), or "" when it is. now_ms: wall clock.
std::string NotReadyReason(const Metrics& metrics, const OpsEndpointOptions& options,
                           int64_t now_ms);

}  // namespace ctrjoin
