// ctrjoin: turns impression and click streams into labelled CTR training
// samples. Subcommands: run, replay, bench, demo, gen, checkpoints, tasks,
// abort-transactions, config-reference.
//
// Exit codes (README, "Exit codes"):
//   0  done: the input ended, or SIGINT/SIGTERM stopped it cleanly
//   1  the run failed (the log says why; committed output stays valid)
//   2  bad command line or configuration (nothing was started)
//   3  fenced: another instance took over this job's transactional ids
//   4  a stop (SIGINT/SIGTERM) ran past shutdown.timeout_ms (shutdown_watchdog.h)
//
// Configuration: the YAML file, then CTRJOIN_<SECTION>__<KEY> environment
// variables, then --set key=value, each overriding the one before.

#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <utility>
#include <vector>

#include "src/app/admin.h"
#include "src/app/app.h"
#include "src/app/bench.h"
#include "src/app/config.h"
#include "src/app/shutdown_watchdog.h"
#include "src/io/workload.h"
#include "src/ops/logging.h"

extern char** environ;

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitFenced = 3;

void OnSignal(int) { ctrjoin::RequestStop(); }

void InstallSignalHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

int ExitCode(const ctrjoin::Status& st) {
  if (st.ok()) return kExitOk;
  spdlog::error("{}", st.ToString());
  if (st.effect() == ctrjoin::Effect::kFenced) return kExitFenced;
  if (st.code() == ctrjoin::StatusCode::kInvalidArgument) return kExitUsage;
  return kExitFailed;
}

std::string EnvOr(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

}  // namespace

int main(int argc, char** argv) {
  // First, so that a stop asked for during start-up is a clean stop too.
  InstallSignalHandlers();
  CLI::App app{"ctrjoin: impression/click label join and feature enrichment for CTR training"};
  app.require_subcommand(1);
  std::string log_format = EnvOr("CTRJOIN_LOG_FORMAT", "text");
  std::string log_level = EnvOr("CTRJOIN_LOG_LEVEL", "info");
  app.add_option("--log-format", log_format, "text | json (env CTRJOIN_LOG_FORMAT)");
  app.add_option("--log-level", log_level, "trace | debug | info | warn | error");

  std::string config_path;
  std::vector<std::string> overrides;
  int64_t wait_for_lock_s = 0;
  ctrjoin::StartOptions start;
  auto add_config = [&](CLI::App* cmd) {
    cmd->add_option("--config,-c", config_path, "YAML config file")->required();
    cmd->add_option("--set", overrides, "override a config key: --set join.window_ms=60000");
  };
  // One process per job directory: a second one refuses (exit 2), or waits.
  // Lost committed offsets: refused until the operator says what to do.
  auto add_start = [&](CLI::App* cmd) {
    cmd->add_flag("--wait-for-lock{-1}", wait_for_lock_s,
                  "wait for the job's directories while another process holds them: "
                  "--wait-for-lock (as long as it takes) or --wait-for-lock=SECONDS");
    cmd->add_flag("--reset-state", start.recover.reset_state,
                  "the group's committed offsets are lost: discard the checkpoints and start "
                  "afresh from source.kafka.start");
    cmd->add_option("--from-checkpoint", start.recover.from_checkpoint,
                    "the group's committed offsets are lost: go on from this complete checkpoint "
                    "(ctrjoin checkpoints list)");
  };
  CLI::App* run = app.add_subcommand("run", "run the pipeline described by a config file");
  add_config(run);
  add_start(run);

  ctrjoin::ReplayOptions replay_options;
  std::string start_offsets, end_offsets, start_time, end_time;
  std::string progress(ctrjoin::NameOf(replay_options.progress));
  CLI::App* replay = app.add_subcommand(
      "replay", "re-run the pipeline over a bounded range of the input topics (backfill)");
  add_config(replay);
  add_start(replay);
  // A bounded range of the input topics: `replay` and `bench --input kafka`.
  auto add_range = [&](CLI::App* cmd, ctrjoin::ReplayRange& range) {
    cmd->add_option("--start-offsets", start_offsets,
                    "impressions partition=offset,...: first offsets (default: earliest)");
    cmd->add_option("--end-offsets", end_offsets,
                    "impressions partition=offset,...: end offsets, exclusive (default: the "
                    "end at start-up)");
    cmd->add_option("--start-time", start_time,
                    "UTC time (2026-11-20T10:00:00Z) or epoch ms, via offsets-for-times");
    cmd->add_option("--end-time", end_time, "UTC time or epoch ms, exclusive");
    cmd->add_option("--click-lookback-ms", range.click_lookback_ms,
                    "read clicks from this long before the range's first impression");
  };
  add_range(replay, replay_options.range);
  replay->add_option("--name", replay_options.name,
                     "names the replay's state, group and transactional ids; rerun to resume");
  replay->add_option("--output", replay_options.output,
                     "the replay's own output topic (Kafka sink) or directory (file sink)");
  replay->add_option("--transactional-id-prefix", replay_options.transactional_id_prefix);
  replay->add_option("--progress", progress, "auto | terminal | log");
  replay->add_option("--http-address", replay_options.http_address,
                     "the replay's /metrics endpoint (default: a free port on 127.0.0.1)");

  ctrjoin::DemoOptions demo_options;
  CLI::App* demo = app.add_subcommand(
      "demo", "embedded demo: in-process Kafka, synthetic workload, exactly-once output");
  demo->add_option("--duration", demo_options.duration_s, "stop after S seconds (0: Ctrl-C)");
  demo->add_option("--rate", demo_options.impressions_per_sec, "impressions per second");
  demo->add_option("--window-ms", demo_options.window_ms, "attribution window");
  demo->add_option("--seed", demo_options.seed, "workload seed");
  demo->add_option("--state-dir", demo_options.state_dir,
                   "the job's state, checkpoints and features (emptied at start)");
  demo->add_flag("!--at-least-once", demo_options.exactly_once,
                 "no checkpoints: samples are visible at once, and again after a crash");
  demo->add_option("--http-address", demo_options.http_address,
                   "/metrics, /healthz, /ready (default: a free port on 127.0.0.1, logged)");

  ctrjoin::GenerateOptions gen_options;
  ctrjoin::WorkloadOptions workload;
  CLI::App* gen = app.add_subcommand("gen", "write a synthetic trace as two JSON-lines files");
  CLI::Option* imp_out = gen->add_option("--impressions-out", gen_options.impressions_path);
  CLI::Option* clk_out = gen->add_option("--clicks-out", gen_options.clicks_path);
  CLI::Option* gen_brokers = gen->add_option("--brokers", gen_options.brokers,
                                             "produce into Kafka topics instead of files");
  gen->add_option("--impressions-topic", gen_options.impressions_topic);
  gen->add_option("--clicks-topic", gen_options.clicks_topic);
  imp_out->excludes(gen_brokers);
  clk_out->excludes(gen_brokers);
  gen->add_option("--features-out", gen_options.features_path,
                  "also write user/item feature rows (embedded store JSON lines)");
  gen->add_option("--truth-out", gen_options.truth_path,
                  "also write each impression's true click probability (JSON lines)");
  gen->add_option("--count", gen_options.impressions, "impressions to generate");
  // The synthetic workload's shape: `gen` and `bench` alike. Each flag also
  // knows how to copy its value, so that `bench --demo` can lay the flags
  // given over the demo's shape.
  std::string click_delay(ctrjoin::NameOf(workload.click_delay));
  using Copy = std::function<void(ctrjoin::WorkloadOptions&, const ctrjoin::WorkloadOptions&)>;
  std::vector<std::pair<std::string, Copy>> workload_flags;
  auto add_workload = [&](CLI::App* cmd) {
    auto flag = [&](const std::string& name, auto member, const std::string& help) {
      cmd->add_option(name, workload.*member, help);
      workload_flags.emplace_back(
          name, [member](auto& to, const auto& from) { to.*member = from.*member; });
    };
    using W = ctrjoin::WorkloadOptions;
    flag("--users", &W::users, "");
    flag("--items", &W::items, "");
    flag("--seed", &W::seed, "");
    flag("--start-ms", &W::start_ts_ms, "event time of the first impression");
    flag("--rate", &W::impressions_per_sec, "impressions per event-time second");
    flag("--ctr", &W::ctr, "");
    flag("--mean-click-delay-ms", &W::mean_click_delay_ms,
         "mean delay of a click after its impression");
    flag("--max-disorder-ms", &W::max_disorder_ms, "");
    flag("--late-rate", &W::late_rate, "");
    flag("--malformed-rate", &W::malformed_rate, "");
    flag("--extra-features", &W::extra_features,
         "numeric features f0.. per impression beyond the four it has");
    flag("--payload-bytes", &W::payload_bytes,
         "pad each impression's JSON to this size (a string feature \"pad\")");
    cmd->add_option("--click-delay", click_delay,
                    "exponential (default) | uniform (over 0 .. 2 x mean) | fixed (the mean)");
  };
  add_workload(gen);

  ctrjoin::BenchOptions bench_options;
  std::string bench_input(ctrjoin::NameOf(bench_options.input));
  std::string bench_sink(ctrjoin::NameOf(bench_options.sink));
  std::string bench_progress(ctrjoin::NameOf(bench_options.progress));
  CLI::App* bench = app.add_subcommand(
      "bench", "measure the job's pipeline on this machine: peak, a load sweep, exactly-once cost");
  CLI::Option* bench_config = bench->add_option("--config,-c", config_path, "YAML config file");
  bench->add_option("--set", overrides, "override a config key: --set join.window_ms=60000");
  CLI::Option* bench_demo =
      bench->add_flag("--demo", bench_options.demo, "the demo's configuration instead of a file");
  bench_config->excludes(bench_demo);
  bench->add_option("--input", bench_input,
                    "synthetic (workload flags below) | files (source.files) | kafka (a range of "
                    "source.kafka's topics)");
  bench->add_option("--events", bench_options.events,
                    "synthetic: records to generate (default 1,000,000); files, kafka: at most "
                    "this many (0: all)");
  bench->add_option("--partitions", bench_options.partitions,
                    "in-memory partitions the records are spread over");
  add_workload(bench);
  add_range(bench, bench_options.range);
  bench->add_option("--features", bench_options.features,
                    "configured | generated | FILE (embedded-store JSON lines, loaded into a "
                    "fresh store); default: generated with --demo, else configured");
  bench->add_option("--sink", bench_sink,
                    "configured (the config's sink, never its output) | null");
  bench->add_option("--sink-topic", bench_options.sink_topic,
                    "a Kafka sink's topic for the bench (required with a Kafka sink)");
  bench
      ->add_option("--loads", bench_options.loads,
                   "offered loads as fractions of the peak (default 0.25,0.5,0.75,1)")
      ->delimiter(',');
  bench->add_option("--seconds-per-load", bench_options.seconds_per_load,
                    "seconds of input offered at each load (default 5)");
  bench->add_option("--repeat", bench_options.repeat,
                    "runs per row, the median kept (by events/s; paced rows by p99)");
  bench->add_option("--json", bench_options.json_path, "write every figure to this JSON file");
  bench->add_option("--plot", bench_options.plot_dir,
                    "draw throughput and latency against offered load into this directory (PNG)");
  bench->add_option("--baseline", bench_options.baseline_path,
                    "an earlier --json: print this run's ratio to it");
  bench->add_option("--work-dir", bench_options.work_dir,
                    "scratch directory (default: a new one under $TMPDIR, removed at the end)");
  bench->add_flag("--keep-work", bench_options.keep_work, "keep the scratch directory");
  bench->add_option("--progress", bench_progress, "auto | terminal | log");
  CLI::App* checkpoints = app.add_subcommand("checkpoints", "list or show a job's checkpoints");
  checkpoints->require_subcommand(1);
  CLI::App* list = checkpoints->add_subcommand("list", "complete checkpoints, oldest first");
  add_config(list);
  uint64_t epoch = 0;
  CLI::App* show = checkpoints->add_subcommand("show", "one checkpoint's positions and state");
  add_config(show);
  show->add_option("epoch", epoch, "checkpoint epoch")->required();

  CLI::App* tasks = app.add_subcommand(
      "tasks", "mode group: each task's committed offsets, lag, changelog and last committer");
  add_config(tasks);

  std::string abort_prefix;
  int abort_pool = 0;
  CLI::App* abort_txns = app.add_subcommand(
      "abort-transactions", "abort lingering transactions of a transactional-id prefix");
  add_config(abort_txns);
  abort_txns->add_option("--prefix", abort_prefix, "default: sink.transactional_id_prefix");
  abort_txns->add_option("--pool-size", abort_pool, "ids <prefix>-0.. (default: sink.pool_size)");

  bool tf_spec = false;
  CLI::App* schema = app.add_subcommand(
      "schema", "print the schema the job's output publishes (JSON), or its TF feature spec");
  add_config(schema);
  schema->add_flag("--tf-spec", tf_spec, "print the TensorFlow feature spec (Python) instead");

  CLI::App* reference = app.add_subcommand(
      "config-reference", "print every config key, its type, default and meaning (Markdown)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  if (ctrjoin::Status st = ctrjoin::ConfigureLogging(log_format, log_level); !st.ok()) {
    std::fprintf(stderr, "%s\n", st.ToString().c_str());
    return kExitUsage;
  }

  if (reference->parsed()) {
    std::fputs(ctrjoin::ConfigReference().c_str(), stdout);
    return kExitOk;
  }
  if (demo->parsed()) return ExitCode(ctrjoin::RunDemo(demo_options));
  if (gen->parsed()) {
    if (gen_options.brokers.empty() &&
        (gen_options.impressions_path.empty() || gen_options.clicks_path.empty())) {
      return ExitCode(ctrjoin::Status::InvalidArgument(
          "gen: give --impressions-out and --clicks-out, or --brokers"));
    }
    if (auto st = ctrjoin::ParseEnum(click_delay, "--click-delay", workload.click_delay);
        !st.ok()) {
      return ExitCode(st);
    }
    return ExitCode(ctrjoin::GenerateTrace(gen_options, workload));
  }

  // A bounded range from the command line (replay, bench --input kafka).
  auto parse_range = [&](ctrjoin::ReplayRange& range) {
    auto parse_offsets = [](const std::string& text, const char* option,
                            std::map<int32_t, int64_t>& out) {
      if (text.empty()) return ctrjoin::Status::Ok();
      auto parsed = ctrjoin::ParsePartitionOffsets(text, option);
      if (!parsed.ok()) return parsed.status();
      out = *parsed;
      return ctrjoin::Status::Ok();
    };
    auto parse_time = [](const std::string& text, const char* option, std::optional<int64_t>& out) {
      if (text.empty()) return ctrjoin::Status::Ok();
      auto parsed = ctrjoin::ParseTimestampMs(text, option);
      if (!parsed.ok()) return parsed.status();
      out = *parsed;
      return ctrjoin::Status::Ok();
    };
    for (ctrjoin::Status st : {parse_offsets(start_offsets, "--start-offsets", range.start_offsets),
                               parse_offsets(end_offsets, "--end-offsets", range.end_offsets),
                               parse_time(start_time, "--start-time", range.start_ms),
                               parse_time(end_time, "--end-time", range.end_ms)}) {
      if (!st.ok()) return st;
    }
    return ctrjoin::Status::Ok();
  };
  if (bench->parsed()) {
    for (ctrjoin::Status st :
         {parse_range(bench_options.range),
          ctrjoin::ParseEnum(bench_input, "--input", bench_options.input),
          ctrjoin::ParseEnum(bench_sink, "--sink", bench_options.sink),
          ctrjoin::ParseEnum(bench_progress, "--progress", bench_options.progress)}) {
      if (!st.ok()) return ExitCode(st);
    }
    if (bench_options.demo) {
      ctrjoin::DemoOptions demo_defaults;
      demo_defaults.exactly_once = false;  // `bench` adds checkpoints with --set
      bench_options.config_name = "the demo's configuration (ctrjoin demo)";
      ctrjoin::WorkloadOptions shape = ctrjoin::DemoWorkload(demo_defaults);
      // Flags given on the command line win over the demo's shape.
      for (const auto& [name, copy] : workload_flags) {
        if (bench->count(name) > 0) copy(shape, workload);
      }
      if (bench->count("--click-delay") > 0) shape.click_delay = workload.click_delay;
      bench_options.workload = shape;
      // Measured with the null sink: the demo's Kafka is not there.
      bench_options.sink = ctrjoin::BenchSink::kNull;
      auto applied = ctrjoin::ParseConfig(ctrjoin::DemoConfigYaml(demo_defaults, "127.0.0.1:1"),
                                          overrides, ctrjoin::EnvOverrides(environ));
      if (!applied.ok()) return ExitCode(applied.status());
      return ExitCode(ctrjoin::RunBench(*applied, bench_options));
    }
    if (config_path.empty()) {
      return ExitCode(ctrjoin::Status::InvalidArgument("bench: give --config FILE or --demo"));
    }
    bench_options.config_name = config_path;
    bench_options.workload = workload;
  }

  auto config = ctrjoin::LoadConfigFile(config_path, overrides, ctrjoin::EnvOverrides(environ));
  if (!config.ok()) return ExitCode(config.status());
  ctrjoin::Metrics metrics;
  start.lock_wait = std::chrono::seconds(wait_for_lock_s);
  ctrjoin::ShutdownWatchdog watchdog(std::chrono::milliseconds(config->shutdown.timeout_ms));
  if (run->parsed()) {
    const ctrjoin::Status st = ctrjoin::RunPipeline(*config, metrics, start);
    watchdog.Disarm();
    return ExitCode(st);
  }
  if (replay->parsed()) {
    for (ctrjoin::Status st :
         {parse_range(replay_options.range),
          ctrjoin::ParseEnum(progress, "--progress", replay_options.progress)}) {
      if (!st.ok()) return ExitCode(st);
    }
    const ctrjoin::Status st = ctrjoin::RunReplay(*config, replay_options, metrics, start);
    watchdog.Disarm();
    return ExitCode(st);
  }
  if (bench->parsed()) {
    const ctrjoin::Status st = ctrjoin::RunBench(*config, bench_options);
    watchdog.Disarm();
    return ExitCode(st);
  }
  if (schema->parsed()) {
    const ctrjoin::OutputSchema published = config->PublishedSchema();
    std::fputs((tf_spec ? published.TfFeatureSpec() : published.Json()).c_str(), stdout);
    return kExitOk;
  }
  if (list->parsed()) return ExitCode(ctrjoin::ListCheckpoints(*config, stdout));
  if (show->parsed()) return ExitCode(ctrjoin::ShowCheckpoint(*config, epoch, stdout));
  if (tasks->parsed()) return ExitCode(ctrjoin::ShowTasks(*config, stdout));
  if (abort_txns->parsed()) {
    return ExitCode(ctrjoin::AbortTransactions(*config, abort_prefix, abort_pool, stdout));
  }
  return kExitUsage;
}
