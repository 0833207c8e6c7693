// `ctrjoin demo`: the embedded default, with no outside services. Starts
// librdkafka's mock cluster in-process, produces a synthetic workload into it
// in real time (one producer thread), runs the pipeline on it (main thread)
// and prints live progress and a few samples (one reporter thread).

#include <fmt/format.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <thread>

#include "joins/embedded_feature_store.h"
#include "sinks/json_encoder.h"
#include "sinks/kafka_sink.h"
#include "src/app/app.h"
#include "src/core/clock.h"
#include "src/io/kafka_client.h"
#include "src/io/kafka_source.h"
#include "src/io/workload.h"

namespace ctrjoin {

namespace {

using Clock = std::chrono::steady_clock;

// Passes samples on to the real sink and keeps the first few of each label
// for display. Called from the sink node; Take() from the reporter thread.
class CapturingSink : public SampleSink {
 public:
  CapturingSink(SampleSink* inner, size_t per_label) : inner_(inner), per_label_(per_label) {}

  Status Write(std::span<const Sample> samples) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const Sample& s : samples) {
        if (!s.correction) CountSignal(s);
        size_t& n = s.label == 1 ? positives_ : negatives_;
        if (n < per_label_) {
          ++n;
          captured_.push_back(s);
        }
      }
    }
    return inner_->Write(samples);
  }
  Status Flush() override { return inner_->Flush(); }
  std::string Describe() const override { return inner_->Describe(); }

  std::vector<Sample> Take() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::exchange(captured_, {});
  }

  // The click rate by position and by the user's looked-up ctr_7d: the
  // workload's click model (src/io/workload.h) shows through them.
  std::string SignalSummary() {
    std::lock_guard<std::mutex> lock(mu_);
    const auto rate = [](const Bucket& b) {
      return b.samples == 0 ? std::string("-")
                            : fmt::format("{:.1f}%", 100.0 * b.clicks / b.samples);
    };
    std::string text = "click rate by position:";
    for (size_t p = 0; p < by_position_.size(); ++p) {
      text += fmt::format(" {}: {}", p, rate(by_position_[p]));
    }
    text += fmt::format(" | by user.ctr_7d: < 2%: {}, 2-5%: {}, >= 5%: {}", rate(by_ctr_[0]),
                        rate(by_ctr_[1]), rate(by_ctr_[2]));
    return text;
  }

 private:
  struct Bucket {
    uint64_t samples = 0;
    uint64_t clicks = 0;
  };
  void CountSignal(const Sample& s) {
    for (const Feature& f : s.impression.features) {
      const auto* position = std::get_if<int64_t>(&f.value);
      if (f.name == "position" && position != nullptr && *position >= 0 && *position < 10) {
        Bucket& b = by_position_[static_cast<size_t>(*position)];
        ++b.samples;
        b.clicks += s.label;
      }
    }
    for (const Feature& f : s.impression.lookup_features) {
      const auto* ctr = std::get_if<double>(&f.value);
      if (f.name == "user.ctr_7d" && ctr != nullptr) {
        Bucket& b = by_ctr_[*ctr < 0.02 ? 0 : *ctr < 0.05 ? 1 : 2];
        ++b.samples;
        b.clicks += s.label;
      }
    }
  }

  SampleSink* inner_;
  const size_t per_label_;
  std::array<Bucket, 10> by_position_{};
  std::array<Bucket, 3> by_ctr_{};
  std::mutex mu_;  // protects the counters and captured_
  size_t positives_ = 0;
  size_t negatives_ = 0;
  std::vector<Sample> captured_;
};

// Produces the workload in real time: each record is sent when the wall
// clock reaches its arrival time. Runs on its own thread until stopped.
void ProduceWorkload(rd_kafka_t* producer, WorkloadOptions w, const std::atomic<bool>& stop) {
  WorkloadGenerator gen(w);
  while (!stop.load()) {
    GeneratedRecord r = gen.Next();
    while (!stop.load() && WallClockMs() < r.arrival_ms) {
      rd_kafka_poll(producer, 0);
      std::this_thread::sleep_for(
          std::chrono::milliseconds(std::min<int64_t>(20, r.arrival_ms - WallClockMs())));
    }
    const char* topic = r.stream == StreamKind::kImpression ? "impressions" : "clicks";
    while (!stop.load()) {
      rd_kafka_resp_err_t err =
          rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic),
                            RD_KAFKA_V_VALUE(const_cast<char*>(r.json.data()), r.json.size()),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) break;
      rd_kafka_poll(producer, 50);
    }
  }
  rd_kafka_flush(producer, 2000);
}

void PrintProgress(const Metrics& m, double secs) {
  const JoinMetrics& j = m.join;
  const uint64_t pos = j.positives.Get(), neg = j.negatives.Get();
  const double ctr = pos + neg > 0 ? 100.0 * pos / (pos + neg) : 0;
  const int64_t wm = m.pipeline.watermark_ms.Get();
  const std::string lag = wm > 0 ? fmt::format("{:.1f} s", (WallClockMs() - wm) / 1000.0) : "-";
  const uint64_t hits = m.lookup.Sum(&LookupCounters::cache_hits),
                 misses = m.lookup.Sum(&LookupCounters::cache_misses);
  const double hit_ratio = hits + misses > 0 ? 100.0 * hits / (hits + misses) : 0;
  std::printf(
      "[%5.1fs] in: %llu impressions, %llu clicks | out: %llu samples (%llu +, %llu -) "
      "CTR %.2f%% | watermark lag %s | state %lld keys | feature cache hits %.0f%% | dead letters "
      "%llu | dup clicks %llu, orphans %llu, late %llu\n",
      secs, static_cast<unsigned long long>(m.pipeline.impressions_in.Get()),
      static_cast<unsigned long long>(m.pipeline.clicks_in.Get()),
      static_cast<unsigned long long>(m.pipeline.samples_out.Get()),
      static_cast<unsigned long long>(pos), static_cast<unsigned long long>(neg), ctr, lag.c_str(),
      static_cast<long long>(j.state_entries.Get()), hit_ratio,
      static_cast<unsigned long long>(m.pipeline.dead_letters.Get()),
      static_cast<unsigned long long>(j.duplicate_clicks.Get()),
      static_cast<unsigned long long>(j.orphan_clicks.Get()),
      static_cast<unsigned long long>(j.late_clicks.Get()));
  std::fflush(stdout);
}

void PrintSamples(CapturingSink& sink) {
  std::string line;
  for (const Sample& s : sink.Take()) {
    line.clear();
    AppendSampleJson(s, line);
    std::printf("  sample: %s\n", line.c_str());
  }
  std::fflush(stdout);
}

}  // namespace

std::string DemoConfigYaml(const DemoOptions& options, const std::string& brokers) {
  return fmt::format(R"(source:
  type: kafka
  kafka: {{brokers: "{0}", start: earliest, poll_timeout_ms: 50}}
watermark: {{out_of_orderness_ms: 1000, idle_timeout_ms: 3000}}
join: {{window_ms: {1}, allowed_lateness_ms: {1}}}
state: {{dir: "{2}/state", memory_budget_mb: 256}}
lookups:
  - {{name: user, table: user_features, family: f, key_field: user_id, max_versions: 3}}
  - {{name: item, table: item_features, family: f, key_field: item_id, max_versions: 3}}
feature_store: {{type: embedded, embedded: {{path: "{2}/features"}}}}
http: {{enabled: true, address: "{3}"}}
sink:
  type: kafka
  kafka: {{brokers: "{0}", topic: samples}}
dead_letter:
  type: kafka
  kafka: {{brokers: "{0}", topic: dead-letters}}
)",
                     brokers, options.window_ms, options.state_dir, options.http_address);
}

WorkloadOptions DemoWorkload(const DemoOptions& options) {
  WorkloadOptions w;
  w.seed = options.seed;
  w.start_ts_ms = WallClockMs();
  w.users = 20'000;
  w.items = 5'000;
  w.impressions_per_sec = options.impressions_per_sec;
  w.mean_click_delay_ms = options.window_ms / 4;
  w.max_disorder_ms = 500;
  w.late_rate = 0.002;
  w.late_by_ms = options.window_ms + 2'000;
  return w;
}

Status RunDemo(const DemoOptions& options) {
  Metrics metrics;
  // 1. An in-process Kafka cluster (librdkafka's mock) and its topics.
  auto conf = MakeKafkaConf({{"test.mock.num.brokers", "1"}, {"linger.ms", "5"}});
  if (!conf.ok()) return conf.status();
  auto producer = MakeKafkaHandle(RD_KAFKA_PRODUCER, std::move(conf).value());
  if (!producer.ok()) return producer.status();
  rd_kafka_mock_cluster_t* cluster = rd_kafka_handle_mock_cluster(producer->get());
  if (cluster == nullptr) return Status::Internal("librdkafka mock cluster did not start");
  const std::string brokers = rd_kafka_mock_cluster_bootstraps(cluster);
  for (const char* topic : {"impressions", "clicks", "samples"}) {
    CTRJOIN_RETURN_IF_ERROR(
        KafkaStatus(rd_kafka_mock_topic_create(cluster, topic, 4, 1), "creating topic"));
  }
  CTRJOIN_RETURN_IF_ERROR(
      KafkaStatus(rd_kafka_mock_topic_create(cluster, "dead-letters", 1, 1), "creating topic"));

  // 2. The pipeline's configuration: a short window so negatives show up fast.
  Result<Config> parsed = ParseConfig(DemoConfigYaml(options, brokers), {});
  if (!parsed.ok()) return parsed.status().WithContext("the demo's configuration");
  const Config& config = *parsed;

  auto source = KafkaSource::Open(config.source.kafka);
  if (!source.ok()) return source.status();
  auto sink = KafkaSampleSink::Open(config.sink.kafka);
  if (!sink.ok()) return sink.status();
  auto dead_letters = KafkaDeadLetterSink::Open(config.dead_letter.kafka);
  if (!dead_letters.ok()) return dead_letters.status();
  CapturingSink capture(sink->get(), options.show_samples);

  // 3. Historical features of the workload's users and items, in the
  //    embedded feature store, versioned before the demo starts.
  const WorkloadOptions w = DemoWorkload(options);
  std::filesystem::remove_all(config.feature_store.embedded.path);
  auto enrichment = MakeEnrichment(config, metrics);
  if (!enrichment.ok()) return enrichment.status();
  auto* features = static_cast<EmbeddedFeatureStore*>(enrichment->store.get());
  Status loaded;
  uint64_t rows = 0;
  GenerateFeatureRows(w, [&](const std::string& json) {
    if (loaded.ok()) loaded = features->PutJson(json);
    ++rows;
  });
  CTRJOIN_RETURN_IF_ERROR(loaded);
  std::printf("ctrjoin demo: loaded %llu feature row versions for %llu users and %llu items\n",
              static_cast<unsigned long long>(rows), static_cast<unsigned long long>(w.users),
              static_cast<unsigned long long>(w.items));

  // 4. The workload, produced in real time.
  std::atomic<bool> stop_workload{false};
  std::thread workload(ProduceWorkload, producer->get(), w, std::cref(stop_workload));

  std::printf(
      "ctrjoin demo: mock Kafka at %s, %.0f impressions/s, window %lld ms, out-of-orderness "
      "1000 ms%s\n",
      brokers.c_str(), options.impressions_per_sec, static_cast<long long>(options.window_ms),
      options.duration_s > 0 ? fmt::format(", {} s", options.duration_s).c_str()
                             : ", Ctrl-C to stop");

  // 5. Progress once a second; stop after the duration.
  std::atomic<bool> done{false};
  const auto start = Clock::now();
  std::thread reporter([&] {
    auto next = start + std::chrono::seconds(1);
    while (!done.load()) {
      std::this_thread::sleep_until(next);
      next += std::chrono::seconds(1);
      const double secs = std::chrono::duration<double>(Clock::now() - start).count();
      PrintProgress(metrics, secs);
      PrintSamples(capture);
      if (options.duration_s > 0 && secs >= options.duration_s) RequestStop();
      if (StopRequested()) stop_workload.store(true);
    }
  });

  Status st = RunPipelineWith(config, metrics, **source, enrichment->service.get(), capture,
                              **dead_letters);
  stop_workload.store(true);
  done.store(true);
  reporter.join();
  workload.join();
  std::printf("%s\n", capture.SignalSummary().c_str());
  return st;
}

}  // namespace ctrjoin
