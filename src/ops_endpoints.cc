#include "src/ops_endpoints.h"

#include <algorithm>
#include <memory>

#include <fmt/format.h>

#include "src/clock.h"

namespace ctrjoin {

std::string NotReadyReason(const Metrics& metrics, const OpsEndpointOptions& options,
                           int64_t now_ms) {
  const PipelineMetrics& p = metrics.pipeline;
  if (p.failed.Get() != 0) return "a pipeline stage failed (see the log)";
  if (p.running.Get() == 0) return "the pipeline is not running";
  if (p.assigned_partitions.Get() <= 0) return "the source has no input partitions assigned yet";
  if (!options.checkpoints) return "";
  const int64_t last = metrics.checkpoint.last_completed_ms.Get();
  const int64_t since = std::max(last, p.started_ms.Get());
  if (now_ms - since <= options.max_checkpoint_age_ms) return "";
  if (last == 0) {
    return fmt::format("no checkpoint completed in the {:.1f} s since the start (bound {:.1f} s)",
                       (now_ms - since) / 1000.0, options.max_checkpoint_age_ms / 1000.0);
  }
  return fmt::format("the last checkpoint completed {:.1f} s ago (bound {:.1f} s)",
                     (now_ms - since) / 1000.0, options.max_checkpoint_age_ms / 1000.0);
}

HttpRoutes OpsRoutes(const Metrics& metrics, OpsEndpointOptions options) {
  auto shared = std::make_shared<const OpsEndpointOptions>(std::move(options));
  HttpRoutes routes;
  routes["/metrics"] = [&metrics, shared] {
    if (shared->before_scrape) shared->before_scrape();
    return HttpResponse{200, kPrometheusContentType,
                        RenderPrometheus(metrics, shared->exposition, WallClockMs())};
  };
  routes["/healthz"] = [&metrics] {
    if (metrics.pipeline.failed.Get() != 0) {
      return HttpResponse{503, "text/plain; charset=utf-8",
                          "failed: a pipeline stage failed (see the log)\n"};
    }
    return HttpResponse{200, "text/plain; charset=utf-8", "ok\n"};
  };
  routes["/ready"] = [&metrics, shared] {
    const std::string reason = NotReadyReason(metrics, *shared, WallClockMs());
    if (!reason.empty()) {
      return HttpResponse{503, "text/plain; charset=utf-8", "not ready: " + reason + "\n"};
    }
    return HttpResponse{200, "text/plain; charset=utf-8", "ready\n"};
  };
  return routes;
}

}  // namespace ctrjoin
