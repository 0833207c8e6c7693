#pragma once
// Composition of the ctrjoin binary's subcommands: builds sources, sinks,
// state and joins from a Config and runs the pipeline. Part of ctrjoin_app
// (not ctrjoin_core): the one place that names concrete joins and sinks.
// Called from main's thread.

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>

#include "src/config.h"
#include "joins/feature_store.h"
#include "joins/lookup_service.h"
#include "src/metrics.h"
#include "src/sink.h"
#include "src/source.h"

namespace ctrjoin {

// Runs the pipeline described by config until the input ends or
// RequestStop() is called (SIGINT/SIGTERM handlers call it). Logs a summary.
Status RunPipeline(const Config& config, Metrics& metrics);

// Exactly-once run: the coordinator (which is also the pipeline's sink) and
// the checkpoint to resume from, if any (the source was already sought).
struct ExactlyOnce {
  CheckpointCoordinator* coordinator = nullptr;
  std::optional<CheckpointMeta> resume;
};

// Runs the pipeline over given source and sinks (RunPipeline builds them
// from config.source/sink/dead_letter; the demo brings its own).
// enricher may be null (no lookups); eos is null without checkpoints.
Status RunPipelineWith(const Config& config, Metrics& metrics, Source& source, Enricher* enricher,
                       SampleSink& sink, DeadLetterSink& dead_letters,
                       ExactlyOnce* eos = nullptr);

// Builds the feature store and lookup service for config.lookups; null
// pointers when there are none.
struct Enrichment {
  std::unique_ptr<FeatureStore> store;
  std::unique_ptr<LookupService> service;
};
Result<Enrichment> MakeEnrichment(const Config& config, Metrics& metrics);

// Asks the running pipeline to stop: sources stop, in-flight batches finish,
// sinks flush. A second call also abandons pending feature lookups (which
// may never finish while the store is down). Async-signal-safe.
void RequestStop();
bool StopRequested();

struct DemoOptions {
  int duration_s = 0;             // 0 = until Ctrl-C
  double impressions_per_sec = 2'000;
  int64_t window_ms = 5'000;
  uint64_t seed = 42;
  int show_samples = 3;           // sample records of each label to print
  std::string state_dir = "./ctrjoin-demo-state";
};

// `ctrjoin demo`: an in-process Kafka mock cluster, a synthetic workload
// produced in real time, the pipeline reading it, and live progress.
Status RunDemo(const DemoOptions& options);

struct GenerateOptions {
  std::string impressions_path;
  std::string clicks_path;
  std::string features_path;      // optional: user/item feature rows for the embedded store
  uint64_t impressions = 10'000;  // stop after this many impressions were generated
};

// `ctrjoin gen`: writes a synthetic trace as two JSON-lines files.
Status GenerateTrace(const GenerateOptions& options, const struct WorkloadOptions& workload);

}  // namespace ctrjoin
