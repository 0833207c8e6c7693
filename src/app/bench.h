#pragma once
// `ctrjoin bench`: the job's own pipeline (join, lookups, format,
// checkpoints, from its config) measured on this machine, from an in-memory
// copy of a synthetic workload or of recorded input, at full speed and at a
// sweep of offered loads. What it measures and how to read it:
// bench/README.md, "ctrjoin bench".
//
// Each measured run is a fresh pipeline over its own state and checkpoint
// directories under a scratch directory; the job's own state, output,
// consumer group and transactional ids are never touched. Called from
// main's thread; RunBench owns everything it builds and removes the scratch
// directory (unless keep_work) before it returns.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "src/app/app.h"
#include "src/app/config.h"
#include "src/bench/json_writer.h"
#include "src/bench/probe.h"
#include "src/bench/trace.h"
#include "src/io/replay_range.h"
#include "src/io/workload.h"
#include "txn/checkpoint_metrics.h"

namespace ctrjoin {

enum class BenchInput {
  kSynthetic,  // the workload generator, shaped by BenchOptions::workload
  kFiles,      // the config's source.files (impressions and clicks JSON lines)
  kKafka,      // a bounded range of the config's Kafka topics (as `replay` resolves it)
};
constexpr auto NamesOf(BenchInput) {
  return std::to_array<NamedValue<BenchInput>>({{BenchInput::kSynthetic, "synthetic"},
                                                {BenchInput::kFiles, "files"},
                                                {BenchInput::kKafka, "kafka"}});
}

enum class BenchSink {
  kConfigured,  // the config's sink type and format, into a scratch directory or a bench topic
  kNull,        // encoded in the configured format, counted, discarded: the join alone
};
constexpr auto NamesOf(BenchSink) {
  return std::to_array<NamedValue<BenchSink>>(
      {{BenchSink::kConfigured, "configured"}, {BenchSink::kNull, "null"}});
}

struct BenchOptions {
  std::string config_name;  // shown in the report (the config file)
  bool demo = false;        // the demo's configuration instead of a config file

  BenchInput input = BenchInput::kSynthetic;
  WorkloadOptions workload;  // synthetic input
  ReplayRange range;         // Kafka input
  // Synthetic: records generated (at least); recorded input: at most this
  // many records are loaded (0: the whole file or range).
  uint64_t events = 1'000'000;
  int32_t partitions = 4;  // in-memory partitions the records are spread over

  // Features: "configured" (the config's store; an embedded store with
  // feature_store.embedded.load gets a fresh copy loaded in the scratch
  // directory), "generated" (the synthetic workload's feature rows), or the
  // path of a JSON-lines file in the embedded store's format (loaded into a
  // fresh embedded store). "" picks "generated" for --demo, else "configured".
  std::string features;

  BenchSink sink = BenchSink::kConfigured;
  std::string sink_topic;  // a Kafka sink's bench topic (never the job's)

  std::vector<double> loads = {0.25, 0.5, 0.75, 1.0};  // fractions of the measured peak
  double seconds_per_load = 5;                         // of input per load level
  int repeat = 1;  // runs per row, the median kept (by events/s; paced: by p99)

  std::string json_path;      // every figure, as JSON
  std::string plot_dir;       // PNG plots (bench/plot.py, python3-matplotlib)
  std::string baseline_path;  // an earlier --json to compare with
  std::string work_dir;       // scratch directory (default: a new one under $TMPDIR)
  bool keep_work = false;
  ReplayProgressMode progress = ReplayProgressMode::kAuto;
};

// Runs the benchmark and prints its table on stdout. InvalidArgument for
// bad options (nothing measured).
Status RunBench(const Config& config, const BenchOptions& options);

class BenchProgress;  // bench.cc: a progress line or log lines per run

// One measured run: what `ctrjoin bench` does for each row of its table,
// and e2e_bench for its in-memory configurations.
struct RunSpec {
  std::string name;  // "peak", "plain", "load-50%"
  bool checkpoints = false;
  double fraction = 0;  // of the peak; 0: as fast as possible
  double rate = 0;      // offered events/s; 0: as fast as possible
  uint64_t limit = 0;   // records of the trace; 0: all
  BenchSink sink = BenchSink::kNull;
  std::string sink_topic;  // a configured Kafka sink's topic
  std::string dir;         // the run's own: state, checkpoints, a file sink's output
  BenchProgress* progress = nullptr;
  // More fields for the run's JSON object (e2e_bench's configuration names).
  std::function<void(bench::JsonWriter&)> extra_json;
};

// The figures of a run the table and the comparisons need; json holds them
// all (one object).
struct MeasuredRun {
  std::string name;
  std::string json;
  double fraction = 0, offered = 0, elapsed_s = 0;
  double events_per_s = 0, samples_per_s = 0, cpu_us = 0, per_core = 0;
  double p50 = 0, p99 = 0, p999 = 0, e2e_p99 = 0, neg_p99 = 0, vis_p99 = -1;
  double rss_mib = 0, growth_mib = 0, hit_ratio = -1, calls_per_impression = -1;
  uint64_t events = 0, samples = 0, late_impressions = 0, corrections = 0;
  bench::SampleAccount account;  // runs over the whole trace only
  // Exactly once: commit latency p99 and the mean of each of its phases
  // (CheckpointMetrics::Phase), per epoch.
  double commit_p99 = -1;
  double phase_mean_ms[CheckpointMetrics::kPhases] = {};
};

// A run's exactly-once figures into its JSON object (ctrjoin bench and
// e2e_bench): visibility (sample written -> committed), commit latency and
// where it goes (CheckpointMetrics::Phase), checkpoints.
void WriteCheckpointFigures(bench::JsonWriter& j, const CheckpointMetrics& m,
                            const bench::TimedTxnSink& timed);

// Runs config's pipeline once over a copy of trace (the source moves
// payloads out of its copy), measured: from the in-memory source through
// the spec's sink, paced at spec.rate when set.
Result<MeasuredRun> MeasureRun(const Config& config, const bench::Trace& trace,
                               const RunSpec& spec);

}  // namespace ctrjoin
