#include "src/ops/ops_endpoints.h"

#include <memory>
#include <utility>

#include "src/core/clock.h"

namespace ctrjoin {

namespace {

constexpr char kText[] = "text/plain; charset=utf-8";

std::string Ask(const std::function<std::string()>& probe) { return probe ? probe() : ""; }

}  // namespace

HttpRoutes OpsRoutes(OpsProbes probes) {
  auto shared = std::make_shared<const OpsProbes>(std::move(probes));
  HttpRoutes routes;
  routes["/metrics"] = [shared] {
    if (shared->before_scrape) shared->before_scrape();
    return HttpResponse{200, kPrometheusContentType, shared->registry->Render(WallClockMs())};
  };
  routes["/healthz"] = [shared] {
    const std::string reason = Ask(shared->unhealthy);
    if (!reason.empty()) return HttpResponse{503, kText, "failed: " + reason + "\n"};
    return HttpResponse{200, kText, "ok\n"};
  };
  routes["/ready"] = [shared] {
    const std::string reason = Ask(shared->not_ready);
    if (!reason.empty()) return HttpResponse{503, kText, "not ready: " + reason + "\n"};
    return HttpResponse{200, kText, "ready\n"};
  };
  return routes;
}

}  // namespace ctrjoin
