#include "src/app.h"

#include <atomic>
#include <chrono>

#include <spdlog/spdlog.h>

#include "joins/embedded_feature_store.h"
#include "joins/hbase_feature_store.h"
#include "joins/join_state.h"
#include "joins/label_join.h"
#include "sinks/file_sink.h"
#include "sinks/kafka_sink.h"
#include "src/file_source.h"
#include "src/kafka_source.h"
#include "src/pipeline.h"
#include "src/spill_store.h"
#include "src/workload.h"

namespace ctrjoin {

namespace {

std::atomic<int> g_stop_requests{0};
std::atomic<Pipeline*> g_pipeline{nullptr};
std::atomic<Enricher*> g_enricher{nullptr};

Result<std::unique_ptr<Source>> MakeSource(const Config& c) {
  if (c.source.type == "kafka") {
    auto s = KafkaSource::Open(c.source.kafka);
    if (!s.ok()) return s.status();
    return std::unique_ptr<Source>(std::move(s).value());
  }
  auto s = FileSource::Open(c.source.files, c.schema);
  if (!s.ok()) return s.status();
  return std::unique_ptr<Source>(std::move(s).value());
}

Result<std::unique_ptr<SampleSink>> MakeSink(const SinkConfig& c) {
  Result<SampleFormat> format = ParseSampleFormat(c.format, "sink.format");
  if (!format.ok()) return format.status();
  if (c.type == "kafka") {
    auto s = KafkaSampleSink::Open(c.kafka, *format);
    if (!s.ok()) return s.status().WithContext("sink.kafka");
    return std::unique_ptr<SampleSink>(std::move(s).value());
  }
  if (c.type == "file") {
    auto w = LineWriter::OpenFile(c.path, /*append=*/false);
    if (!w.ok()) return w.status().WithContext("sink.path");
    return std::unique_ptr<SampleSink>(
        std::make_unique<FileSampleSink>(std::move(w).value(), *format));
  }
  return std::unique_ptr<SampleSink>(
      std::make_unique<FileSampleSink>(LineWriter::Stdout(), SampleFormat::kJson));
}

Result<std::unique_ptr<DeadLetterSink>> MakeDeadLetterSink(const DeadLetterConfig& c) {
  if (c.type == "kafka") {
    auto s = KafkaDeadLetterSink::Open(c.kafka);
    if (!s.ok()) return s.status().WithContext("dead_letter.kafka");
    return std::unique_ptr<DeadLetterSink>(std::move(s).value());
  }
  if (c.type == "file") {
    auto w = LineWriter::OpenFile(c.path, /*append=*/true);
    if (!w.ok()) return w.status().WithContext("dead_letter.path");
    return std::unique_ptr<DeadLetterSink>(
        std::make_unique<JsonLinesDeadLetterSink>(std::move(w).value()));
  }
  return std::unique_ptr<DeadLetterSink>(
      std::make_unique<JsonLinesDeadLetterSink>(LineWriter::Stderr()));
}

}  // namespace

bool StopRequested() { return g_stop_requests.load() > 0; }

void RequestStop() {
  const int requests = g_stop_requests.fetch_add(1) + 1;
  if (Pipeline* p = g_pipeline.load()) p->Stop();
  if (Enricher* e = g_enricher.load(); e != nullptr && requests > 1) e->Cancel();
}

Result<Enrichment> MakeEnrichment(const Config& config, Metrics& metrics) {
  Enrichment e;
  if (config.lookups.empty()) return e;
  if (config.feature_store.type == "hbase") {
    auto store = HBaseFeatureStore::Open(config.feature_store.hbase);
    if (!store.ok()) return store.status().WithContext("feature_store.hbase");
    e.store = std::move(store).value();
  } else {
    auto store = EmbeddedFeatureStore::Open(config.feature_store.embedded);
    if (!store.ok()) return store.status();
    e.store = std::move(store).value();
  }
  e.service = std::make_unique<LookupService>(config.lookup, config.lookups, e.store.get(),
                                              &metrics.lookup);
  return e;
}

Status RunPipelineWith(const Config& config, Metrics& metrics, Source& source, Enricher* enricher,
                       SampleSink& sink, DeadLetterSink& dead_letters) {
  SpillStoreOptions store_options;
  store_options.dir = config.state.dir;
  store_options.rocksdb_memory_bytes = config.state.RocksDbBytes();
  auto store = SpillStore::Open(store_options);
  if (!store.ok()) return store.status();

  const uint32_t shards = config.pipeline.EffectiveShards();
  const size_t hot_bytes = config.state.HotBytesPerShard(shards);
  SpillStore* store_ptr = store->get();
  ShardFactory make_shard = [&](uint32_t shard) -> Result<std::unique_ptr<ShardProcessor>> {
    return std::unique_ptr<ShardProcessor>(std::make_unique<LabelJoin>(
        config.join, JoinState(shard, store_ptr, hot_bytes, &metrics.join), &metrics.join));
  };

  Pipeline pipeline(config.pipeline, config.schema, config.watermark, &source, enricher, &sink,
                    &dead_letters, &metrics);
  g_enricher.store(enricher);
  g_pipeline.store(&pipeline);
  if (StopRequested()) pipeline.Stop();
  spdlog::info("ctrjoin: {} -> {} ({} shards, window {} ms, state budget {} MiB)",
               source.Describe(), sink.Describe(), shards, config.join.window_ms,
               config.state.memory_budget_mb);
  const auto start = std::chrono::steady_clock::now();
  Status st = pipeline.Run(make_shard);
  g_pipeline.store(nullptr);
  g_enricher.store(nullptr);
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const JoinMetrics& j = metrics.join;
  spdlog::info(
      "ctrjoin: done in {:.2f} s: {} impressions, {} clicks in; {} samples out ({} positive, {} "
      "negative, {} corrections); dead letters {}, duplicate clicks {}, duplicate impressions {}, "
      "orphan clicks {}, late clicks {}, clicks outside window {}, late impressions {}",
      secs, metrics.impressions_in.Get(), metrics.clicks_in.Get(), metrics.samples_out.Get(),
      j.positives.Get(), j.negatives.Get(), j.corrections.Get(), metrics.dead_letters.Get(),
      j.duplicate_clicks.Get(), j.duplicate_impressions.Get(), j.orphan_clicks.Get(),
      j.late_clicks.Get(), j.clicks_outside_window.Get(), j.late_impressions.Get());
  if (enricher != nullptr) {
    const LookupMetrics& l = metrics.lookup;
    const uint64_t lookups = l.cache_hits.Get() + l.cache_misses.Get();
    spdlog::info(
        "ctrjoin: feature lookups {}: cache hits {} ({:.1f}%), store rows {}, store calls {}, "
        "coalesced {}, retries {}, errors {}, partial {}",
        lookups, l.cache_hits.Get(), lookups > 0 ? 100.0 * l.cache_hits.Get() / lookups : 0.0,
        l.requests.Get(), l.store_calls.Get(), l.coalesced.Get(), l.retries.Get(), l.errors.Get(),
        l.partial.Get());
  }
  return st;
}

Status RunPipeline(const Config& config, Metrics& metrics) {
  auto source = MakeSource(config);
  if (!source.ok()) return source.status();
  auto sink = MakeSink(config.sink);
  if (!sink.ok()) return sink.status();
  auto dead_letters = MakeDeadLetterSink(config.dead_letter);
  if (!dead_letters.ok()) return dead_letters.status();
  auto enrichment = MakeEnrichment(config, metrics);
  if (!enrichment.ok()) return enrichment.status();
  return RunPipelineWith(config, metrics, **source, enrichment->service.get(), **sink,
                         **dead_letters);
}

Status GenerateTrace(const GenerateOptions& options, const WorkloadOptions& workload) {
  auto impressions = LineWriter::OpenFile(options.impressions_path, false);
  if (!impressions.ok()) return impressions.status();
  auto clicks = LineWriter::OpenFile(options.clicks_path, false);
  if (!clicks.ok()) return clicks.status();
  WorkloadGenerator gen(workload);
  GeneratedRecord r;
  while (gen.impressions_generated() < options.impressions) {
    r = gen.Next();
    LineWriter& out = r.stream == StreamKind::kImpression ? **impressions : **clicks;
    CTRJOIN_RETURN_IF_ERROR(out.WriteLine(r.json));
  }
  while (gen.Drain(r)) {
    LineWriter& out = r.stream == StreamKind::kImpression ? **impressions : **clicks;
    CTRJOIN_RETURN_IF_ERROR(out.WriteLine(r.json));
  }
  CTRJOIN_RETURN_IF_ERROR((*impressions)->Flush());
  CTRJOIN_RETURN_IF_ERROR((*clicks)->Flush());
  if (options.features_path.empty()) return Status::Ok();
  auto features = LineWriter::OpenFile(options.features_path, false);
  if (!features.ok()) return features.status();
  Status written;
  GenerateFeatureRows(workload, [&](const std::string& json) {
    if (written.ok()) written = (*features)->WriteLine(json);
  });
  CTRJOIN_RETURN_IF_ERROR(written);
  return (*features)->Flush();
}

}  // namespace ctrjoin
