#include "src/app/ops_server.h"

#include <spdlog/spdlog.h>

#include "src/core/clock.h"
#include "src/ops/ops_endpoints.h"

namespace ctrjoin {

Result<std::unique_ptr<OpsServer>> OpsServer::Start(const Config& config, Metrics& metrics,
                                                    bool checkpoints) {
  std::unique_ptr<OpsServer> ops(new OpsServer());
  TopicLabels topics;
  if (config.source.type == SourceType::kKafka) {
    topics = {config.source.kafka.impressions_topic, config.source.kafka.clicks_topic};
  }
  metrics.RegisterWith(ops->registry_, topics);
  ReadinessOptions readiness;
  readiness.checkpoints = checkpoints;
  readiness.max_checkpoint_age_ms =
      config.http.ReadyMaxCheckpointAgeMs(config.checkpoint.interval_ms);
  readiness.unreachable_grace_ms = config.http.ready_unreachable_grace_ms;
  OpsProbes probes;
  probes.registry = &ops->registry_;
  OpsServer* self = ops.get();
  probes.before_scrape = [self, &metrics] {
    std::lock_guard lock(self->mu_);
    if (self->memory_ != nullptr) {
      metrics.join.rocksdb_memory_bytes.Set(static_cast<int64_t>(self->memory_->Usage()));
    }
  };
  probes.unhealthy = [&metrics] { return UnhealthyReason(metrics); };
  probes.not_ready = [&metrics, readiness] {
    return NotReadyReason(metrics, readiness, WallClockMs());
  };
  auto server = HttpServer::Start(config.http.server, OpsRoutes(std::move(probes)));
  if (!server.ok()) return server.status();
  ops->server_ = std::move(server).value();
  spdlog::info("http: /metrics, /healthz and /ready on {}", ops->server_->Url());
  return ops;
}

OpsServer::~OpsServer() { server_.reset(); }  // stops and joins the server thread first

void OpsServer::Attach(std::shared_ptr<const SpillMemory> memory) {
  std::lock_guard lock(mu_);
  memory_ = std::move(memory);
}

std::string OpsServer::Url() const { return server_->Url(); }

}  // namespace ctrjoin
