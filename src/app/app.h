#pragma once
// Composition of the ctrjoin binary's subcommands: builds sources, sinks,
// state and joins from a Config and runs the pipeline. Part of ctrjoin_app
// (not ctrjoin_core): the one place that names concrete joins and sinks.
// Called from main's thread.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "joins/feature_store.h"
#include "joins/lookup_service.h"
#include "sinks/changelog_trimmer.h"
#include "src/app/config.h"
#include "src/app/run_metrics.h"
#include "src/core/enum_names.h"
#include "src/io/changelog_topic.h"
#include "src/io/replay_range.h"
#include "src/io/workload.h"
#include "src/pipeline/sink.h"
#include "src/pipeline/source.h"
#include "txn/checkpoint_coordinator.h"

namespace ctrjoin {

class OpsServer;  // src/app/ops_server.h

// How `run` and `replay` start, from their command line.
struct StartOptions {
  // How long to wait for a job directory that another process holds
  // (--wait-for-lock): zero refuses at once (exit 2), negative waits for as
  // long as it takes.
  std::chrono::milliseconds lock_wait{0};
  // What to do when the committed offsets are lost (--reset-state,
  // --from-checkpoint; txn/README.md, "Lost offsets").
  RecoverOptions recover;
};

// Runs the pipeline described by config until the input ends or
// RequestStop() is called (SIGINT/SIGTERM handlers call it). Logs a summary.
// First takes the job's directories (state.dir, checkpoint.dir, a file
// sink's directory) for the life of the run: one process per job.
Status RunPipeline(const Config& config, Metrics& metrics, const StartOptions& start = {});

// Exactly-once run: the coordinator (which is also the pipeline's sink) and
// the checkpoint to resume from, if any (the source was already sought).
struct ExactlyOnce {
  CheckpointCoordinator* coordinator = nullptr;
  std::optional<CheckpointMeta> resume;
  // Mode group: where tasks restore from and log to (txn/README.md, "Several
  // processes on one job").
  std::optional<ChangelogTopicOptions> task_changelog;
  // Mode group (borrowed): told what each restore read, so that it can
  // delete the head of the topic no restore needs.
  ChangelogTrimmer* changelog_trimmer = nullptr;
};

// Mode group with checkpoints: the instance id kept in <state.dir>/INSTANCE
// (a process's transactional ids are "<prefix>-<instance>-<i>"). NotFound
// if no process made it yet.
Result<std::string> ReadInstanceId(const std::string& state_dir);

// Runs the pipeline over given source and sinks (RunPipeline builds them
// from config.source/sink/dead_letter; the demo brings its own).
// enricher may be null (no lookups); eos is null without checkpoints.
// end_after_window_ms >= 0 makes it a bounded replay (Pipeline::EndAfterWindows).
// ops: the run's HTTP endpoint if the caller started it (RunPipeline does,
// before opening anything); null starts one here when config.http.enabled.
Status RunPipelineWith(const Config& config, Metrics& metrics, Source& source, Enricher* enricher,
                       SampleSink& sink, DeadLetterSink& dead_letters, ExactlyOnce* eos = nullptr,
                       int64_t end_after_window_ms = -1, OpsServer* ops = nullptr);

enum class ReplayProgressMode {
  kAuto,      // a terminal redraw if stderr is a terminal, else log lines
  kTerminal,  // redraw a few lines every second
  kLog,       // a log line every 10 s
};
constexpr auto NamesOf(ReplayProgressMode) {
  return std::to_array<NamedValue<ReplayProgressMode>>({{ReplayProgressMode::kAuto, "auto"},
                                                        {ReplayProgressMode::kTerminal, "terminal"},
                                                        {ReplayProgressMode::kLog, "log"}});
}

// `ctrjoin replay`: the live run's pipeline over a bounded range of its input
// topics, into its own output, state and transactional ids.
struct ReplayOptions {
  ReplayRange range;
  // Names the replay's state dir (<state.dir>/replay-<name>), consumer group
  // (<group_id>-replay-<name>) and default transactional-id prefix
  // (<prefix>-replay-<name>). Run again with the same name to resume.
  std::string name = "replay";
  std::string output;                   // topic (sink.type kafka) or directory (file)
  std::string transactional_id_prefix;  // default: see name
  // The replay's HTTP endpoint; by default a free port on loopback (logged),
  // so that it never collides with the live run's beside it.
  std::string http_address = "127.0.0.1:0";
  ReplayProgressMode progress = ReplayProgressMode::kAuto;
};

// The replay's configuration derived from the live one (exposed for tests).
Result<Config> ReplayConfig(const Config& live, const ReplayOptions& options);
Status RunReplay(const Config& live, const ReplayOptions& options, Metrics& metrics,
                 const StartOptions& start = {});

// Exactly once with a Kafka sink: each epoch's input offsets go into the
// epoch's transaction, and the group's committed offsets say which epoch
// committed. Borrows both; they must outlive the coordinator.
CommitLog KafkaCommitLog(KafkaSource* source, KafkaTransactionalSink* sink);

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
  int duration_s = 0;  // 0 = until Ctrl-C
  double impressions_per_sec = 2'000;
  int64_t window_ms = 5'000;
  uint64_t seed = 42;
  int show_samples = 3;  // sample records of each label to print
  std::string state_dir = "./ctrjoin-demo-state";
  std::string http_address = "127.0.0.1:0";  // /metrics etc.; port 0: a free one
  bool exactly_once = true;  // checkpoints and a transactional sink, as `ctrjoin run` does
};

// The demo's pipeline configuration, as a config file would say it: Kafka
// source and sink on `brokers`, window, watermarks, lookups of user and item
// features in an embedded store under options.state_dir, checkpoints every
// second when options.exactly_once. `bench --demo` measures the same
// pipeline (without checkpoints).
std::string DemoConfigYaml(const DemoOptions& options, const std::string& brokers);
// The demo's workload: 20,000 users, 5,000 items, clicks W/4 after their
// impression on average, 0.5 s of disorder, 0.2% late events; starting now.
WorkloadOptions DemoWorkload(const DemoOptions& options);

// `ctrjoin demo`: ctrjoin's Kafka-protocol test broker in-process, a
// synthetic workload produced into it in real time, the job reading it
// exactly once (as `ctrjoin run`), and live progress beside what
// read_committed consumers see of the output.
Status RunDemo(const DemoOptions& options);

struct GenerateOptions {
  std::string impressions_path;
  std::string clicks_path;
  std::string features_path;      // optional: user/item feature rows for the embedded store
  uint64_t impressions = 10'000;  // stop after this many impressions were generated
  // With brokers: produce into these Kafka topics instead of the two files,
  // each record stamped with its arrival time (as a live producer would).
  std::string brokers;
  std::string impressions_topic = "impressions";
  std::string clicks_topic = "clicks";
  // Optional: per impression its true click probability (src/io/workload.h),
  // JSON lines {"impression_id": "...", "p_click": 0.031}.
  std::string truth_path;
};

// `ctrjoin gen`: writes a synthetic trace as two JSON-lines files, or
// produces it into two Kafka topics.
Status GenerateTrace(const GenerateOptions& options, const WorkloadOptions& workload);

}  // namespace ctrjoin
