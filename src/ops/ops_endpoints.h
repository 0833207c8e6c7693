#pragma once
// The operational endpoints of a process, as routes for HttpServer:
//   /metrics  every registered metric in the Prometheus text format;
//   /healthz  200 "ok", or 503 and why once `unhealthy` says so;
//   /ready    200 "ready", or 503 "not ready: <why>" while `not_ready` says so.
// What health and readiness mean is the composer's (src/app/run_metrics.h);
// this file knows no component. Built by whoever assembles the process,
// served on the HTTP server's thread. Borrows the registry, which must
// outlive the server.

#include <functional>
#include <string>

#include "src/ops/http_server.h"
#include "src/ops/prometheus.h"

namespace ctrjoin {

struct OpsProbes {
  const MetricRegistry* registry = nullptr;  // required
  // Called before each /metrics rendering, on the server thread: refreshes
  // gauges that are read on demand (RocksDB memory). May be empty.
  std::function<void()> before_scrape;
  // Why the process is unhealthy / not ready (one line), or "". May be empty
  // (always healthy / ready). Called on the server thread.
  std::function<std::string()> unhealthy;
  std::function<std::string()> not_ready;
};

HttpRoutes OpsRoutes(OpsProbes probes);

}  // namespace ctrjoin
