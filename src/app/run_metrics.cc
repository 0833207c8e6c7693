#include "src/app/run_metrics.h"

#include <fmt/format.h>

#include <algorithm>

namespace ctrjoin {

void Metrics::RegisterWith(MetricRegistry& registry, const TopicLabels& topics) const {
  registry.Add([this, topics](Exposition& e) { pipeline.Expose(e, topics); });
  registry.Add([this](Exposition& e) { join.Expose(e); });
  registry.Add([this](Exposition& e) { lookup.Expose(e); });
  registry.Add([this](Exposition& e) { checkpoint.Expose(e); });
  registry.Add([this](Exposition& e) { producer.Expose(e); });
}

std::string RenderPrometheus(const Metrics& metrics, const TopicLabels& topics, int64_t now_ms) {
  MetricRegistry registry;
  metrics.RegisterWith(registry, topics);
  return registry.Render(now_ms);
}

std::string UnhealthyReason(const Metrics& metrics) {
  return metrics.pipeline.failed.Get() != 0 ? "a pipeline stage failed (see the log)" : "";
}

std::string NotReadyReason(const Metrics& metrics, const ReadinessOptions& options,
                           int64_t now_ms) {
  const PipelineMetrics& p = metrics.pipeline;
  if (p.failed.Get() != 0) return "a pipeline stage failed (see the log)";
  if (p.running.Get() == 0) {
    const std::string phase = metrics.startup.Get();
    return phase.empty() ? "the pipeline is not running" : "starting: " + phase;
  }
  if (p.assigned_partitions.Get() <= 0) return "the source has no input partitions assigned yet";
  if (const int64_t n = p.tasks_restoring.Get(); n > 0) {
    return fmt::format("restoring the state of {} task(s) from the changelog topic", n);
  }
  if (options.unreachable_grace_ms > 0) {
    for (auto [since, what] :
         {std::pair{p.source_unreachable_since_ms.Get(), "the Kafka brokers have"},
          std::pair{metrics.lookup.store_unreachable_since_ms.Get(), "the feature store has"}}) {
      if (since > 0 && now_ms - since > options.unreachable_grace_ms) {
        return fmt::format("{} not answered for {:.1f} s (grace {:.1f} s)", what,
                           (now_ms - since) / 1000.0, options.unreachable_grace_ms / 1000.0);
      }
    }
  }
  if (metrics.lookup.breaker_state.Get() != 0) {
    return "the feature store's circuit breaker is open: lookups wait for the store";
  }
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

}  // namespace ctrjoin
