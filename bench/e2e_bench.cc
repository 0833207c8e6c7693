// e2e_bench: ctrjoin end to end, with its baselines, in one run.
//
//   e2e_bench [--quick] [--out FILE] [--work-dir DIR] [--keep-work]
//             [--events N] [--repeat N] [--only NAME,NAME...] [--tbb-threads N]
//
// The parent process generates one workload (fixed seed) and runs every
// configuration in a child process of its own (this binary again, with
// --config-name), so that peak RSS and CPU time are per configuration:
//
//   mem-*          ctrjoin, in-process source replaying the trace from memory
//                  (no broker); sinks: counting (JSON encoded, discarded),
//                  exactly once through an in-memory transactional sink at
//                  100 ms and 1 s, and (full run) the transactional file sink
//   broker-*       ctrjoin through the test broker, running in the parent:
//                  KafkaSource (stop_at_end) -> Kafka sink, plain and
//                  exactly once (KafkaTransactionalSink) at 100 ms and 1 s
//   handwritten-*  the one-thread program a team would write (e2e_baseline.h)
//   passthrough-broker  consume -> produce, no processing: the ceiling
//
// each --repeat times, round-robin, keeping the median; then a
// latency-vs-offered-load sweep (the in-process source paced at fractions of
// the measured peak) and a memory-vs-pending-impressions sweep.
// Every broker configuration gets a fresh broker with the trace produced into
// it first (4 partitions per topic); the broker's CPU time is the parent's.
// Writes one JSON file with everything and prints tables. Asserts nothing:
// exits 0 unless a configuration failed to run.

#include <fcntl.h>
#include <fmt/format.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>
#include <simdjson.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/e2e_baseline.h"
#include "sinks/kafka_sink.h"
#include "sinks/kafka_txn_sink.h"
#include "sinks/txn_file_sink.h"
#include "src/app/app.h"
#include "src/app/bench.h"
#include "src/app/config.h"
#include "src/app/run_metrics.h"
#include "src/bench/json_writer.h"
#include "src/bench/memory_io.h"
#include "src/bench/probe.h"
#include "src/bench/process_stats.h"
#include "src/bench/trace.h"
#include "src/io/kafka_source.h"
#include "tests/support/kafka_broker/broker.h"
#include "txn/checkpoint_coordinator.h"

namespace ctrjoin::bench {
namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------- configurations

enum class System { kCtrjoin, kHandWritten, kPassthrough, kFootprint };
enum class Input { kMemory, kBroker };
enum class Output { kPlain, kTxnMemory, kTxnFiles, kTxnKafka };

struct Spec {
  const char* name;
  System system;
  Input input;
  Output output;
  int64_t interval_ms;  // exactly-once commit interval; 0 for plain
  bool full_only;       // left out of --quick
  const char* what;
  // KafkaSource with librdkafka's default queued.min.messages (100000)
  // instead of 1000000, which every other broker configuration uses.
  bool default_fetch_queue = false;
};

constexpr Spec kSpecs[] = {
    {"mem-plain", System::kCtrjoin, Input::kMemory, Output::kPlain, 0, false,
     "ctrjoin, in-process source, counting sink (JSON encoded, discarded)"},
    {"mem-eos-100ms", System::kCtrjoin, Input::kMemory, Output::kTxnMemory, 100, false,
     "ctrjoin exactly once, 100 ms epochs, in-memory transactional sink"},
    {"mem-eos-1s", System::kCtrjoin, Input::kMemory, Output::kTxnMemory, 1000, false,
     "ctrjoin exactly once, 1 s epochs, in-memory transactional sink"},
    {"mem-eos-100ms-files", System::kCtrjoin, Input::kMemory, Output::kTxnFiles, 100, true,
     "ctrjoin exactly once, 100 ms epochs, transactional file sink (fsync per epoch)"},
    {"handwritten-mem", System::kHandWritten, Input::kMemory, Output::kPlain, 0, false,
     "hand-written one-thread join, from memory, JSON encoded and discarded"},
    {"broker-plain", System::kCtrjoin, Input::kBroker, Output::kPlain, 0, false,
     "ctrjoin, KafkaSource -> plain Kafka sink, test broker"},
    {"broker-plain-default-queue", System::kCtrjoin, Input::kBroker, Output::kPlain, 0, true,
     "ctrjoin, KafkaSource with librdkafka's default queued.min.messages -> Kafka sink", true},
    {"broker-eos-100ms", System::kCtrjoin, Input::kBroker, Output::kTxnKafka, 100, false,
     "ctrjoin exactly once, 100 ms epochs, Kafka transactions, test broker"},
    {"broker-eos-1s", System::kCtrjoin, Input::kBroker, Output::kTxnKafka, 1000, false,
     "ctrjoin exactly once, 1 s epochs, Kafka transactions, test broker"},
    {"handwritten-broker", System::kHandWritten, Input::kBroker, Output::kPlain, 0, false,
     "hand-written one-thread consume -> join -> produce, test broker"},
    {"passthrough-broker", System::kPassthrough, Input::kBroker, Output::kPlain, 0, false,
     "consume -> produce unchanged, no processing (ceiling), test broker"},
    {"memory", System::kFootprint, Input::kMemory, Output::kPlain, 0, false,
     "ctrjoin, generating source, memory vs pending impressions"},
};

const Spec* FindSpec(const std::string& name) {
  for (const Spec& s : kSpecs) {
    if (name == s.name) return &s;
  }
  return nullptr;
}

// What every child needs besides its configuration's name.
struct ChildArgs {
  std::string config;
  std::string trace;
  std::string broker;
  std::string result;
  std::string work;
  double rate = 0;       // paced events/s (memory input); 0 = as fast as possible
  uint64_t limit = 0;    // records of the trace to use; 0 = all
  uint64_t pending = 0;  // memory footprint: impressions to keep pending
  uint32_t shards = 2;
  int32_t partitions = 4;
  int64_t window_ms = 60'000;
  int64_t out_of_orderness_ms = 5'000;
  int64_t lateness_ms = 10'000;
  uint64_t budget_mb = 1024;
  int tbb_threads = 0;  // 0 = oneTBB's default (one per core)
};

// ---------------------------------------------------------------- child: one configuration

// Runs the pipeline with oneTBB's default threads, or in an arena of
// a.tbb_threads (which may exceed the cores: a diagnostic for a source that
// blocks one of them while it waits for input).
template <typename Fn>
Status InArena(const ChildArgs& a, Fn run) {
  if (a.tbb_threads <= 0) return run();
  oneapi::tbb::global_control workers(oneapi::tbb::global_control::max_allowed_parallelism,
                                      static_cast<size_t>(a.tbb_threads));
  oneapi::tbb::task_arena arena(a.tbb_threads);
  Status st;
  arena.execute([&] { st = run(); });
  return st;
}

Config PipelineConfig(const ChildArgs& a, const Spec& spec) {
  Config c;
  c.pipeline.shards = a.shards;
  c.join.window_ms = a.window_ms;
  c.join.allowed_lateness_ms = a.lateness_ms;
  c.watermark.out_of_orderness_ms = a.out_of_orderness_ms;
  c.state.dir = (fs::path(a.work) / "state").string();
  c.state.memory_budget_mb = a.budget_mb;
  c.checkpoint.enabled = spec.interval_ms > 0;
  c.checkpoint.interval_ms = spec.interval_ms > 0 ? spec.interval_ms : 1000;
  c.checkpoint.dir = (fs::path(a.work) / "checkpoints").string();
  return c;
}

// What the configuration is (beside the figures of a ctrjoin run, which
// MeasureRun names and dates itself).
void WriteKind(JsonWriter& j, const Spec& spec) {
  static const char* kSystems[] = {"ctrjoin", "handwritten", "passthrough", "ctrjoin"};
  static const char* kOutputs[] = {"plain", "txn-memory", "txn-files", "txn-kafka"};
  j.String("what", spec.what)
      .String("system", kSystems[static_cast<int>(spec.system)])
      .String("input", spec.input == Input::kMemory ? "memory" : "broker")
      .String("output", kOutputs[static_cast<int>(spec.output)]);
}

void WriteHeader(JsonWriter& j, const Spec& spec, const ChildArgs& a) {
  j.String("name", spec.name);
  WriteKind(j, spec);
  j.Bool("exactly_once", spec.interval_ms > 0)
      .Int("interval_ms", spec.interval_ms)
      .Number("offered_rate", a.rate);
}

void WriteProcess(JsonWriter& j, double elapsed_s, double cpu_s, uint64_t events,
                  double rss_before) {
  j.Number("elapsed_s", elapsed_s)
      .Number("cpu_s", cpu_s)
      .Number("cpu_us_per_event", events > 0 ? cpu_s * 1e6 / static_cast<double>(events) : 0)
      .Number("peak_rss_mib", PeakRssMib())
      .Number("rss_before_run_mib", rss_before);
}

KafkaSourceOptions SourceOptions(const ChildArgs& a, const Spec& spec) {
  KafkaSourceOptions o;
  o.brokers = a.broker;
  o.group_id = std::string("e2e-") + a.config;
  o.stop_at_end = true;
  // librdkafka 2.0.2 stops fetching a partition whose local queue holds
  // queued.min.messages (default 100000) and looks again only a while later:
  // with the input already in the broker, that, not ctrjoin, would bound
  // every broker configuration. The baselines' consumers get the same.
  if (!spec.default_fetch_queue) o.properties["queued.min.messages"] = "1000000";
  return o;
}

// From memory: the run `ctrjoin bench` makes (MeasureRun), with the null
// sink or the transactional file sink.
Status RunFromMemory(const Spec& spec, const ChildArgs& a, std::string* json) {
  Result<Trace> trace = Trace::Read(a.trace, a.limit, /*payloads=*/true);
  if (!trace.ok()) return trace.status();
  Config config = PipelineConfig(a, spec);
  RunSpec run;
  run.name = spec.name;
  run.checkpoints = spec.interval_ms > 0;
  run.rate = a.rate;
  run.dir = a.work;
  if (spec.output == Output::kTxnFiles) {
    config.sink.type = SinkType::kFile;
    run.sink = BenchSink::kConfigured;
  }
  run.extra_json = [&spec](JsonWriter& j) { WriteKind(j, spec); };
  return InArena(a, [&] {
    Result<MeasuredRun> measured = MeasureRun(config, *trace, run);
    if (!measured.ok()) return measured.status();
    *json = std::move(measured->json);
    return Status::Ok();
  });
}

// Through the test broker: KafkaSource -> Kafka sink, plain or
// transactional.
Status RunCtrjoin(const Spec& spec, const ChildArgs& a, JsonWriter& j) {
  Result<Trace> trace = Trace::Read(a.trace, a.limit, /*payloads=*/false);
  if (!trace.ok()) return trace.status();
  const Config config = PipelineConfig(a, spec);
  Pacing pacing;
  LatencyProbe probe(&*trace, config.watermark, &pacing);
  Metrics metrics;
  CountingDeadLetters dead_letters;

  // Sinks first, then the source, then the clock: a Kafka consumer starts
  // fetching as soon as it is assigned.
  std::unique_ptr<SampleSink> plain;
  std::unique_ptr<TransactionalSink> txn;
  KafkaTransactionalSink* kafka_txn = nullptr;
  const std::string topic = std::string("samples-") + spec.name;
  if (spec.output == Output::kPlain) {
    KafkaSinkOptions o;
    o.brokers = a.broker;
    o.topic = topic;
    auto s = KafkaSampleSink::Open(o);
    if (!s.ok()) return s.status();
    plain = std::move(s).value();
  } else {
    KafkaTransactionalSinkOptions o;
    o.brokers = a.broker;
    o.topic = topic;
    o.transactional_id_prefix = std::string("e2e-") + spec.name;
    o.commit_interval_ms = static_cast<int>(spec.interval_ms);
    auto s = KafkaTransactionalSink::Open(o);
    if (!s.ok()) return s.status();
    kafka_txn = s->get();
    txn = std::move(s).value();
  }
  auto s = KafkaSource::Open(SourceOptions(a, spec));
  if (!s.ok()) return s.status();
  KafkaSource* kafka_source = s->get();
  std::unique_ptr<Source> inner = std::move(s).value();
  ProbedSource source(inner.get(), &probe);

  std::unique_ptr<TimedTxnSink> timed_txn;
  std::unique_ptr<CheckpointCoordinator> coordinator;
  if (txn != nullptr) {
    timed_txn = std::make_unique<TimedTxnSink>(txn.get(), &probe);
    CommitLog log;
    if (kafka_txn != nullptr) log = KafkaCommitLog(kafka_source, kafka_txn);
    auto c =
        CheckpointCoordinator::Open(config.checkpoint, timed_txn.get(), log, &metrics.checkpoint);
    if (!c.ok()) return c.status();
    coordinator = std::move(c).value();
    auto resume = coordinator->Recover();
    if (!resume.ok()) return resume.status();
    if (resume->has_value()) return Status::Internal("a fresh run found a checkpoint");
  }
  TimedSampleSink timed_plain(plain.get(), &probe);

  StateSampler sampler(&metrics.join);
  const double rss_before = CurrentRssMib();
  const Usage u0 = Usage::Now();
  const int64_t t0 = NowNs();
  Status st = InArena(a, [&] {
    if (coordinator == nullptr) {
      return RunPipelineWith(config, metrics, source, nullptr, timed_plain, dead_letters);
    }
    ExactlyOnce eos{coordinator.get(), std::nullopt};
    return RunPipelineWith(config, metrics, source, nullptr, *coordinator, dead_letters, &eos);
  });
  const double elapsed = static_cast<double>(NowNs() - t0) / 1e9;
  const Usage u1 = Usage::Now();
  sampler.Stop();
  CTRJOIN_RETURN_IF_ERROR(st);

  const uint64_t events = metrics.pipeline.impressions_in.Get() + metrics.pipeline.clicks_in.Get() +
                          metrics.pipeline.dead_letters.Get();
  const uint64_t samples = metrics.pipeline.samples_out.Get();
  WriteHeader(j, spec, a);
  j.Int("events", static_cast<int64_t>(events))
      .Int("samples", static_cast<int64_t>(samples))
      .Int("positives", static_cast<int64_t>(metrics.join.positives.Get()))
      .Int("negatives", static_cast<int64_t>(metrics.join.negatives.Get()))
      .Int("dead_letters", static_cast<int64_t>(metrics.pipeline.dead_letters.Get()))
      .Number("events_per_s", static_cast<double>(events) / elapsed)
      .Number("samples_per_s", static_cast<double>(samples) / elapsed);
  WriteProcess(j, elapsed, u1.cpu_s - u0.cpu_s, events, rss_before);
  j.Quantiles("latency_ms", probe.processing())
      .Quantiles("positive_latency_ms", probe.positives())
      .Quantiles("negative_delay_ms", probe.negative_delay())
      .Int("flushed_at_end", static_cast<int64_t>(probe.flushed_at_end()))
      .Int("unresolved", static_cast<int64_t>(probe.unresolved()))
      .Int("peak_state_entries", sampler.entries)
      .Number("peak_hot_state_mib", static_cast<double>(sampler.hot_bytes) / 1048576.0)
      .Int("state_budget_mib", static_cast<int64_t>(a.budget_mb));
  // The pipeline's own per-batch figures (src/ops/metrics.h), beside the
  // probe's per-sample ones.
  j.BeginObject("pipeline_metrics");
  for (size_t i = 0; i < kStages; ++i) {
    if (i != static_cast<size_t>(Stage::kEnrich)) {
      j.Quantiles(StageName(static_cast<Stage>(i)), metrics.pipeline.stage[i]);
    }
  }
  j.Quantiles("end_to_end", metrics.pipeline.end_to_end)
      .Quantiles("negative_delay", metrics.pipeline.negative_delay);
  if (timed_txn != nullptr) j.Quantiles("read_to_commit", metrics.checkpoint.read_to_commit);
  j.EndObject();
  if (timed_txn != nullptr) WriteCheckpointFigures(j, metrics.checkpoint, *timed_txn);
  return Status::Ok();
}

Status RunBaseline(const Spec& spec, const ChildArgs& a, JsonWriter& j) {
  // Only the in-memory variant reads the trace.
  Result<Trace> trace =
      spec.input == Input::kMemory ? Trace::Read(a.trace, a.limit, true) : Trace();
  if (!trace.ok()) return trace.status();
  BaselineOptions o;
  o.window_ms = a.window_ms;
  o.out_of_orderness_ms = a.out_of_orderness_ms;
  o.partitions = a.partitions;
  o.brokers = a.broker;
  o.group_id = std::string("e2e-") + spec.name;
  o.output_topic = std::string("samples-") + spec.name;
  const double rss_before = CurrentRssMib();
  const Usage u0 = Usage::Now();
  const int64_t t0 = NowNs();
  Result<BaselineResult> r = spec.system == System::kPassthrough ? RunPassthrough(o)
                             : spec.input == Input::kMemory ? RunHandWrittenFromMemory(*trace, o)
                                                            : RunHandWrittenThroughBroker(o);
  const double elapsed = static_cast<double>(NowNs() - t0) / 1e9;
  const Usage u1 = Usage::Now();
  if (!r.ok()) return r.status();
  WriteHeader(j, spec, a);
  j.Int("events", static_cast<int64_t>(r->events))
      .Int("samples", static_cast<int64_t>(r->samples))
      .Int("positives", static_cast<int64_t>(r->positives))
      .Int("negatives", static_cast<int64_t>(r->negatives))
      .Int("dead_letters", static_cast<int64_t>(r->dead_letters))
      .Number("events_per_s", static_cast<double>(r->events) / elapsed)
      .Number("samples_per_s", static_cast<double>(r->samples) / elapsed);
  WriteProcess(j, elapsed, u1.cpu_s - u0.cpu_s, r->events, rss_before);
  j.Quantiles("latency_ms", r->latency)
      .Quantiles("negative_delay_ms", r->negative_delay)
      .Int("flushed_at_end", static_cast<int64_t>(r->flushed_at_end));
  return Status::Ok();
}

// Memory footprint: a window that keeps about `pending` impressions waiting
// for their label, at the workload's 1,000 impressions/s of event time. A
// key stays W + L + allowed lateness, so L and the lateness are small here
// (L still covers the workload's 2 s of disorder).
Status RunFootprint(const Spec& spec, const ChildArgs& a, JsonWriter& j) {
  ChildArgs args = a;
  args.out_of_orderness_ms = 2'000;
  args.lateness_ms = 1'000;
  WorkloadOptions w;
  const double per_ms = w.impressions_per_sec / 1000.0;
  args.window_ms =
      std::max<int64_t>(1000, static_cast<int64_t>(static_cast<double>(a.pending) / per_ms) -
                                  args.out_of_orderness_ms - args.lateness_ms);
  const Config config = PipelineConfig(args, spec);
  Metrics metrics;
  CountingDeadLetters dead_letters;
  CountingSink sink;
  GeneratingSource source(w, a.partitions, a.pending + a.pending / 4 + 20'000,
                          /*settle_ms=*/500, [] { RequestStop(); });
  StateSampler sampler(&metrics.join);
  const double rss_before = CurrentRssMib();
  const Usage u0 = Usage::Now();
  const int64_t t0 = NowNs();
  Status st = InArena(
      a, [&] { return RunPipelineWith(config, metrics, source, nullptr, sink, dead_letters); });
  const double elapsed = static_cast<double>(NowNs() - t0) / 1e9;
  const Usage u1 = Usage::Now();
  sampler.Stop();
  CTRJOIN_RETURN_IF_ERROR(st);
  const uint64_t events = source.records();
  WriteHeader(j, spec, a);
  j.Int("pending_target", static_cast<int64_t>(a.pending))
      .Int("window_ms", args.window_ms)
      .Int("events", static_cast<int64_t>(events))
      .Int("samples", static_cast<int64_t>(metrics.pipeline.samples_out.Get()))
      .Number("events_per_s", static_cast<double>(events) / elapsed);
  WriteProcess(j, elapsed, u1.cpu_s - u0.cpu_s, events, rss_before);
  j.Int("peak_state_entries", sampler.entries)
      .Number("peak_hot_state_mib", static_cast<double>(sampler.hot_bytes) / 1048576.0)
      .Int("peak_spilled_entries", sampler.spilled)
      .Number("rocksdb_disk_mib", static_cast<double>(DirBytes(config.state.dir)) / 1048576.0)
      .Number("sampled_peak_rss_mib", sampler.rss_mib)
      .Int("state_budget_mib", static_cast<int64_t>(a.budget_mb));
  return Status::Ok();
}

int RunChild(const ChildArgs& a) {
  spdlog::set_level(spdlog::level::warn);
  const Spec* spec = FindSpec(a.config);
  if (spec == nullptr) {
    std::fprintf(stderr, "unknown configuration %s\n", a.config.c_str());
    return 2;
  }
  JsonWriter j;
  j.BeginObject();
  std::string json;
  Status st = spec->system == System::kCtrjoin && spec->input == Input::kMemory
                  ? RunFromMemory(*spec, a, &json)
              : spec->system == System::kCtrjoin   ? RunCtrjoin(*spec, a, j)
              : spec->system == System::kFootprint ? RunFootprint(*spec, a, j)
                                                   : RunBaseline(*spec, a, j);
  if (!st.ok()) {
    std::fprintf(stderr, "%s: %s\n", a.config.c_str(), st.ToString().c_str());
    return 1;
  }
  j.EndObject();
  std::ofstream out(a.result);
  out << (json.empty() ? j.str() : json) << "\n";
  return out.good() ? 0 : 1;
}

// ---------------------------------------------------------------- parent

struct Options {
  bool quick = false;
  std::string out = "e2e.json";
  std::string work_dir;
  bool keep_work = false;
  uint64_t events = 0;  // 0: the mode's default
  std::string only;     // comma-separated configuration names
  int tbb_threads = 0;  // passed to every child
  int repeat = 0;       // 0: the mode's default
};

// What --quick and the full run differ in.
struct Mode {
  uint64_t events = 0;  // records in the trace (at least)
  int64_t window_ms = 0;
  int64_t out_of_orderness_ms = 0;
  int64_t lateness_ms = 0;
  std::vector<double> load_fractions;  // of each swept configuration's measured peak
  double sweep_seconds = 0;            // of input per sweep point (at most the trace)
  std::vector<const char*> swept;      // configurations swept over offered load
  std::vector<uint64_t> pending;       // memory sweep: impressions kept pending
  uint64_t footprint_budget_mb = 0;    // memory sweep: state budget
  int child_timeout_s = 0;             // a child still running then is killed (a failure)
  int repeat = 1;  // runs of each configuration and sweep point; the median is kept
};

Mode ModeFor(const Options& o) {
  Mode m;
  if (o.quick) {
    // Small: a 10 s window, so that windows close within 60 s of event time.
    m = Mode{.events = 60'000,
             .window_ms = 10'000,
             .out_of_orderness_ms = 2'000,
             .lateness_ms = 2'000,
             .load_fractions = {0.25, 0.5, 1.0},
             .sweep_seconds = 1.0,
             .swept = {"mem-plain"},
             .pending = {10'000, 50'000},
             .footprint_budget_mb = 256,
             .child_timeout_s = 120,
             .repeat = 1};
  } else {
    // As bench/eos_cost.sh: W 60 s, L 5 s, allowed lateness 10 s.
    m = Mode{.events = 2'000'000,
             .window_ms = 60'000,
             .out_of_orderness_ms = 5'000,
             .lateness_ms = 10'000,
             .load_fractions = {0.1, 0.25, 0.5, 0.75, 1.0},
             .sweep_seconds = 8.0,
             .swept = {"mem-plain", "mem-eos-100ms"},
             .pending = {10'000, 100'000, 1'000'000, 10'000'000},
             .footprint_budget_mb = 256,
             .child_timeout_s = 1800,
             .repeat = 3};
  }
  if (o.events > 0) m.events = o.events;
  if (o.repeat > 0) m.repeat = o.repeat;
  return m;
}

// One finished child: its JSON and the figures the tables need.
struct Run {
  std::string json;
  std::string name;
  std::string label;  // name, or name@load for the sweep
  double spread = 0;  // (max - min) / median events/s over repeats
  double events_per_s = 0, samples_per_s = 0;
  double p50 = 0, p99 = 0, p999 = 0, neg_p99 = 0, neg_p999 = 0, neg_max = 0;
  double vis_p99 = -1, rss = 0, cpu_us = 0, broker_cpu_us = -1, offered = 0;
  int64_t events = 0, samples = 0, interval_ms = 0;
  double hot_mib = 0, rocksdb_mib = 0;
  int64_t state_entries = 0, spilled = 0, pending_target = 0;
  // p99 of the pipeline's per-batch histograms (src/ops/metrics.h); -1: none.
  std::map<std::string, double> batch_p99;
};

constexpr const char* kBatchHistograms[] = {"parse",      "route",          "shard",         "sink",
                                            "end_to_end", "negative_delay", "read_to_commit"};

// The number at e[a][b][c] (b and c optional), or def.
double Get(simdjson::dom::element e, const char* a, const char* b = nullptr, double def = 0,
           const char* c = nullptr) {
  simdjson::dom::element v;
  if (e[a].get(v) != simdjson::SUCCESS) return def;
  if (b != nullptr && v[b].get(v) != simdjson::SUCCESS) return def;
  if (c != nullptr && v[c].get(v) != simdjson::SUCCESS) return def;
  double d = 0;
  if (v.get_double().get(d) == simdjson::SUCCESS) return d;
  int64_t i = 0;
  if (v.get_int64().get(i) == simdjson::SUCCESS) return static_cast<double>(i);
  return def;
}

Result<Run> ParseRun(std::string json) {
  simdjson::dom::parser parser;
  simdjson::dom::element e;
  if (parser.parse(json).get(e) != simdjson::SUCCESS) return Status::Corruption("child JSON");
  Run r;
  std::string_view name;
  if (e["name"].get(name) != simdjson::SUCCESS) return Status::Corruption("child JSON: no name");
  r.name = std::string(name);
  r.events_per_s = Get(e, "events_per_s");
  r.samples_per_s = Get(e, "samples_per_s");
  r.events = static_cast<int64_t>(Get(e, "events"));
  r.samples = static_cast<int64_t>(Get(e, "samples"));
  r.interval_ms = static_cast<int64_t>(Get(e, "interval_ms"));
  r.p50 = Get(e, "latency_ms", "p50");
  r.p99 = Get(e, "latency_ms", "p99");
  r.p999 = Get(e, "latency_ms", "p999");
  r.neg_p99 = Get(e, "negative_delay_ms", "p99");
  r.neg_p999 = Get(e, "negative_delay_ms", "p999");
  r.neg_max = Get(e, "negative_delay_ms", "max");
  r.vis_p99 = Get(e, "visibility_ms", "p99", -1);
  r.rss = Get(e, "peak_rss_mib");
  r.cpu_us = Get(e, "cpu_us_per_event");
  r.broker_cpu_us = Get(e, "broker_cpu_us_per_event", nullptr, -1);
  r.offered = Get(e, "offered_rate");
  r.hot_mib = Get(e, "peak_hot_state_mib");
  r.rocksdb_mib = Get(e, "rocksdb_disk_mib");
  r.state_entries = static_cast<int64_t>(Get(e, "peak_state_entries"));
  r.spilled = static_cast<int64_t>(Get(e, "peak_spilled_entries"));
  r.pending_target = static_cast<int64_t>(Get(e, "pending_target"));
  for (const char* h : kBatchHistograms) {
    r.batch_p99[h] = Get(e, "pipeline_metrics", h, -1, "p99");
  }
  r.json = std::move(json);
  return r;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs this binary with args, output to log; waits at most timeout_s.
Status Spawn(const std::vector<std::string>& args, const fs::path& log, int timeout_s) {
  const std::string self = fs::canonical("/proc/self/exe").string();
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(self.c_str()));
  for (const std::string& s : args) argv.push_back(const_cast<char*>(s.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, self.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return Status::Internal(fmt::format("posix_spawn: {}", std::strerror(rc)));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return Status::TimedOut(fmt::format("{} s passed", timeout_s));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::Ok();
  return Status::Internal(fmt::format("exit status {}; its log: {}", status, log.string()));
}

class Parent {
 public:
  Parent(Options options, Mode mode, fs::path work)
      : options_(std::move(options)), mode_(std::move(mode)), work_(std::move(work)) {}

  int Run();

 private:
  struct Job {
    const Spec* spec;
    std::string label;
    std::vector<std::string> extra;  // child arguments
  };
  // Runs every job mode_.repeat times, round-robin (so that the machine's
  // background load drifts over all of them alike), and keeps each job's
  // median run: by events/s, or by_latency by p99 latency.
  std::vector<bench::Run> RunJobs(const std::vector<Job>& jobs, bool by_latency);
  bool Wanted(const Spec& s) const;
  Result<bench::Run> RunConfig(const Spec& spec, const std::string& label,
                               std::vector<std::string> extra);
  const bench::Run* Find(const std::string& name) const;
  void WriteResults(double seconds);
  void PrintTables() const;
  void Verdicts(JsonWriter* j, bool print) const;

  const Options options_;
  const Mode mode_;
  const fs::path work_;
  Trace trace_;
  std::string machine_json_;
  std::vector<bench::Run> runs_;
  std::vector<bench::Run> sweep_;
  std::vector<bench::Run> footprint_;
  int failures_ = 0;
};

bool Parent::Wanted(const Spec& s) const {
  if (options_.only.empty()) return !(options_.quick && s.full_only);
  std::stringstream list(options_.only);
  for (std::string name; std::getline(list, name, ',');) {
    if (name == s.name) return true;
  }
  return false;
}

const bench::Run* Parent::Find(const std::string& name) const {
  for (const bench::Run& r : runs_) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

Result<bench::Run> Parent::RunConfig(const Spec& spec, const std::string& label,
                                     std::vector<std::string> extra) {
  const fs::path dir = work_ / label;
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path result = dir / "result.json";
  std::vector<std::string> args = {"--config-name",
                                   spec.name,
                                   "--trace",
                                   (work_ / "trace.bin").string(),
                                   "--result",
                                   result.string(),
                                   "--work",
                                   dir.string(),
                                   "--window-ms",
                                   std::to_string(mode_.window_ms),
                                   "--out-of-orderness-ms",
                                   std::to_string(mode_.out_of_orderness_ms),
                                   "--lateness-ms",
                                   std::to_string(mode_.lateness_ms),
                                   "--partitions",
                                   std::to_string(trace_.partitions()),
                                   "--child-tbb-threads",
                                   std::to_string(options_.tbb_threads)};
  args.insert(args.end(), extra.begin(), extra.end());
  std::unique_ptr<testbroker::TestBroker> broker;
  if (spec.input == Input::kBroker) {
    testbroker::BrokerOptions bo;
    bo.default_partitions = trace_.partitions();
    auto b = testbroker::TestBroker::Start(bo);
    if (!b.ok()) return b.status();
    broker = std::move(b).value();
    CTRJOIN_RETURN_IF_ERROR(ProduceTrace(trace_, broker->bootstrap()));
    args.push_back("--broker");
    args.push_back(broker->bootstrap());
  }
  std::fprintf(stderr, "e2e: %-28s ...\n", label.c_str());
  const Usage u0 = Usage::Now();
  Status st = Spawn(args, dir / "log.txt", mode_.child_timeout_s);
  const Usage u1 = Usage::Now();
  if (broker != nullptr) broker->Stop();
  if (!st.ok()) {
    const std::string log = ReadFile(dir / "log.txt");
    std::fprintf(stderr, "e2e: %s failed: %s\n%s\n", label.c_str(), st.ToString().c_str(),
                 log.substr(log.size() > 4000 ? log.size() - 4000 : 0).c_str());
    return st;
  }
  // The child's object, reopened to add what only the parent knows.
  std::string json = ReadFile(result);
  while (!json.empty() && std::isspace(static_cast<unsigned char>(json.back()))) json.pop_back();
  if (json.empty() || json.back() != '}') return Status::Corruption(result.string());
  json.pop_back();
  Result<bench::Run> parsed = ParseRun(json + "}");
  if (!parsed.ok()) return parsed.status();
  if (broker != nullptr && parsed->events > 0) {
    // The broker ran in this process: its CPU time is ours.
    json += fmt::format(",\"broker_cpu_s\":{:.6g},\"broker_cpu_us_per_event\":{:.6g}",
                        u1.cpu_s - u0.cpu_s, (u1.cpu_s - u0.cpu_s) * 1e6 / parsed->events);
  }
  json += fmt::format(",\"run\":\"{}\"}}", label);
  return ParseRun(json);
}

std::vector<bench::Run> Parent::RunJobs(const std::vector<Job>& jobs, bool by_latency) {
  std::vector<std::vector<bench::Run>> done(jobs.size());
  for (int round = 0; round < mode_.repeat; ++round) {
    for (size_t i = 0; i < jobs.size(); ++i) {
      const std::string dir =
          mode_.repeat > 1 ? fmt::format("{}#{}", jobs[i].label, round + 1) : jobs[i].label;
      Result<bench::Run> r = RunConfig(*jobs[i].spec, dir, jobs[i].extra);
      if (r.ok()) {
        r->label = jobs[i].label;
        done[i].push_back(std::move(r).value());
      } else {
        ++failures_;
      }
    }
  }
  std::vector<bench::Run> kept;
  for (std::vector<bench::Run>& runs : done) {
    if (runs.empty()) continue;
    auto key = [by_latency](const bench::Run& r) { return by_latency ? r.p99 : r.events_per_s; };
    std::sort(runs.begin(), runs.end(),
              [&](const bench::Run& a, const bench::Run& b) { return key(a) < key(b); });
    bench::Run median = runs[(runs.size() - 1) / 2];
    JsonWriter all;
    all.BeginArray();
    for (const bench::Run& r : runs) {
      all.BeginObject().Number("events_per_s", r.events_per_s).Number("p99_ms", r.p99).EndObject();
    }
    all.EndArray();
    median.json.insert(median.json.size() - 1,
                       fmt::format(",\"label\":\"{}\",\"repeats\":{}", median.label, all.str()));
    median.spread =
        runs.size() > 1 && median.events_per_s > 0
            ? (runs.back().events_per_s - runs.front().events_per_s) / median.events_per_s
            : 0;
    if (by_latency) median.spread = 0;
    kept.push_back(std::move(median));
  }
  return kept;
}

int Parent::Run() {
  const auto start = std::chrono::steady_clock::now();
  machine_json_ = MachineJson();
  TraceOptions to;
  to.min_events = mode_.events;
  to.window_ms = mode_.window_ms;
  to.workload.seed = 7;
  std::fprintf(stderr, "e2e: generating %lu events (seed %lu)\n",
               static_cast<unsigned long>(to.min_events),
               static_cast<unsigned long>(to.workload.seed));
  trace_ = Trace::Generate(to);
  if (Status st = trace_.Write((work_ / "trace.bin").string()); !st.ok()) {
    std::fprintf(stderr, "e2e: %s\n", st.ToString().c_str());
    return 1;
  }
  std::vector<Job> jobs;
  for (const Spec& spec : kSpecs) {
    if (spec.system != System::kFootprint && Wanted(spec)) jobs.push_back({&spec, spec.name, {}});
  }
  runs_ = RunJobs(jobs, /*by_latency=*/false);
  // Latency against offered load: fractions of each swept configuration's peak.
  jobs.clear();
  for (const char* name : mode_.swept) {
    const bench::Run* peak = Find(name);
    if (peak == nullptr || peak->events_per_s <= 0) continue;
    for (const LoadPoint& p : SweepPoints(peak->events_per_s, mode_.load_fractions,
                                          mode_.sweep_seconds, trace_.size())) {
      jobs.push_back(
          {FindSpec(name),
           fmt::format("{}@{:.0f}%", name, p.fraction * 100),
           {"--rate", fmt::format("{:.0f}", p.rate), "--limit", std::to_string(p.limit)}});
    }
  }
  sweep_ = RunJobs(jobs, /*by_latency=*/true);
  // Memory against pending impressions: once each (they are long, and RSS
  // hardly depends on the machine's load).
  const Spec& footprint = *FindSpec("memory");
  if (options_.only.empty() || Wanted(footprint)) {
    for (uint64_t pending : mode_.pending) {
      Result<bench::Run> r = RunConfig(footprint, fmt::format("memory@{}", pending),
                                       {"--pending", std::to_string(pending), "--budget-mb",
                                        std::to_string(mode_.footprint_budget_mb)});
      if (r.ok()) {
        r->label = fmt::format("memory@{}", pending);
        r->json.insert(r->json.size() - 1, fmt::format(",\"label\":\"{}\"", r->label));
        footprint_.push_back(std::move(r).value());
      } else {
        ++failures_;
      }
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  WriteResults(seconds);
  PrintTables();
  return failures_ == 0 ? 0 : 1;
}

double Ratio(const bench::Run* a, const bench::Run* b) {
  return a != nullptr && b != nullptr && b->events_per_s > 0 ? a->events_per_s / b->events_per_s
                                                             : std::nan("");
}

const bench::Run* FindIn(const std::vector<bench::Run>& runs, const std::string& label) {
  for (const bench::Run& r : runs) {
    if (r.label == label) return &r;
  }
  return nullptr;
}

// Target verdicts (README "End-to-end"); into j and/or printed.
void Parent::Verdicts(JsonWriter* j, bool print) const {
  struct Verdict {
    std::string name, target, measured;
    std::optional<bool> met;  // nullopt: not measured in this run
  };
  std::vector<Verdict> v;
  auto add = [&](std::string name, std::string target, std::optional<double> value,
                 std::string measured, bool met) {
    v.push_back({std::move(name), std::move(target), value ? std::move(measured) : "not measured",
                 value ? std::optional<bool>(met) : std::nullopt});
  };
  auto finite = [](double d) { return std::isfinite(d) ? std::optional<double>(d) : std::nullopt; };
  const bench::Run* ceiling = Find("passthrough-broker");
  for (const char* name : {"broker-eos-100ms", "broker-eos-1s"}) {
    const double r = Ratio(Find(name), ceiling);
    add(fmt::format("{} vs passthrough ceiling", name), ">= 0.70x", finite(r),
        fmt::format("{:.2f}x", r), r >= 0.7);
  }
  for (auto [eos, plain] :
       {std::pair{"mem-eos-100ms", "mem-plain"}, std::pair{"broker-eos-100ms", "broker-plain"}}) {
    const double r = Ratio(Find(eos), Find(plain));
    add(fmt::format("exactly-once cost at 100 ms ({} vs {})", eos, plain), "<= 5% throughput",
        finite(r), fmt::format("{:.1f}%", (1 - r) * 100), 1 - r <= 0.05);
  }
  const bench::Run* half = FindIn(sweep_, "mem-plain@50%");
  add("processing latency p99 at 50% of peak (mem-plain)", "<= 2 ms",
      half ? std::optional<double>(half->p99) : std::nullopt,
      half ? fmt::format("{:.2f} ms", half->p99) : "", half && half->p99 <= 2.0);
  add("negative delay after the watermark, p99.9 at 50% of peak (mem-plain)", "<= 50 ms",
      half ? std::optional<double>(half->neg_p999) : std::nullopt,
      half ? fmt::format("{:.2f} ms (p99 {:.2f}, max {:.2f})", half->neg_p999, half->neg_p99,
                         half->neg_max)
           : "",
      half && half->neg_p999 <= 50.0);
  for (const char* name : {"broker-eos-100ms", "broker-eos-1s", "mem-eos-100ms", "mem-eos-1s"}) {
    const bench::Run* r = Find(name);
    const double limit = r ? static_cast<double>(r->interval_ms) + 25 : 0;
    add(fmt::format("exactly-once visibility p99 ({})", name),
        r ? fmt::format("<= {:.0f} ms", limit) : "<= interval + 25 ms",
        r && r->vis_p99 >= 0 ? std::optional<double>(r->vis_p99) : std::nullopt,
        r ? fmt::format("{:.1f} ms", r->vis_p99) : "", r && r->vis_p99 <= limit);
  }
  for (const bench::Run& f : footprint_) {
    const double budget = static_cast<double>(mode_.footprint_budget_mb);
    add(fmt::format("peak RSS within the {} MiB state budget ({} pending)", budget,
                    f.state_entries),
        fmt::format("<= {:.0f} MiB", budget), f.rss,
        fmt::format("{:.0f} MiB ({:.2f}x; hot state {:.0f} MiB)", f.rss, f.rss / budget, f.hot_mib),
        f.rss <= budget);
  }
  if (j != nullptr) {
    j->BeginArray("targets");
    for (const Verdict& x : v) {
      j->BeginObject()
          .String("name", x.name)
          .String("target", x.target)
          .String("measured", x.measured);
      if (x.met) {
        j->Bool("met", *x.met);
      } else {
        j->Raw("met", "null");
      }
      j->EndObject();
    }
    j->EndArray();
  }
  if (print) {
    std::printf("\nTargets\n");
    for (const Verdict& x : v) {
      std::printf("  %-7s %-74s %-12s %s\n",
                  !x.met   ? "n/a"
                  : *x.met ? "met"
                           : "NOT MET",
                  x.name.c_str(), x.target.c_str(), x.measured.c_str());
    }
  }
}

void Parent::WriteResults(double seconds) {
  JsonWriter j;
  j.BeginObject()
      .String("benchmark", "ctrjoin end-to-end (bench/e2e_bench.cc)")
      .String("mode", options_.quick ? "quick" : "full")
      .Number("wall_s", seconds)
      .Raw("machine", machine_json_);
  j.BeginObject("settings")
      .Int("events", static_cast<int64_t>(trace_.size()))
      .Int("impressions", static_cast<int64_t>(trace_.impressions()))
      .Int("seed", 7)
      .Int("partitions_per_topic", trace_.partitions())
      .Int("shards", 2)
      .Int("batch_size", 512)
      .Int("max_inflight_batches", 8)
      .Int("window_ms", mode_.window_ms)
      .Int("out_of_orderness_ms", mode_.out_of_orderness_ms)
      .Int("allowed_lateness_ms", mode_.lateness_ms)
      .Int("state_budget_mib", 1024)
      .Int("footprint_state_budget_mib", static_cast<int64_t>(mode_.footprint_budget_mb))
      .Number("sweep_seconds", mode_.sweep_seconds)
      .Int("tbb_threads", options_.tbb_threads)
      .EndObject();
  j.BeginArray("configs");
  for (const bench::Run& r : runs_) j.Raw("", r.json);
  j.EndArray();
  j.BeginArray("load_sweep");
  for (const bench::Run& r : sweep_) j.Raw("", r.json);
  j.EndArray();
  j.BeginArray("memory_sweep");
  for (const bench::Run& r : footprint_) j.Raw("", r.json);
  j.EndArray();
  j.BeginObject("ratios");
  auto ratio = [&](const char* key, const char* a, const char* b) {
    j.Number(key, Ratio(Find(a), Find(b)));
  };
  ratio("mem_plain_vs_handwritten_mem", "mem-plain", "handwritten-mem");
  ratio("broker_plain_vs_handwritten_broker", "broker-plain", "handwritten-broker");
  ratio("broker_eos_100ms_vs_handwritten_broker", "broker-eos-100ms", "handwritten-broker");
  ratio("broker_plain_vs_passthrough", "broker-plain", "passthrough-broker");
  ratio("broker_eos_100ms_vs_passthrough", "broker-eos-100ms", "passthrough-broker");
  ratio("broker_eos_1s_vs_passthrough", "broker-eos-1s", "passthrough-broker");
  ratio("handwritten_broker_vs_passthrough", "handwritten-broker", "passthrough-broker");
  ratio("mem_eos_100ms_vs_plain", "mem-eos-100ms", "mem-plain");
  ratio("mem_eos_1s_vs_plain", "mem-eos-1s", "mem-plain");
  ratio("mem_eos_100ms_files_vs_plain", "mem-eos-100ms-files", "mem-plain");
  ratio("broker_eos_100ms_vs_plain", "broker-eos-100ms", "broker-plain");
  ratio("broker_eos_1s_vs_plain", "broker-eos-1s", "broker-plain");
  j.EndObject();
  Verdicts(&j, false);
  j.Int("failed_configs", failures_);
  j.EndObject();
  const fs::path out(options_.out);
  if (out.has_parent_path()) fs::create_directories(out.parent_path());
  std::ofstream f(out);
  f << j.str() << "\n";
  std::fprintf(stderr, "e2e: wrote %s\n", options_.out.c_str());
}

std::string Ms(double v) { return v < 0 ? "-" : fmt::format("{:.2f}", v); }

void Parent::PrintTables() const {
  std::printf(
      "\nctrjoin end to end: %zu events, %d partitions per topic, 2 "
      "shards, W %ld ms\n",
      trace_.size(), trace_.partitions(), static_cast<long>(mode_.window_ms));
  std::printf("%-26s %10s %6s %10s %8s %8s %8s %8s %8s %7s %7s %7s\n", "config", "events/s",
              "spread", "samples/s", "p50 ms", "p99 ms", "p99.9 ms", "neg p99", "vis p99",
              "RSS MiB", "CPU us", "brk us");
  for (const bench::Run& r : runs_) {
    std::printf("%-26s %10.0f %5.0f%% %10.0f %8s %8s %8s %8s %8s %7.0f %7.2f %7s\n", r.name.c_str(),
                r.events_per_s, r.spread * 100, r.samples_per_s, Ms(r.p50).c_str(),
                Ms(r.p99).c_str(), Ms(r.p999).c_str(), Ms(r.neg_p99).c_str(), Ms(r.vis_p99).c_str(),
                r.rss, r.cpu_us,
                r.broker_cpu_us < 0 ? "-" : fmt::format("{:.2f}", r.broker_cpu_us).c_str());
  }
  std::printf(
      "\nPer-batch latency p99 in ms, from the pipeline's own histograms (src/ops/metrics.h)\n");
  std::printf("%-26s", "config");
  for (const char* h : kBatchHistograms) std::printf(" %14s", h);
  std::printf("\n");
  for (const bench::Run& r : runs_) {
    if (r.batch_p99.at("end_to_end") < 0) continue;
    std::printf("%-26s", r.name.c_str());
    for (const char* h : kBatchHistograms) std::printf(" %14s", Ms(r.batch_p99.at(h)).c_str());
    std::printf("\n");
  }
  std::printf("\nRatios (events/s)\n");
  auto ratio = [&](const char* what, const char* a, const char* b) {
    std::printf("  %-44s %.2fx\n", what, Ratio(Find(a), Find(b)));
  };
  ratio("ctrjoin vs hand-written, from memory", "mem-plain", "handwritten-mem");
  ratio("ctrjoin vs hand-written, through the broker", "broker-plain", "handwritten-broker");
  ratio("ctrjoin plain vs passthrough ceiling", "broker-plain", "passthrough-broker");
  ratio("ctrjoin EOS 100 ms vs passthrough ceiling", "broker-eos-100ms", "passthrough-broker");
  ratio("ctrjoin EOS 1 s vs passthrough ceiling", "broker-eos-1s", "passthrough-broker");
  ratio("EOS 100 ms vs plain, from memory", "mem-eos-100ms", "mem-plain");
  ratio("EOS 1 s vs plain, from memory", "mem-eos-1s", "mem-plain");
  ratio("EOS 100 ms vs plain, through the broker", "broker-eos-100ms", "broker-plain");
  ratio("EOS 1 s vs plain, through the broker", "broker-eos-1s", "broker-plain");
  if (!sweep_.empty()) {
    std::printf(
        "\nLatency vs offered load (in-process source, paced; from "
        "each record's due time)\n");
    std::printf("%-22s %10s %10s %8s %8s %8s %8s %8s\n", "config@load", "offered/s", "events/s",
                "p50 ms", "p99 ms", "p99.9 ms", "neg p99", "vis p99");
    for (const bench::Run& r : sweep_) {
      std::printf("%-22s %10.0f %10.0f %8s %8s %8s %8s %8s\n", r.label.c_str(), r.offered,
                  r.events_per_s, Ms(r.p50).c_str(), Ms(r.p99).c_str(), Ms(r.p999).c_str(),
                  Ms(r.neg_p99).c_str(), Ms(r.vis_p99).c_str());
    }
  }
  if (!footprint_.empty()) {
    std::printf("\nMemory vs pending impressions (state budget %lu MiB)\n",
                static_cast<unsigned long>(mode_.footprint_budget_mb));
    std::printf("%12s %12s %10s %10s %12s %10s %10s\n", "pending", "peak keys", "hot MiB",
                "spilled", "RocksDB MiB", "RSS MiB", "events/s");
    for (const bench::Run& r : footprint_) {
      std::printf("%12ld %12ld %10.1f %10ld %12.1f %10.0f %10.0f\n",
                  static_cast<long>(r.pending_target), static_cast<long>(r.state_entries),
                  r.hot_mib, static_cast<long>(r.spilled), r.rocksdb_mib, r.rss, r.events_per_s);
    }
  }
  Verdicts(nullptr, true);
}

int Main(int argc, char** argv) {
  CLI::App app{"ctrjoin end-to-end benchmark with baselines"};
  Options o;
  ChildArgs c;
  app.add_flag("--quick", o.quick, "small event counts, for CI");
  app.add_option("--out", o.out, "the JSON result file");
  app.add_option("--work-dir", o.work_dir, "scratch directory (default: a new one in /tmp)");
  app.add_flag("--keep-work", o.keep_work, "keep the scratch directory");
  app.add_option("--events", o.events, "events in the trace (default 2,000,000; quick 60,000)");
  app.add_option("--only", o.only, "run only these configurations (comma-separated)");
  app.add_option("--repeat", o.repeat,
                 "runs of each configuration, median kept (default: full 3, quick 1)");
  app.add_option("--tbb-threads", o.tbb_threads,
                 "oneTBB threads per child (default: one per core); a diagnostic");
  // Set by the parent for its children.
  app.add_option("--config-name", c.config);
  app.add_option("--trace", c.trace);
  app.add_option("--broker", c.broker);
  app.add_option("--result", c.result);
  app.add_option("--work", c.work);
  app.add_option("--rate", c.rate);
  app.add_option("--limit", c.limit);
  app.add_option("--pending", c.pending);
  app.add_option("--budget-mb", c.budget_mb);
  app.add_option("--window-ms", c.window_ms);
  app.add_option("--out-of-orderness-ms", c.out_of_orderness_ms);
  app.add_option("--lateness-ms", c.lateness_ms);
  app.add_option("--partitions", c.partitions);
  app.add_option("--child-tbb-threads", c.tbb_threads);
  CLI11_PARSE(app, argc, argv);
  if (!c.config.empty()) return RunChild(c);

  spdlog::set_level(spdlog::level::warn);
  const Mode mode = ModeFor(o);
  fs::path work = o.work_dir;
  if (work.empty()) {
    std::string tmpl = (fs::temp_directory_path() / "ctrjoin-e2e.XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) {
      std::perror("mkdtemp");
      return 1;
    }
    work = tmpl;
  } else {
    fs::create_directories(work);
  }
  Parent parent(o, mode, work);
  const int rc = parent.Run();
  if (!o.keep_work) fs::remove_all(work);
  return rc;
}

}  // namespace
}  // namespace ctrjoin::bench

int main(int argc, char** argv) { return ctrjoin::bench::Main(argc, argv); }
