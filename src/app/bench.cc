#include "src/app/bench.h"

#include <fmt/format.h>
#include <simdjson.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "joins/embedded_feature_store.h"
#include "sinks/file_sink.h"
#include "sinks/kafka_sink.h"
#include "sinks/kafka_txn_sink.h"
#include "sinks/txn_file_sink.h"
#include "src/bench/json_writer.h"
#include "src/bench/memory_io.h"
#include "src/bench/probe.h"
#include "src/bench/process_stats.h"
#include "src/bench/trace.h"
#include "src/io/file_source.h"
#include "src/io/kafka_source.h"

#ifndef CTRJOIN_SOURCE_DIR
#define CTRJOIN_SOURCE_DIR ""
#endif

namespace ctrjoin {

// ---------------------------------------------------------------- progress

// What the operator sees while the benchmark runs: on a terminal one line on
// stderr redrawn four times a second (percentage of the current run's
// records read); otherwise a log line when a run starts, every 10 s while it
// runs and when it ends. Owns one reporting thread per run, started by
// Begin and joined by End; both called from main's thread. Reads only the
// run's metrics (thread-safe counters).
class BenchProgress {
 public:
  explicit BenchProgress(bool terminal) : terminal_(terminal) {}
  ~BenchProgress() { End(""); }

  void Begin(std::string label, uint64_t records, const Metrics* metrics) {
    End("");
    label_ = std::move(label);
    records_ = records;
    metrics_ = metrics;
    start_ = std::chrono::steady_clock::now();
    stop_ = false;
    if (!terminal_) spdlog::info("bench: {}: {} records", label_, records_);
    thread_ = std::thread([this] { Loop(); });
  }
  // summary: the run's result line ("" when it failed).
  void End(const std::string& summary) {
    if (!thread_.joinable()) return;
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
    if (terminal_) std::fputs("\r\x1b[2K", stderr);
    if (!summary.empty()) spdlog::info("bench: {}: {}", label_, summary);
  }

 private:
  uint64_t Read() const {
    return metrics_->pipeline.impressions_in.Get() + metrics_->pipeline.clicks_in.Get() +
           metrics_->pipeline.dead_letters.Get();
  }
  void Loop() {
    const auto period = terminal_ ? std::chrono::milliseconds(250) : std::chrono::seconds(10);
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, period, [this] { return stop_; })) {
      const uint64_t read = Read();
      const double f = records_ > 0 ? std::min(1.0, static_cast<double>(read) / records_) : 0;
      const double s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
      if (terminal_) {
        const int filled = static_cast<int>(f * 30);
        std::fprintf(stderr, "\r\x1b[2Kbench %-14s [%s%s] %3.0f%%  %llu/%llu records  %.0f s",
                     label_.c_str(), std::string(filled, '#').c_str(),
                     std::string(30 - filled, '.').c_str(), f * 100,
                     static_cast<unsigned long long>(read),
                     static_cast<unsigned long long>(records_), s);
      } else {
        spdlog::info("bench: {}: {:.0f}% of {} records read after {:.0f} s", label_, f * 100,
                     records_, s);
      }
    }
  }

  const bool terminal_;
  std::string label_;
  uint64_t records_ = 0;
  const Metrics* metrics_ = nullptr;
  std::chrono::steady_clock::time_point start_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

namespace {

namespace fs = std::filesystem;
using bench::JsonWriter;

// ---------------------------------------------------------------- input

// Reads a bounded source to its end (or `cap` records) into the builder,
// logging progress every 10 s: the input is in memory before any run. Its
// partitions are interleaved by event time (bench::PartitionMerge), not in
// the order they were fetched.
Status Drain(Source& source, uint64_t cap, bench::TraceBuilder& builder) {
  auto last = std::chrono::steady_clock::now();
  bench::PartitionMerge merge;
  while (cap == 0 || merge.size() < cap) {
    if (StopRequested()) return Status::Ok();  // RunBench reports nothing
    Result<SourceBatch> batch = source.Next(4096);
    if (!batch.ok()) return batch.status();
    for (RawRecord& r : batch->records) {
      if (cap > 0 && merge.size() >= cap) break;
      merge.Add(r.pos.stream, r.pos.partition, std::move(r.payload));
    }
    if (batch->end_of_input) break;
    if (std::chrono::steady_clock::now() - last > std::chrono::seconds(10)) {
      last = std::chrono::steady_clock::now();
      spdlog::info("bench: loading {}: {} records ({:.1f} MiB) so far", source.Describe(),
                   merge.size(), static_cast<double>(merge.bytes()) / 1048576.0);
    }
  }
  merge.Into(builder);
  return Status::Ok();
}

struct LoadedInput {
  bench::Trace trace;
  std::string describe;
  uint64_t bytes = 0;
};

Result<LoadedInput> LoadInput(const Config& config, const BenchOptions& o,
                              const WorkloadOptions& workload) {
  bench::TraceBuilder builder(o.partitions, config.join.window_ms, config.ParserSchema());
  LoadedInput in;
  switch (o.input) {
    case BenchInput::kSynthetic: {
      WorkloadGenerator gen(workload);
      while (builder.size() < o.events) {
        GeneratedRecord g = gen.Next();
        builder.Add(g.stream, std::move(g.json));
      }
      GeneratedRecord tail;
      while (gen.Drain(tail)) builder.Add(tail.stream, std::move(tail.json));
      in.describe = fmt::format(
          "synthetic workload (seed {}, {} users, {} items, CTR {}, {} click delay of mean {} ms, "
          "disorder {} ms, {} extra features, payload {} B)",
          workload.seed, workload.users, workload.items, workload.ctr, NameOf(workload.click_delay),
          workload.mean_click_delay_ms, workload.max_disorder_ms, workload.extra_features,
          workload.payload_bytes);
      break;
    }
    case BenchInput::kFiles: {
      auto source = FileSource::Open(config.source.files, config.ParserSchema());
      if (!source.ok()) return source.status();
      CTRJOIN_RETURN_IF_ERROR(Drain(**source, o.events, builder));
      in.describe = fmt::format("files {} and {}", config.source.files.impressions_path,
                                config.source.files.clicks_path);
      break;
    }
    case BenchInput::kKafka: {
      KafkaSourceOptions so = config.source.kafka;
      so.group_id += "-bench";  // never commits: the bench reads by assignment
      so.mode = KafkaMode::kAssign;
      so.stop_at_end = true;
      auto range = ResolveReplayRange(so, o.range);
      if (!range.ok()) return range.status();
      so.start_offsets = range->start;
      so.end_offsets = range->end;
      spdlog::info("bench: loading {} = {} impressions; clicks from time {}", o.range.Describe(),
                   range->impressions, range->click_start_ms);
      auto source = KafkaSource::Open(so);
      if (!source.ok()) return source.status();
      CTRJOIN_RETURN_IF_ERROR(Drain(**source, o.events, builder));
      in.describe = fmt::format("Kafka topics {} and {}, {}", so.impressions_topic, so.clicks_topic,
                                range->Describe());
      break;
    }
  }
  in.bytes = builder.bytes();
  in.trace = builder.Finish();
  if (in.trace.impressions() == 0 && !StopRequested()) {
    return Status::InvalidArgument(fmt::format(
        "the input ({}) holds no valid impression{}", in.describe,
        o.input == BenchInput::kSynthetic
            ? " (the synthetic workload uses the default field names: a config that renames "
              "them needs recorded input)"
            : ""));
  }
  return in;
}

// ---------------------------------------------------------------- features

// Where the runs' lookups go; changes config.feature_store when the bench
// loads a store of its own. Returns the description for the report.
Result<std::string> PrepareFeatures(Config& config, const BenchOptions& o,
                                    const WorkloadOptions& workload, const fs::path& work) {
  if (config.lookups.empty()) return std::string("none (the config has no lookups)");
  std::string choice = o.features;
  if (choice.empty()) choice = o.demo ? "generated" : "configured";
  auto& embedded = config.feature_store.embedded;
  std::string file;  // rows to load into a fresh embedded store
  if (choice == "configured") {
    if (config.feature_store.type == FeatureStoreType::kHBase) {
      return fmt::format("the configured HBase store ({})", config.feature_store.hbase.host);
    }
    if (embedded.load.empty()) {
      // Beside a live job that holds the store: read-only, no lock.
      embedded.read_only = true;
      return fmt::format("the configured embedded store {}, read-only", embedded.path);
    }
    file = embedded.load;
  } else if (choice != "generated") {
    file = choice;
  }
  EmbeddedFeatureStoreOptions fresh = embedded;
  fresh.path = (work / "features").string();
  fresh.load.clear();
  fresh.read_only = false;
  {
    auto store = EmbeddedFeatureStore::Open(fresh);
    if (!store.ok()) return store.status();
    if (file.empty()) {
      Status st;
      GenerateFeatureRows(workload, [&](const std::string& json) {
        if (st.ok()) st = (*store)->PutJson(json);
      });
      CTRJOIN_RETURN_IF_ERROR(st);
    } else {
      Result<uint64_t> cells = (*store)->LoadJsonLines(file);
      if (!cells.ok()) return cells.status().WithContext("--features");
    }
  }
  config.feature_store.type = FeatureStoreType::kEmbedded;
  embedded = fresh;
  embedded.read_only = true;
  return file.empty()
             ? std::string("the synthetic workload's feature rows, in a fresh embedded store")
             : fmt::format("rows of {}, loaded into a fresh embedded store", file);
}

// ---------------------------------------------------------------- one run

// The run's sink as spec says: the null sink, or the config's sink into the
// run's directory or the bench topic.
Result<std::unique_ptr<SampleSink>> PlainSink(const Config& c, const RunSpec& spec) {
  const fs::path dir(spec.dir);
  if (spec.sink == BenchSink::kNull || c.sink.type == SinkType::kStdout) {
    return std::unique_ptr<SampleSink>(std::make_unique<bench::CountingSink>(c.sink.format));
  }
  if (c.sink.type == SinkType::kKafka) {
    KafkaSinkOptions o = c.sink.kafka;
    o.topic = spec.sink_topic;
    auto s = KafkaSampleSink::Open(o, c.sink.format);
    if (!s.ok()) return s.status().WithContext("sink.kafka");
    return std::unique_ptr<SampleSink>(std::move(s).value());
  }
  auto w = LineWriter::OpenFile((dir / "samples").string(), /*append=*/false);
  if (!w.ok()) return w.status();
  return std::unique_ptr<SampleSink>(
      std::make_unique<FileSampleSink>(std::move(w).value(), c.sink.format));
}

Result<std::unique_ptr<TransactionalSink>> TxnSink(const Config& c, const RunSpec& spec) {
  const fs::path dir(spec.dir);
  if (spec.sink == BenchSink::kNull || c.sink.type == SinkType::kStdout) {
    return std::unique_ptr<TransactionalSink>(
        std::make_unique<bench::MemoryTxnSink>(c.sink.format));
  }
  if (c.sink.type == SinkType::kKafka) {
    KafkaTransactionalSinkOptions o = c.KafkaTxnSinkOptions();
    o.topic = spec.sink_topic;
    o.transactional_id_prefix += "-bench";
    auto s = KafkaTransactionalSink::Open(o);
    if (!s.ok()) return s.status();
    return std::unique_ptr<TransactionalSink>(std::move(s).value());
  }
  TransactionalFileSinkOptions o;
  o.dir = (dir / "out").string();
  o.format = c.sink.format;
  auto s = TransactionalFileSink::Open(o);
  if (!s.ok()) return s.status();
  return std::unique_ptr<TransactionalSink>(std::move(s).value());
}

double Ratio(double a, double b) { return b > 0 ? a / b : std::nan(""); }

}  // namespace

void WriteCheckpointFigures(bench::JsonWriter& j, const CheckpointMetrics& m,
                            const bench::TimedTxnSink& timed) {
  j.Quantiles("visibility_ms", timed.visibility())
      .Int("final_epoch_samples", static_cast<int64_t>(timed.final_epoch_samples()))
      .Quantiles("commit_lag_ms", m.commit_lag)
      .Quantiles("checkpoint_duration_ms", m.duration)
      .Int("checkpoints_completed", static_cast<int64_t>(m.completed.Get()))
      .Int("epochs_committed", static_cast<int64_t>(m.committed.Get()))
      .Number("checkpoint_state_mib", static_cast<double>(m.bytes_total.Get()) / 1048576.0);
  j.BeginObject("commit_phases_ms");
  for (size_t p = 0; p < CheckpointMetrics::kPhases; ++p) {
    j.Quantiles(CheckpointMetrics::PhaseName(p), m.phase[p]);
  }
  j.EndObject();
}

Result<MeasuredRun> MeasureRun(const Config& config, const bench::Trace& input,
                               const RunSpec& spec) {
  const fs::path dir(spec.dir);
  fs::create_directories(dir);
  Config c = config;
  c.checkpoint.enabled = spec.checkpoints;
  c.state.dir = (dir / "state").string();
  c.checkpoint.dir = (dir / "checkpoints").string();
  c.http.enabled = false;

  bench::Trace trace = input;  // a copy: the source moves payloads out
  bench::Pacing pacing;
  pacing.events_per_s = spec.rate;
  bench::LatencyProbe probe(&trace, c.watermark, &pacing);
  Metrics metrics;
  bench::CountingDeadLetters dead_letters;
  auto enrichment = MakeEnrichment(c, metrics);
  if (!enrichment.ok()) return enrichment.status();

  std::unique_ptr<SampleSink> plain;
  std::unique_ptr<TransactionalSink> txn;
  std::unique_ptr<bench::TimedTxnSink> timed_txn;
  std::unique_ptr<CheckpointCoordinator> coordinator;
  if (spec.checkpoints) {
    auto s = TxnSink(c, spec);
    if (!s.ok()) return s.status();
    txn = std::move(s).value();
    timed_txn = std::make_unique<bench::TimedTxnSink>(txn.get(), &probe);
    auto co = CheckpointCoordinator::Open(c.checkpoint, timed_txn.get(), CommitLog{},
                                          &metrics.checkpoint);
    if (!co.ok()) return co.status();
    coordinator = std::move(co).value();
    auto resume = coordinator->Recover();
    if (!resume.ok()) return resume.status();
  } else {
    auto s = PlainSink(c, spec);
    if (!s.ok()) return s.status();
    plain = std::move(s).value();
  }
  bench::TimedSampleSink timed_plain(plain.get(), &probe);
  bench::MemorySource memory(&trace, spec.limit, &pacing);
  bench::ProbedSource source(&memory, &probe);
  const uint64_t records = spec.limit > 0 ? spec.limit : trace.size();

  if (spec.progress != nullptr) spec.progress->Begin(spec.name, records, &metrics);
  // A terminal shows the progress line; the runs' own info logs would break it.
  const auto level = spdlog::get_level();
  if (isatty(2) == 1 && level == spdlog::level::info) spdlog::set_level(spdlog::level::warn);
  bench::StateSampler sampler(&metrics.join, coordinator != nullptr
                                                 ? fs::path(c.checkpoint.dir) / "changelog"
                                                 : fs::path());
  const double rss_before = bench::CurrentRssMib();
  const bench::Usage u0 = bench::Usage::Now();
  const int64_t t0 = bench::NowNs();
  Status st;
  if (coordinator == nullptr) {
    st = RunPipelineWith(c, metrics, source, enrichment->service.get(), timed_plain, dead_letters);
  } else {
    ExactlyOnce eos{coordinator.get(), std::nullopt};
    st = RunPipelineWith(c, metrics, source, enrichment->service.get(), *coordinator, dead_letters,
                         &eos);
  }
  // From the first read: setting the run up (graph, stores, sinks) is not
  // part of its throughput.
  const int64_t first_read = memory.first_read_ns() > 0 ? memory.first_read_ns() : t0;
  const double elapsed = static_cast<double>(bench::NowNs() - first_read) / 1e9;
  const double cpu_s = bench::Usage::Now().cpu_s - u0.cpu_s;
  sampler.Stop();
  spdlog::set_level(level);
  if (!st.ok()) {
    if (spec.progress != nullptr) spec.progress->End("");
    return st.WithContext(fmt::format("run {}", spec.name));
  }

  MeasuredRun f;
  f.name = spec.name;
  f.fraction = spec.fraction;
  f.offered = spec.rate;
  const PipelineMetrics& p = metrics.pipeline;
  f.events = p.impressions_in.Get() + p.clicks_in.Get() + p.dead_letters.Get();
  f.samples = p.samples_out.Get();
  f.late_impressions = metrics.join.late_impressions.Get();
  f.corrections = probe.corrections();
  if (spec.limit == 0) f.account = bench::AccountSamples(trace, probe.written_ids());
  f.elapsed_s = elapsed;
  f.events_per_s = static_cast<double>(f.events) / elapsed;
  f.samples_per_s = static_cast<double>(f.samples) / elapsed;
  f.cpu_us = f.events > 0 ? cpu_s * 1e6 / static_cast<double>(f.events) : 0;
  f.per_core = cpu_s > 0 ? static_cast<double>(f.events) / cpu_s : 0;
  f.p50 = probe.processing().QuantileMs(0.5);
  f.p99 = probe.processing().QuantileMs(0.99);
  f.p999 = probe.processing().QuantileMs(0.999);
  f.e2e_p99 = p.end_to_end.QuantileMs(0.99);
  f.neg_p99 = probe.negative_delay().QuantileMs(0.99);
  if (timed_txn != nullptr) {
    const CheckpointMetrics& cm = metrics.checkpoint;
    f.vis_p99 = timed_txn->visibility().QuantileMs(0.99);
    f.commit_p99 = cm.commit_lag.QuantileMs(0.99);
    for (size_t p = 0; p < CheckpointMetrics::kPhases; ++p) {
      const uint64_t n = cm.phase[p].count();
      f.phase_mean_ms[p] = n > 0 ? cm.phase[p].sum_ms() / static_cast<double>(n) : 0;
    }
  }
  f.rss_mib = sampler.rss_mib;
  f.growth_mib = std::max(0.0, sampler.rss_mib - rss_before);
  const LookupMetrics& l = metrics.lookup;
  const uint64_t impressions = p.impressions_in.Get();
  if (!c.lookups.empty()) {
    f.hit_ratio = Ratio(static_cast<double>(l.Sum(&LookupCounters::cache_hits)),
                        static_cast<double>(l.Sum(&LookupCounters::cache_hits) +
                                            l.Sum(&LookupCounters::cache_misses)));
    f.calls_per_impression = Ratio(static_cast<double>(l.Sum(&LookupCounters::store_calls)),
                                   static_cast<double>(impressions));
  }

  JsonWriter j;
  j.BeginObject()
      .String("name", spec.name)
      .String("label", spec.name)
      .Bool("exactly_once", spec.checkpoints)
      .Number("load_fraction", spec.fraction)
      .Number("offered_rate", spec.rate)
      .Int("records_offered", static_cast<int64_t>(records))
      .Int("events", static_cast<int64_t>(f.events))
      .Int("impressions", static_cast<int64_t>(impressions))
      .Int("samples", static_cast<int64_t>(f.samples))
      .Int("positives", static_cast<int64_t>(metrics.join.positives.Get()))
      .Int("negatives", static_cast<int64_t>(metrics.join.negatives.Get()))
      .Int("dead_letters", static_cast<int64_t>(p.dead_letters.Get()))
      .Int("late_impressions", static_cast<int64_t>(f.late_impressions))
      .Number("elapsed_s", elapsed)
      .Number("events_per_s", f.events_per_s)
      .Number("samples_per_s", f.samples_per_s)
      .Number("cpu_s", cpu_s)
      .Number("cpu_us_per_event", f.cpu_us)
      .Number("events_per_core_s", f.per_core)
      .Number("samples_per_core_s", cpu_s > 0 ? static_cast<double>(f.samples) / cpu_s : 0)
      .Quantiles("latency_ms", probe.processing())
      .Quantiles("positive_latency_ms", probe.positives())
      .Quantiles("negative_delay_ms", probe.negative_delay())
      .Quantiles("end_to_end_ms", p.end_to_end)
      .Int("flushed_at_end", static_cast<int64_t>(probe.flushed_at_end()))
      .Number("rss_before_run_mib", rss_before)
      .Number("peak_rss_mib", sampler.rss_mib)
      .Number("rss_growth_mib", f.growth_mib)
      .Int("state_budget_mib", static_cast<int64_t>(c.state.memory_budget_mb))
      .Int("peak_state_entries", sampler.entries)
      .Number("peak_hot_state_mib", static_cast<double>(sampler.hot_bytes) / 1048576.0)
      .Int("peak_spilled_entries", sampler.spilled)
      .Number("cache_hit_ratio", f.hit_ratio < 0 ? std::nan("") : f.hit_ratio)
      .Number("store_calls_per_impression",
              f.calls_per_impression < 0 ? std::nan("") : f.calls_per_impression)
      .Number("store_rows_per_impression",
              c.lookups.empty() ? std::nan("")
                                : Ratio(static_cast<double>(l.Sum(&LookupCounters::requests)),
                                        static_cast<double>(impressions)));
  // The pipeline's own per-batch histograms (src/ops/metrics.h), beside the
  // probe's per-sample ones.
  j.BeginObject("pipeline_metrics");
  for (size_t i = 0; i < kStages; ++i) {
    if (i != static_cast<size_t>(Stage::kEnrich) || !c.lookups.empty()) {
      j.Quantiles(StageName(static_cast<Stage>(i)), p.stage[i]);
    }
  }
  j.Quantiles("end_to_end", p.end_to_end).Quantiles("negative_delay", p.negative_delay);
  if (timed_txn != nullptr) j.Quantiles("read_to_commit", metrics.checkpoint.read_to_commit);
  j.EndObject();
  if (timed_txn != nullptr) {
    j.Int("interval_ms", c.checkpoint.interval_ms);
    WriteCheckpointFigures(j, metrics.checkpoint, *timed_txn);
    // [seconds since the start, MiB on disk, pending entries] every 500 ms.
    j.BeginArray("changelog_on_disk");
    for (const bench::StateSampler::DiskPoint& d : sampler.disk) {
      j.BeginArray()
          .Number({}, d.seconds)
          .Number({}, static_cast<double>(d.bytes) / 1048576.0)
          .Int({}, d.entries)
          .EndArray();
    }
    j.EndArray();
  }
  j.Int("unresolved", static_cast<int64_t>(probe.unresolved()));
  if (spec.extra_json) spec.extra_json(j);
  j.EndObject();
  f.json = j.str();
  if (spec.progress != nullptr) {
    spec.progress->End(fmt::format("{:.0f} events/s ({:.0f} per CPU second), p99 {:.2f} ms",
                                   f.events_per_s, f.per_core, f.p99));
  }
  return f;
}

namespace {

// ---------------------------------------------------------------- report

std::string Ms(double v) { return v < 0 || !std::isfinite(v) ? "-" : fmt::format("{:.2f}", v); }
std::string Pct(double v) {
  return v < 0 || !std::isfinite(v) ? "-" : fmt::format("{:.1f}", v * 100);
}

void PrintRuns(const std::vector<MeasuredRun>& runs) {
  std::printf("%-12s %10s %10s %10s %10s %7s %8s %8s %8s %8s %8s %8s %7s %6s %6s\n", "run",
              "offered/s", "events/s", "samples/s", "ev/CPU-s", "CPU us", "p50 ms", "p99 ms",
              "p99.9 ms", "e2e p99", "neg p99", "vis p99", "RSS+MiB", "hit %", "calls");
  for (const MeasuredRun& r : runs) {
    std::printf(
        "%-12s %10s %10.0f %10.0f %10.0f %7.2f %8s %8s %8s %8s %8s %8s %7.0f %6s %6s\n",
        r.name.c_str(), r.offered > 0 ? fmt::format("{:.0f}", r.offered).c_str() : "max",
        r.events_per_s, r.samples_per_s, r.per_core, r.cpu_us, Ms(r.p50).c_str(), Ms(r.p99).c_str(),
        Ms(r.p999).c_str(), Ms(r.e2e_p99).c_str(), Ms(r.neg_p99).c_str(), Ms(r.vis_p99).c_str(),
        r.growth_mib, Pct(r.hit_ratio).c_str(),
        r.calls_per_impression < 0 ? "-" : fmt::format("{:.2f}", r.calls_per_impression).c_str());
  }
}

// The figures of an earlier --json that a comparison needs: by run name.
struct BaselineRun {
  double events_per_s = 0, cpu_us = 0, p99 = 0, growth_mib = 0;
};

Result<std::map<std::string, BaselineRun>> ReadBaseline(const std::string& path) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.load(path).get(root) != simdjson::SUCCESS) {
    return Status::InvalidArgument(fmt::format("--baseline {}: not a readable JSON file", path));
  }
  std::string_view kind;
  if (root["benchmark"].get(kind) != simdjson::SUCCESS || kind != "ctrjoin bench") {
    return Status::InvalidArgument(
        fmt::format("--baseline {}: not the --json of a ctrjoin bench run", path));
  }
  std::map<std::string, BaselineRun> runs;
  auto num = [](simdjson::dom::element e, const char* a, const char* b = nullptr) {
    double d = 0;
    simdjson::dom::element v;
    if (e[a].get(v) != simdjson::SUCCESS) return 0.0;
    if (b != nullptr && v[b].get(v) != simdjson::SUCCESS) return 0.0;
    return v.get_double().get(d) == simdjson::SUCCESS ? d : 0.0;
  };
  simdjson::dom::array all;
  if (root["runs"].get(all) != simdjson::SUCCESS) {
    return Status::InvalidArgument(fmt::format("--baseline {}: no \"runs\"", path));
  }
  for (simdjson::dom::element r : all) {
    std::string_view name;
    if (r["name"].get(name) != simdjson::SUCCESS) continue;
    runs[std::string(name)] = BaselineRun{num(r, "events_per_s"), num(r, "cpu_us_per_event"),
                                          num(r, "latency_ms", "p99"), num(r, "rss_growth_mib")};
  }
  return runs;
}

// Prints and writes (into j) each run's ratio to the baseline's run of the
// same name.
void Compare(const std::vector<MeasuredRun>& runs, const std::map<std::string, BaselineRun>& base,
             const std::string& path, JsonWriter& j) {
  std::printf("\nCompared with %s (this run / baseline)\n", path.c_str());
  std::printf("%-12s %10s %10s %10s %10s\n", "run", "events/s", "CPU/event", "p99", "RSS+");
  j.BeginObject("baseline").String("path", path).BeginArray("ratios");
  for (const MeasuredRun& r : runs) {
    auto it = base.find(r.name);
    if (it == base.end()) continue;
    const BaselineRun& b = it->second;
    const double ev = Ratio(r.events_per_s, b.events_per_s), cpu = Ratio(r.cpu_us, b.cpu_us),
                 p99 = Ratio(r.p99, b.p99), rss = Ratio(r.growth_mib, b.growth_mib);
    std::printf("%-12s %9.2fx %9.2fx %9.2fx %9.2fx\n", r.name.c_str(), ev, cpu, p99, rss);
    j.BeginObject()
        .String("name", r.name)
        .Number("events_per_s", ev)
        .Number("cpu_us_per_event", cpu)
        .Number("p99_ms", p99)
        .Number("rss_growth_mib", rss)
        .EndObject();
  }
  j.EndArray().EndObject();
}

// bench/plot.py: next to the binary (the build copies it there), else in
// the source tree the binary was built from.
std::string PlotScript() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  for (const fs::path& p : {self.parent_path() / "ctrjoin-plot.py",
                            fs::path(CTRJOIN_SOURCE_DIR) / "bench" / "plot.py"}) {
    if (!p.empty() && fs::exists(p, ec)) return p.string();
  }
  return "";
}

Status CheckPlotting() {
  if (PlotScript().empty()) {
    return Status::InvalidArgument("--plot: bench/plot.py is not next to the binary");
  }
  if (std::system("/usr/bin/python3 -c 'import matplotlib' >/dev/null 2>&1") != 0) {
    return Status::InvalidArgument(
        "--plot: needs /usr/bin/python3 with matplotlib (scripts/setup-bench installs "
        "python3-matplotlib)");
  }
  return Status::Ok();
}

Status Plot(const std::string& json_path, const std::string& dir) {
  const std::string cmd =
      fmt::format("/usr/bin/python3 '{}' '{}' '{}'", PlotScript(), json_path, dir);
  if (std::system(cmd.c_str()) != 0) return Status::IoError("--plot: " + cmd + " failed");
  spdlog::info("bench: plots in {}", dir);
  return Status::Ok();
}

Status Validate(const Config& config, const BenchOptions& o) {
  for (double f : o.loads) {
    if (!(f > 0 && f <= 1)) {
      return Status::InvalidArgument(
          fmt::format("--loads: fractions of the peak in (0, 1], got {}", f));
    }
  }
  if (o.repeat < 1 || o.repeat > 100) {
    return Status::InvalidArgument("--repeat: 1 .. 100 runs per row");
  }
  if (!(o.seconds_per_load > 0)) {
    return Status::InvalidArgument("--seconds-per-load: must be positive");
  }
  if (o.partitions < 1 || o.partitions > 1024) {
    return Status::InvalidArgument("--partitions: 1 .. 1024");
  }
  if (o.input == BenchInput::kFiles && config.source.type != SourceType::kFiles) {
    return Status::InvalidArgument(
        "--input files: the config's source.type is not 'files' (give source.files)");
  }
  if (o.input == BenchInput::kKafka) {
    if (config.source.type != SourceType::kKafka) {
      return Status::InvalidArgument(
          "--input kafka: the config's source.type is not 'kafka' (give source.kafka)");
    }
    CTRJOIN_RETURN_IF_ERROR(o.range.Validate());
  }
  if (o.input == BenchInput::kSynthetic && o.events == 0) {
    return Status::InvalidArgument("--events: the synthetic workload needs a count");
  }
  if (o.sink == BenchSink::kConfigured && config.sink.type == SinkType::kKafka) {
    if (o.sink_topic.empty()) {
      return Status::InvalidArgument(
          "--sink-topic: required with a Kafka sink (the bench never writes into "
          "sink.kafka.topic), or --sink null");
    }
    for (const std::string* t :
         {&config.sink.kafka.topic, &config.source.kafka.impressions_topic,
          &config.source.kafka.clicks_topic, &config.dead_letter.kafka.topic}) {
      if (o.sink_topic == *t) {
        return Status::InvalidArgument(fmt::format(
            "--sink-topic: '{}' is a topic the job reads or writes; give a topic of its own",
            o.sink_topic));
      }
    }
  }
  if (!o.plot_dir.empty()) CTRJOIN_RETURN_IF_ERROR(CheckPlotting());
  if (!o.plot_dir.empty() && o.json_path.empty()) {
    return Status::InvalidArgument("--plot: also give --json (the plots are drawn from it)");
  }
  return Status::Ok();
}

// A peak run shorter than this is dominated by fixed costs: the report says so.
constexpr double kShortRunS = 5;

}  // namespace

Status RunBench(const Config& live, const BenchOptions& o) {
  CTRJOIN_RETURN_IF_ERROR(Validate(live, o));
  std::optional<std::map<std::string, BaselineRun>> baseline;
  if (!o.baseline_path.empty()) {
    auto b = ReadBaseline(o.baseline_path);
    if (!b.ok()) return b.status();
    baseline = std::move(b).value();
  }
  fs::path work = o.work_dir;
  if (work.empty()) {
    std::string tmpl = (fs::temp_directory_path() / "ctrjoin-bench.XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) return Status::IoError("mkdtemp " + tmpl);
    work = tmpl;
  } else {
    fs::create_directories(work);
  }
  struct Cleanup {
    fs::path dir;
    bool keep;
    ~Cleanup() {
      std::error_code ec;
      if (!keep) fs::remove_all(dir, ec);
    }
  } cleanup{work, o.keep_work};
  spdlog::info("bench: scratch directory {}{}", work.string(),
               o.keep_work ? " (kept)" : " (removed at the end)");

  const auto start = std::chrono::steady_clock::now();
  const std::string machine = bench::MachineJson();
  const std::string machine_line = bench::MachineLine();
  const std::string load_before = bench::LoadAverage();
  Config config = live;
  WorkloadOptions workload = o.workload;
  auto features = PrepareFeatures(config, o, workload, work);
  if (!features.ok()) return features.status();
  auto input = LoadInput(config, o, workload);
  if (!input.ok()) return input.status();
  if (StopRequested()) {
    spdlog::warn("bench: stopped while loading the input: nothing measured");
    return Status::Ok();
  }
  bench::Trace& trace = input->trace;
  spdlog::info("bench: input in memory: {} records ({:.1f} MiB), {} distinct impressions",
               trace.size(), static_cast<double>(input->bytes) / 1048576.0, trace.impressions());

  const bool checkpoints = config.checkpoint.enabled;
  const bool terminal = o.progress == ReplayProgressMode::kAuto
                            ? isatty(2) == 1
                            : o.progress == ReplayProgressMode::kTerminal;
  BenchProgress progress(terminal);
  std::vector<MeasuredRun> runs;
  // A stop (SIGINT/SIGTERM) ends the benchmark after the run it cut short,
  // which is left out: the runs before it are reported.
  // Each run o.repeat times; the median is kept: by events/s for the runs
  // at full speed, by p99 latency for the paced ones.
  auto run = [&](RunSpec spec) -> Status {
    std::vector<MeasuredRun> repeats;
    for (int i = 0; i < o.repeat && !StopRequested(); ++i) {
      spec.sink = o.sink;
      spec.sink_topic = o.sink_topic;
      spec.dir = (work / fmt::format("run-{}-{}-{}", runs.size() + 1, spec.name, i + 1)).string();
      spec.progress = &progress;
      auto f = MeasureRun(config, trace, spec);
      if (!f.ok()) return f.status();
      if (!StopRequested()) repeats.push_back(std::move(f).value());
    }
    if (repeats.empty()) return Status::Ok();
    const bool paced = spec.rate > 0;
    std::sort(repeats.begin(), repeats.end(), [paced](const auto& a, const auto& b) {
      return paced ? a.p99 < b.p99 : a.events_per_s < b.events_per_s;
    });
    MeasuredRun median = repeats[(repeats.size() - 1) / 2];
    JsonWriter all;
    all.BeginArray();
    for (const MeasuredRun& r : repeats) {
      all.BeginObject().Number("events_per_s", r.events_per_s).Number("p99_ms", r.p99).EndObject();
    }
    all.EndArray();
    median.json.insert(median.json.size() - 1, ",\"repeats\":" + all.str());
    runs.push_back(std::move(median));
    return Status::Ok();
  };
  CTRJOIN_RETURN_IF_ERROR(run({"peak", checkpoints}));
  if (runs.empty()) {
    spdlog::warn("bench: stopped before the first run finished: nothing to report");
    return Status::Ok();
  }
  const MeasuredRun peak = runs.front();
  if (peak.elapsed_s < kShortRunS) {
    spdlog::warn(
        "bench: the peak run lasted {:.1f} s: fixed costs (start-up, with checkpoints the last "
        "epoch's commit) weigh on runs this short; give more --events for a run of {:.0f} s or "
        "more",
        peak.elapsed_s, kShortRunS);
  }
  if (checkpoints) CTRJOIN_RETURN_IF_ERROR(run({"plain", false}));
  for (const bench::LoadPoint& p :
       bench::SweepPoints(peak.events_per_s, o.loads, o.seconds_per_load, trace.size())) {
    CTRJOIN_RETURN_IF_ERROR(run(
        {fmt::format("load-{:.0f}%", p.fraction * 100), checkpoints, p.fraction, p.rate, p.limit}));
  }
  if (StopRequested()) spdlog::warn("bench: stopped: the runs measured so far follow");
  const double wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  // Every impression becomes one sample: none twice (corrections apart),
  // none of an impression the input does not hold, and an impression without
  // one only where the join dropped impressions as late (a late impression's
  // duplicates count as late too, hence "at most").
  const bench::SampleAccount& account = peak.account;
  const bool agrees = account.written_twice == 0 && account.unknown == 0 &&
                      account.without_sample <= peak.late_impressions;

  // ---- the report
  std::printf("\nctrjoin bench: %s\n", o.config_name.c_str());
  std::printf("input     %s: %zu records (%.1f MiB), %llu distinct impressions\n",
              input->describe.c_str(), trace.size(), static_cast<double>(input->bytes) / 1048576.0,
              static_cast<unsigned long long>(trace.impressions()));
  std::printf("features  %s\n", features->c_str());
  std::printf(
      "sink      %s (format %s)%s\n",
      o.sink == BenchSink::kNull ? "null: encoded, counted, discarded"
                                 : fmt::format("configured ({})", NameOf(config.sink.type)).c_str(),
      std::string(NameOf(config.sink.format)).c_str(),
      checkpoints ? fmt::format(", exactly once every {} ms", config.checkpoint.interval_ms).c_str()
                  : "");
  std::printf(
      "job       W %lld ms, out-of-orderness %lld ms, %s shards, %zu lookups, state budget %llu "
      "MiB\n",
      static_cast<long long>(config.join.window_ms),
      static_cast<long long>(config.watermark.out_of_orderness_ms),
      config.pipeline.shards == 0 ? "auto" : std::to_string(config.pipeline.shards).c_str(),
      config.lookups.size(), static_cast<unsigned long long>(config.state.memory_budget_mb));
  std::printf("machine   %s; load %s before, %s after\n\n", machine_line.c_str(),
              load_before.c_str(), bench::LoadAverage().c_str());
  PrintRuns(runs);
  std::printf(
      "\nevents/s: input records (impressions, clicks, rejected) per wall second; ev/CPU-s: per\n"
      "second of CPU time of the whole process (one core's worth); latency: input read -> sample\n"
      "written (paced runs: from the record's due time); e2e: the pipeline's own batch histogram;\n"
      "neg: negative emitted after the watermark passed its window; RSS+: resident memory the run\n"
      "added over the input held in memory; calls: feature-store calls per impression.\n");
  std::optional<double> eos_ratio;
  if (checkpoints && runs.size() > 1 && runs[1].name == "plain") {
    eos_ratio = Ratio(runs[0].events_per_s, runs[1].events_per_s);
    std::printf(
        "\nexactly once every %lld ms: %.2fx the throughput without checkpoints (cost %.1f%%); "
        "visibility p99 %s ms\n",
        static_cast<long long>(config.checkpoint.interval_ms), *eos_ratio, (1 - *eos_ratio) * 100,
        Ms(runs[0].vis_p99).c_str());
    std::string phases;
    for (size_t p = 0; p < CheckpointMetrics::kPhases; ++p) {
      phases += fmt::format("{}{} {:.1f}", p == 0 ? "" : ", ", CheckpointMetrics::PhaseName(p),
                            runs[0].phase_mean_ms[p]);
    }
    std::printf("barrier to commit (peak run): p99 %s ms; mean per epoch: %s ms (txn/README.md)\n",
                Ms(runs[0].commit_p99).c_str(), phases.c_str());
  }
  std::printf(
      "\noracle (%s run): %llu distinct impressions, %llu with one sample, %llu without (the "
      "join dropped %llu impression records as late); %llu written twice, %llu of no input "
      "impression, %llu corrections: %s\n",
      peak.name.c_str(), static_cast<unsigned long long>(account.impressions),
      static_cast<unsigned long long>(account.with_sample),
      static_cast<unsigned long long>(account.without_sample),
      static_cast<unsigned long long>(peak.late_impressions),
      static_cast<unsigned long long>(account.written_twice),
      static_cast<unsigned long long>(account.unknown),
      static_cast<unsigned long long>(peak.corrections), agrees ? "agrees" : "DIFFERS");
  if (!agrees) {
    spdlog::warn(
        "bench: the samples do not match the input one to one (an impression id repeated after "
        "its state expired makes a second sample; see the oracle line)");
  }

  JsonWriter j;
  j.BeginObject()
      .String("benchmark", "ctrjoin bench")
      .String("config", o.config_name)
      .Number("wall_s", wall_s)
      .Raw("machine", machine)
      .String("loadavg_before", load_before)
      .String("loadavg_after", bench::LoadAverage());
  j.BeginObject("settings")
      .Int("events", static_cast<int64_t>(trace.size()))
      .Int("window_ms", config.join.window_ms)
      .Int("out_of_orderness_ms", config.watermark.out_of_orderness_ms)
      .Int("allowed_lateness_ms", config.join.allowed_lateness_ms)
      .Int("shards", config.pipeline.shards)
      .Int("key_groups", config.pipeline.key_groups)
      .Int("lookups", static_cast<int64_t>(config.lookups.size()))
      .String("format", NameOf(config.sink.format))
      .Bool("exactly_once", checkpoints)
      .Int("interval_ms", checkpoints ? config.checkpoint.interval_ms : 0)
      .Int("state_budget_mib", static_cast<int64_t>(config.state.memory_budget_mb))
      .Int("partitions", o.partitions)
      .Number("seconds_per_load", o.seconds_per_load)
      .Int("repeat", o.repeat)
      .EndObject();
  j.BeginObject("input")
      .String("kind", NameOf(o.input))
      .String("describe", input->describe)
      .Int("records", static_cast<int64_t>(trace.size()))
      .Int("bytes", static_cast<int64_t>(input->bytes))
      .Int("distinct_impressions", static_cast<int64_t>(trace.impressions()))
      .Int("clicked_impressions", static_cast<int64_t>(trace.clicked()))
      .EndObject();
  j.String("features", *features);
  j.BeginObject("sink")
      .String("kind", NameOf(o.sink))
      .String("type", NameOf(config.sink.type))
      .String("format", NameOf(config.sink.format))
      .EndObject();
  j.BeginArray("runs");
  for (const MeasuredRun& r : runs) j.Raw("", r.json);
  j.EndArray();
  j.BeginArray("load_sweep");
  for (const MeasuredRun& r : runs) {
    if (r.fraction > 0) j.Raw("", r.json);
  }
  j.EndArray();
  if (eos_ratio) {
    j.BeginObject("exactly_once")
        .Int("interval_ms", config.checkpoint.interval_ms)
        .Number("throughput_ratio", *eos_ratio)
        .Number("cost_percent", (1 - *eos_ratio) * 100)
        .Number("visibility_p99_ms", runs[0].vis_p99)
        .EndObject();
  } else {
    j.Raw("exactly_once", "null");
  }
  j.BeginObject("oracle")
      .String("run", peak.name)
      .Int("distinct_impressions", static_cast<int64_t>(account.impressions))
      .Int("with_sample", static_cast<int64_t>(account.with_sample))
      .Int("without_sample", static_cast<int64_t>(account.without_sample))
      .Int("late_impressions", static_cast<int64_t>(peak.late_impressions))
      .Int("written_twice", static_cast<int64_t>(account.written_twice))
      .Int("unknown", static_cast<int64_t>(account.unknown))
      .Int("corrections", static_cast<int64_t>(peak.corrections))
      .Int("samples", static_cast<int64_t>(peak.samples))
      .Bool("agrees", agrees)
      .EndObject();
  if (baseline) Compare(runs, *baseline, o.baseline_path, j);
  j.EndObject();
  if (!o.json_path.empty()) {
    const fs::path out(o.json_path);
    if (out.has_parent_path()) fs::create_directories(out.parent_path());
    std::ofstream f(out);
    f << j.str() << "\n";
    if (!f.good()) return Status::IoError("--json: cannot write " + o.json_path);
    spdlog::info("bench: wrote {}", o.json_path);
    if (!o.plot_dir.empty()) CTRJOIN_RETURN_IF_ERROR(Plot(o.json_path, o.plot_dir));
  }
  return Status::Ok();
}

}  // namespace ctrjoin
