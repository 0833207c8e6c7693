// `ctrjoin demo`: the product with no outside services. Starts the
// project's Kafka-protocol broker in-process (it keeps transactions, so
// read_committed consumers see what a trainer would; librdkafka's mock
// cluster cannot), produces a synthetic workload into it in real time (one
// producer thread), runs the job exactly as `ctrjoin run` would — exactly
// once by default — (main thread), and every second prints progress beside
// what read_committed consumers can see of the output (one reporter thread).

#include <fmt/format.h>
#include <librdkafka/rdkafka.h>
#include <simdjson.h>
#include <spdlog/spdlog.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <unordered_set>

#include "src/app/app.h"
#include "src/core/clock.h"
#include "src/io/kafka_client.h"
#include "src/io/workload.h"
#include "tests/support/kafka_broker/broker.h"

namespace ctrjoin {

namespace {

using Clock = std::chrono::steady_clock;

// Reads the job's output topic as a trainer would (read_committed, from
// the beginning): counts what is visible, keeps the first few samples of
// each label for display, counts the click rate by position and by the
// looked-up user.ctr_7d, and checks that no sample id is seen twice. Owned
// and polled by the reporter thread (and by RunDemo after it stopped).
class CommittedOutput {
 public:
  static Result<std::unique_ptr<CommittedOutput>> Open(const std::string& brokers,
                                                       const std::string& topic, int partitions,
                                                       size_t per_label) {
    auto conf = MakeKafkaConf({{"bootstrap.servers", brokers},
                               {"group.id", "ctrjoin-demo-reader"},
                               {"isolation.level", "read_committed"},
                               {"enable.auto.commit", "false"}});
    if (!conf.ok()) return conf.status();
    auto handle = MakeKafkaHandle(RD_KAFKA_CONSUMER, std::move(conf).value());
    if (!handle.ok()) return handle.status();
    KafkaPartitionList list(rd_kafka_topic_partition_list_new(partitions));
    for (int p = 0; p < partitions; ++p) {
      rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p)->offset =
          RD_KAFKA_OFFSET_BEGINNING;
    }
    CTRJOIN_RETURN_IF_ERROR(
        KafkaStatus(rd_kafka_assign(handle->get(), list.get()), "assigning " + topic));
    return std::unique_ptr<CommittedOutput>(
        new CommittedOutput(std::move(handle).value(), per_label));
  }

  // Reads whatever is visible now (at most wait_ms for the first record).
  void Poll(int wait_ms) {
    while (rd_kafka_message_t* raw = rd_kafka_consumer_poll(handle_.get(), wait_ms)) {
      KafkaMessage msg(raw);
      wait_ms = 0;
      if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) continue;  // e.g. end of a partition
      Count(std::string_view(static_cast<const char*>(msg->payload), msg->len));
    }
  }

  uint64_t samples() const { return samples_; }
  uint64_t duplicates() const { return duplicates_; }
  std::vector<std::string> TakeShown() { return std::exchange(shown_, {}); }

  // The click rate by position and by the user's looked-up ctr_7d: the
  // workload's click model (src/io/workload.h) shows through them.
  std::string SignalSummary() const {
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

  CommittedOutput(KafkaHandle handle, size_t per_label)
      : handle_(std::move(handle)), per_label_(per_label) {}

  void Count(std::string_view json) {
    simdjson::dom::element sample;
    if (parser_.parse(json.data(), json.size()).get(sample) != simdjson::SUCCESS) return;
    ++samples_;
    std::string_view id;
    if (sample["sample_id"].get(id) == simdjson::SUCCESS && !ids_.emplace(id).second) {
      ++duplicates_;
    }
    bool correction = false;
    if (sample["correction"].get(correction) != simdjson::SUCCESS) correction = false;
    int64_t label = 0;
    if (sample["label"].get(label) != simdjson::SUCCESS) return;  // not a sample of ours
    size_t& shown = label == 1 ? positives_shown_ : negatives_shown_;
    if (shown < per_label_) {
      ++shown;
      shown_.emplace_back(json);
    }
    if (correction) return;
    const uint64_t click = label == 1 ? 1 : 0;
    simdjson::dom::object features;
    if (sample["features"].get(features) != simdjson::SUCCESS) return;
    int64_t position = -1;
    if (features["position"].get(position) == simdjson::SUCCESS && position >= 0 &&
        position < static_cast<int64_t>(by_position_.size())) {
      by_position_[static_cast<size_t>(position)].samples += 1;
      by_position_[static_cast<size_t>(position)].clicks += click;
    }
    double ctr = 0;
    if (features["user.ctr_7d"].get(ctr) == simdjson::SUCCESS) {
      Bucket& b = by_ctr_[ctr < 0.02 ? 0 : ctr < 0.05 ? 1 : 2];
      b.samples += 1;
      b.clicks += click;
    }
  }

  KafkaHandle handle_;
  const size_t per_label_;
  simdjson::dom::parser parser_;
  uint64_t samples_ = 0;
  uint64_t duplicates_ = 0;
  std::unordered_set<std::string> ids_;
  size_t positives_shown_ = 0;
  size_t negatives_shown_ = 0;
  std::vector<std::string> shown_;
  std::array<Bucket, 10> by_position_{};
  std::array<Bucket, 3> by_ctr_{};
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
      rd_kafka_resp_err_t err = rd_kafka_producev(
          producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(r.key.data(), r.key.size()),
          RD_KAFKA_V_VALUE(const_cast<char*>(r.json.data()), r.json.size()),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) break;
      rd_kafka_poll(producer, 50);
    }
  }
  rd_kafka_flush(producer, 2000);
}

// One line a second: what the job read and wrote, and what read_committed
// consumers can see of it (with exactly once: the last committed epoch and
// the p99 from reading a record to its samples becoming visible).
void PrintProgress(const Metrics& m, double secs, const CommittedOutput& output, bool eos) {
  const JoinMetrics& j = m.join;
  const uint64_t pos = j.positives.Get(), neg = j.negatives.Get();
  const double ctr = pos + neg > 0 ? 100.0 * pos / (pos + neg) : 0;
  const int64_t wm = m.pipeline.watermark_ms.Get();
  const std::string lag = wm > 0 ? fmt::format("{:.1f} s", (WallClockMs() - wm) / 1000.0) : "-";
  const uint64_t hits = m.lookup.Sum(&LookupCounters::cache_hits),
                 misses = m.lookup.Sum(&LookupCounters::cache_misses);
  const double hit_ratio = hits + misses > 0 ? 100.0 * hits / (hits + misses) : 0;
  std::string visible = fmt::format("visible: {} samples", output.samples());
  if (eos) {
    const CheckpointMetrics& c = m.checkpoint;
    visible += fmt::format(
        " (committed epoch {}, read->visible p99 {})", c.last_committed_epoch.Get(),
        c.committed.Get() > 0 ? fmt::format("{:.0f} ms", c.read_to_commit.QuantileMs(0.99))
                              : std::string("-"));
  }
  fmt::print(
      "[{:5.1f}s] in: {} impressions, {} clicks | out: {} samples ({} +, {} -) CTR {:.2f}% | {} | "
      "watermark lag {} | state {} keys | feature cache hits {:.0f}% | dead letters {} | dup "
      "clicks {}, orphans {}, late {}\n",
      secs, m.pipeline.impressions_in.Get(), m.pipeline.clicks_in.Get(),
      m.pipeline.samples_out.Get(), pos, neg, ctr, visible, lag, j.state_entries.Get(), hit_ratio,
      m.pipeline.dead_letters.Get(), j.duplicate_clicks.Get(), j.orphan_clicks.Get(),
      j.late_clicks.Get());
  std::fflush(stdout);
}

void PrintSamples(CommittedOutput& output) {
  for (const std::string& line : output.TakeShown()) fmt::print("  sample: {}\n", line);
  std::fflush(stdout);
}

}  // namespace

std::string DemoConfigYaml(const DemoOptions& options, const std::string& brokers) {
  return fmt::format(R"(source:
  type: kafka
  kafka: {{brokers: "{0}", start: earliest, poll_timeout_ms: 50, group_id: ctrjoin-demo,
          mode: assign}}
watermark: {{out_of_orderness_ms: 1000, idle_timeout_ms: 3000}}
join: {{window_ms: {1}, allowed_lateness_ms: {1}}}
state: {{dir: "{2}/state", memory_budget_mb: 256}}
checkpoint: {{enabled: {4}, interval_ms: 1000}}
lookups:
  - {{name: user, table: user_features, family: f, key_field: user_id, max_versions: 3}}
  - {{name: item, table: item_features, family: f, key_field: item_id, max_versions: 3}}
feature_store: {{type: embedded, embedded: {{path: "{2}/features"}}}}
http: {{enabled: true, address: "{3}"}}
sink:
  type: kafka
  kafka: {{brokers: "{0}", topic: samples, transactional_id_prefix: ctrjoin-demo}}
dead_letter:
  type: kafka
  kafka: {{brokers: "{0}", topic: dead-letters}}
)",
                     brokers, options.window_ms, options.state_dir, options.http_address,
                     options.exactly_once);
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
  // 1. The project's Kafka-protocol broker, in memory, on a free port of
  //    127.0.0.1; its lines go through our logger. The job's state from an
  //    earlier demo belongs to an earlier broker: it goes.
  namespace fs = std::filesystem;
  std::error_code ignored;
  fs::remove_all(fs::path(options.state_dir) / "state", ignored);
  fs::remove_all(fs::path(options.state_dir) / "features", ignored);
  fs::create_directories(options.state_dir, ignored);
  testbroker::BrokerOptions broker_options;
  broker_options.log_sink = [](int level, const std::string& message) {
    spdlog::log(level == 0 ? spdlog::level::warn : spdlog::level::debug, "demo broker: {}",
                message);
  };
  auto broker = testbroker::TestBroker::Start(broker_options);
  if (!broker.ok()) return broker.status().WithContext("starting the demo's Kafka broker");
  const std::string brokers = (*broker)->bootstrap();
  // Keyed by impression id under Kafka's default partitioner: co-partitioned.
  auto conf = MakeKafkaConf(
      {{"bootstrap.servers", brokers}, {"linger.ms", "5"}, {"partitioner", "murmur2_random"}});
  if (!conf.ok()) return conf.status();
  auto producer = MakeKafkaHandle(RD_KAFKA_PRODUCER, std::move(conf).value());
  if (!producer.ok()) return producer.status();
  constexpr int kPartitions = 4;
  CTRJOIN_RETURN_IF_ERROR(CreateKafkaTopics(producer->get(),
                                            {{"impressions", kPartitions},
                                             {"clicks", kPartitions},
                                             {"samples", kPartitions},
                                             {"dead-letters", 1}},
                                            10'000));

  // 2. The job's configuration, as a config file would say it (see
  //    DemoConfigYaml), with the features the workload's users and items
  //    had before the demo started, loaded at start-up.
  Result<Config> parsed = ParseConfig(DemoConfigYaml(options, brokers), {});
  if (!parsed.ok()) return parsed.status().WithContext("the demo's configuration");
  Config config = std::move(parsed).value();
  const WorkloadOptions w = DemoWorkload(options);
  config.feature_store.embedded.load = (fs::path(options.state_dir) / "features.jsonl").string();
  {
    std::ofstream features(config.feature_store.embedded.load, std::ios::trunc);
    GenerateFeatureRows(w, [&](const std::string& json) { features << json << '\n'; });
    if (!features.flush()) {
      return Status::IoError("writing " + config.feature_store.embedded.load);
    }
  }
  auto output = CommittedOutput::Open(brokers, "samples", kPartitions,
                                      static_cast<size_t>(options.show_samples));
  if (!output.ok()) return output.status();

  // 3. The workload, produced in real time.
  std::atomic<bool> stop_workload{false};
  std::thread workload(ProduceWorkload, producer->get(), w, std::cref(stop_workload));
  fmt::print(
      "ctrjoin demo: Kafka (ctrjoin's in-process test broker) at {}, {:.0f} impressions/s, window "
      "{} ms, out-of-orderness 1000 ms, {}{}\n",
      brokers, options.impressions_per_sec, options.window_ms,
      options.exactly_once ? "exactly once (a transaction per 1 s epoch; samples below are what "
                             "read_committed consumers see)"
                           : "at least once",
      options.duration_s > 0 ? fmt::format(", {} s", options.duration_s) : ", Ctrl-C to stop");
  std::fflush(stdout);

  // 4. Progress once a second; stop after the duration.
  std::atomic<bool> done{false};
  const auto start = Clock::now();
  std::thread reporter([&] {
    auto next = start + std::chrono::seconds(1);
    while (!done.load()) {
      std::this_thread::sleep_until(next);
      next += std::chrono::seconds(1);
      (*output)->Poll(0);
      const double secs = std::chrono::duration<double>(Clock::now() - start).count();
      PrintProgress(metrics, secs, **output, options.exactly_once);
      PrintSamples(**output);
      if (options.duration_s > 0 && secs >= options.duration_s) RequestStop();
      if (StopRequested()) stop_workload.store(true);
    }
  });

  // 5. The job, as `ctrjoin run` runs it.
  Status st = RunPipeline(config, metrics);
  stop_workload.store(true);
  done.store(true);
  reporter.join();
  workload.join();
  // What the last commit made visible (bounded: a failed run may never).
  const uint64_t written = metrics.pipeline.samples_out.Get();
  for (const auto until = Clock::now() + std::chrono::seconds(5);
       (*output)->samples() < written && Clock::now() < until;) {
    (*output)->Poll(100);
  }
  fmt::print(
      "{} of {} samples written are visible to read_committed consumers, {} duplicate "
      "sample ids{}\n",
      (*output)->samples(), written, (*output)->duplicates(),
      options.exactly_once
          ? fmt::format(", {} epochs committed", metrics.checkpoint.committed.Get())
          : std::string());
  fmt::print("{}\n", (*output)->SignalSummary());
  std::fflush(stdout);
  return st;
}

}  // namespace ctrjoin
