// ctrjoin: turns impression and click streams into labelled CTR training
// samples. Subcommands: run, demo, gen. Exit codes: 0 done, 1 the run
// failed, 2 bad command line or configuration.

#include <csignal>
#include <cstdio>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "src/app.h"
#include "src/config.h"
#include "src/workload.h"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

void OnSignal(int) { ctrjoin::RequestStop(); }

void InstallSignalHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

int Report(const ctrjoin::Status& st, int code_on_error) {
  if (st.ok()) return kExitOk;
  spdlog::error("{}", st.ToString());
  return code_on_error;
}

}  // namespace

int main(int argc, char** argv) {
  // First, so that a stop asked for during start-up is a clean stop too.
  InstallSignalHandlers();
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  CLI::App app{"ctrjoin: impression/click label join and feature enrichment for CTR training"};
  app.require_subcommand(1);

  std::string config_path;
  std::vector<std::string> overrides;
  CLI::App* run = app.add_subcommand("run", "run the pipeline described by a config file");
  run->add_option("--config,-c", config_path, "YAML config file")->required();
  run->add_option("--set", overrides, "override a config key: --set join.window_ms=60000");

  ctrjoin::DemoOptions demo_options;
  CLI::App* demo = app.add_subcommand("demo", "embedded demo: mock Kafka, synthetic workload");
  demo->add_option("--duration", demo_options.duration_s, "stop after S seconds (0: Ctrl-C)");
  demo->add_option("--rate", demo_options.impressions_per_sec, "impressions per second");
  demo->add_option("--window-ms", demo_options.window_ms, "attribution window");
  demo->add_option("--seed", demo_options.seed, "workload seed");

  ctrjoin::GenerateOptions gen_options;
  ctrjoin::WorkloadOptions workload;
  CLI::App* gen = app.add_subcommand("gen", "write a synthetic trace as two JSON-lines files");
  gen->add_option("--impressions-out", gen_options.impressions_path)->required();
  gen->add_option("--clicks-out", gen_options.clicks_path)->required();
  gen->add_option("--features-out", gen_options.features_path,
                  "also write user/item feature rows (embedded store JSON lines)");
  gen->add_option("--count", gen_options.impressions, "impressions to generate");
  gen->add_option("--users", workload.users);
  gen->add_option("--items", workload.items);
  gen->add_option("--seed", workload.seed);
  gen->add_option("--rate", workload.impressions_per_sec, "impressions per event-time second");
  gen->add_option("--ctr", workload.ctr);
  gen->add_option("--mean-click-delay-ms", workload.mean_click_delay_ms);
  gen->add_option("--max-disorder-ms", workload.max_disorder_ms);
  gen->add_option("--late-rate", workload.late_rate);
  gen->add_option("--malformed-rate", workload.malformed_rate);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }

  if (run->parsed()) {
    auto config = ctrjoin::LoadConfigFile(config_path, overrides);
    if (!config.ok()) return Report(config.status(), kExitUsage);
    ctrjoin::Metrics metrics;
    ctrjoin::Status st = ctrjoin::RunPipeline(*config, metrics);
    return Report(st, st.code() == ctrjoin::StatusCode::kInvalidArgument ? kExitUsage : kExitFailed);
  }
  if (demo->parsed()) return Report(ctrjoin::RunDemo(demo_options), kExitFailed);
  if (gen->parsed()) return Report(ctrjoin::GenerateTrace(gen_options, workload), kExitFailed);
  return kExitUsage;
}
