// `ctrjoin bench` (src/app/bench.h) end to end, in-process: a short sweep on
// the demo's configuration, a file trace with exactly once, a range of Kafka
// topics on the test broker; its JSON's structure, its counts against an
// independent oracle, and what it must never touch (the job's output).

#include "src/app/bench.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <simdjson.h>

#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "src/app/app.h"
#include "src/bench/trace.h"
#include "src/io/kafka_client.h"
#include "tests/support/kafka_broker/broker.h"
#include "tests/support/kafka_test_util.h"
#include "tests/support/temp_dir.h"
#include "tests/support/trace_oracle.h"

namespace ctrjoin {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kWindowMs = 20'000;

// The bench's JSON, parsed; fails the test when it is not JSON.
class Report {
 public:
  explicit Report(const std::string& path) {
    EXPECT_EQ(parser_.load(path).get(root_), simdjson::SUCCESS) << path;
  }
  simdjson::dom::element root() const { return root_; }
  double Number(simdjson::dom::element e, const char* key) const {
    double d = -1;
    simdjson::dom::element v;
    EXPECT_EQ(e[key].get(v), simdjson::SUCCESS) << "no \"" << key << "\"";
    if (v.is_int64()) return static_cast<double>(v.get_int64().value());
    EXPECT_EQ(v.get_double().get(d), simdjson::SUCCESS) << key << " is not a number";
    return d;
  }
  simdjson::dom::array Array(const char* key) const {
    simdjson::dom::array a;
    EXPECT_EQ(root_[key].get(a), simdjson::SUCCESS) << "no array \"" << key << "\"";
    return a;
  }
  simdjson::dom::element Object(simdjson::dom::element e, const char* key) const {
    simdjson::dom::element v;
    EXPECT_EQ(e[key].get(v), simdjson::SUCCESS) << "no \"" << key << "\"";
    return v;
  }
  // The run with this name.
  simdjson::dom::element Run(std::string_view name) const {
    for (simdjson::dom::element r : Array("runs")) {
      std::string_view n;
      if (r["name"].get(n) == simdjson::SUCCESS && n == name) return r;
    }
    ADD_FAILURE() << "no run " << name;
    return root_;
  }

 private:
  simdjson::dom::parser parser_;
  simdjson::dom::element root_;
};

// Every figure a run must carry, with plausible values.
void ExpectRunFigures(const Report& r, simdjson::dom::element run, bool lookups) {
  EXPECT_GT(r.Number(run, "events"), 0);
  EXPECT_GT(r.Number(run, "samples"), 0);
  EXPECT_GT(r.Number(run, "events_per_s"), 0);
  EXPECT_GT(r.Number(run, "samples_per_s"), 0);
  EXPECT_GT(r.Number(run, "cpu_us_per_event"), 0);
  EXPECT_GT(r.Number(run, "events_per_core_s"), 0);
  for (const char* h : {"latency_ms", "positive_latency_ms", "end_to_end_ms"}) {
    simdjson::dom::element q = r.Object(run, h);
    EXPECT_GT(r.Number(q, "count"), 0) << h;
    EXPECT_GT(r.Number(q, "p99"), 0) << h;
    EXPECT_GE(r.Number(q, "p999"), r.Number(q, "p99")) << h;
  }
  r.Object(run, "negative_delay_ms");
  EXPECT_GT(r.Number(run, "peak_rss_mib"), 0);
  r.Number(run, "rss_growth_mib");  // present; 0 when the run added nothing
  EXPECT_GT(r.Number(run, "state_budget_mib"), 0);
  // Present (sampled every 20 ms: a run shorter than that may show none).
  r.Number(run, "peak_state_entries");
  if (lookups) {
    const double hit = r.Number(run, "cache_hit_ratio");
    EXPECT_GT(hit, 0);
    EXPECT_LE(hit, 1);
    EXPECT_GT(r.Number(run, "store_calls_per_impression"), 0);
  } else {
    simdjson::dom::element v;
    ASSERT_EQ(run["cache_hit_ratio"].get(v), simdjson::SUCCESS);
    EXPECT_TRUE(v.is_null());
  }
}

// Whether `group` has committed an offset for any partition of impressions
// and clicks (2 each).
bool HasCommittedOffsets(const std::string& brokers, const std::string& group) {
  auto conf = MakeKafkaConf({{"bootstrap.servers", brokers}, {"group.id", group}});
  EXPECT_TRUE(conf.ok());
  auto consumer = MakeKafkaHandle(RD_KAFKA_CONSUMER, std::move(conf).value());
  EXPECT_TRUE(consumer.ok());
  KafkaPartitionList list(rd_kafka_topic_partition_list_new(4));
  for (const char* topic : {"impressions", "clicks"}) {
    for (int32_t p = 0; p < 2; ++p) rd_kafka_topic_partition_list_add(list.get(), topic, p);
  }
  EXPECT_EQ(rd_kafka_committed(consumer->get(), list.get(), 10'000), RD_KAFKA_RESP_ERR_NO_ERROR);
  for (int i = 0; i < list->cnt; ++i) {
    if (list->elems[i].offset >= 0) return true;
  }
  return false;
}

class BenchTest : public ::testing::Test {
 protected:
  std::string Path(const std::string& name) const { return dir_.File(name); }

  // A generated trace in two files, and the oracle's labels for it.
  void Generate(uint64_t impressions) {
    WorkloadOptions w = test_support::OracleWorkload(17, kWindowMs);
    GenerateOptions gen{Path("imp.jsonl"), Path("clk.jsonl"), "", impressions};
    ASSERT_TRUE(GenerateTrace(gen, w).ok());
    oracle_ = test_support::ComputeOracle(Path("imp.jsonl"), Path("clk.jsonl"), kWindowMs);
    for (const auto& [id, label] : oracle_.labels) positives_ += label;
  }

  Config JobConfig() const {
    Config c;
    c.source.type = SourceType::kFiles;
    c.source.files = {Path("imp.jsonl"), Path("clk.jsonl")};
    c.join.window_ms = kWindowMs;
    c.watermark.out_of_orderness_ms = 5'000;
    c.state.dir = Path("job-state");
    c.checkpoint.dir = Path("job-state/checkpoints");
    c.sink.type = SinkType::kFile;
    c.sink.path = Path("job-out");
    c.dead_letter.path = Path("job-dead.jsonl");
    c.pipeline.shards = 2;
    return c;
  }

  BenchOptions Options(const std::string& json) const {
    BenchOptions o;
    o.config_name = "test";
    o.json_path = Path(json);
    o.loads = {0.5, 1.0};
    o.seconds_per_load = 0.5;
    o.progress = ReplayProgressMode::kLog;
    return o;
  }

  test_support::Oracle oracle_;
  int64_t positives_ = 0;
  test_support::TempDir dir_;
};

// A recorded range is loaded partition by partition as it was fetched; the
// trace interleaves the partitions by event time and keeps each one's own
// order (its disorder included), so that replaying it adds no disorder.
TEST(PartitionMergeTest, InterleavesPartitionsByEventTimeKeepingEachOnesOrder) {
  auto impression = [](int n, int64_t ts) {
    return fmt::format(R"({{"impression_id":"i{}","user_id":"u","item_id":"x","ts":{}}})", n, ts);
  };
  bench::PartitionMerge merge;
  // As fetched: all of partition 0, then all of partition 1 and a click.
  int n = 0;
  for (int64_t ts : {1000, 3000, 2500, 5000}) {
    merge.Add(StreamKind::kImpression, 0, impression(n++, ts));
  }
  for (int64_t ts : {1500, 2000, 6000}) merge.Add(StreamKind::kImpression, 1, impression(n++, ts));
  merge.Add(StreamKind::kClick, 0, R"({"impression_id":"i1","ts":3100})");
  merge.Add(StreamKind::kClick, 0, "not json");  // no event time: at once
  EXPECT_EQ(merge.size(), 9u);
  bench::TraceBuilder builder(2, 10'000, SchemaOptions{});
  merge.Into(builder);
  EXPECT_EQ(merge.size(), 0u);
  const bench::Trace trace = builder.Finish();
  std::vector<int64_t> order;
  for (size_t i = 0; i < trace.size(); ++i) order.push_back(trace.ts(i));
  const int64_t none = std::numeric_limits<int64_t>::min();
  // Partition 0 keeps 3000 before 2500; the others fall in by time.
  EXPECT_EQ(order, (std::vector<int64_t>{1000, 1500, 2000, 3000, 2500, 3100, none, 5000, 6000}));
}

TEST_F(BenchTest, TheDemoConfigurationSweepsLoadsAndEveryImpressionBecomesOneSample) {
  auto config = ParseConfig(DemoConfigYaml(DemoOptions{.exactly_once = false}, "127.0.0.1:1"), {});
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  BenchOptions o = Options("demo.json");
  o.demo = true;
  o.sink = BenchSink::kNull;
  o.events = 30'000;
  o.workload = DemoWorkload(DemoOptions{});
  o.workload.extra_features = 3;
  o.workload.payload_bytes = 300;
  Status st = RunBench(*config, o);
  ASSERT_TRUE(st.ok()) << st.ToString();

  Report r(o.json_path);
  std::string_view kind;
  ASSERT_EQ(r.root()["benchmark"].get(kind), simdjson::SUCCESS);
  EXPECT_EQ(kind, "ctrjoin bench");
  simdjson::dom::element machine = r.Object(r.root(), "machine");
  EXPECT_GT(r.Number(machine, "cores"), 0);
  EXPECT_GT(r.Number(machine, "memory_gib"), 0);
  for (const char* key : {"cpu", "kernel"}) {
    std::string_view v;
    EXPECT_EQ(machine[key].get(v), simdjson::SUCCESS) << key;
  }
  for (const char* key : {"loadavg_before", "loadavg_after", "features"}) {
    std::string_view v;
    EXPECT_EQ(r.root()[key].get(v), simdjson::SUCCESS) << key;
  }
  EXPECT_EQ(r.Number(r.Object(r.root(), "settings"), "lookups"), 2);
  simdjson::dom::element input = r.Object(r.root(), "input");
  EXPECT_GE(r.Number(input, "records"), 30'000);
  // The workload's shape reached the records: 300-byte impressions.
  EXPECT_GT(r.Number(input, "bytes"), 0.9 * 300 * r.Number(input, "distinct_impressions"));

  // peak, then one run per load level, each with every figure.
  EXPECT_EQ(r.Array("runs").size(), 3u);
  EXPECT_EQ(r.Array("load_sweep").size(), 2u);
  ExpectRunFigures(r, r.Run("peak"), /*lookups=*/true);
  // The peak run lasts long enough for the 20 ms sampler to see the state.
  EXPECT_GT(r.Number(r.Run("peak"), "peak_state_entries"), 0);
  const double peak = r.Number(r.Run("peak"), "events_per_s");
  for (auto [name, fraction] : {std::pair{"load-50%", 0.5}, std::pair{"load-100%", 1.0}}) {
    simdjson::dom::element run = r.Run(name);
    ExpectRunFigures(r, run, /*lookups=*/true);
    EXPECT_NEAR(r.Number(run, "offered_rate"), fraction * peak, 1);
  }
  simdjson::dom::element eos;
  ASSERT_EQ(r.root()["exactly_once"].get(eos), simdjson::SUCCESS);
  EXPECT_TRUE(eos.is_null());

  // The bench's oracle: one sample per distinct impression; those without
  // one no more than the impressions dropped as late.
  simdjson::dom::element oracle = r.Object(r.root(), "oracle");
  EXPECT_EQ(r.Number(oracle, "written_twice"), 0);
  EXPECT_EQ(r.Number(oracle, "unknown"), 0);
  EXPECT_LE(r.Number(oracle, "without_sample"), r.Number(oracle, "late_impressions"));
  EXPECT_EQ(r.Number(oracle, "with_sample") + r.Number(oracle, "without_sample"),
            r.Number(oracle, "distinct_impressions"));
  EXPECT_EQ(r.Number(r.Run("peak"), "samples"),
            r.Number(oracle, "with_sample") + r.Number(oracle, "corrections"));
  bool agrees = false;
  ASSERT_EQ(oracle["agrees"].get(agrees), simdjson::SUCCESS);
  EXPECT_TRUE(agrees);

  // A second run compared with the first: a ratio per run.
  BenchOptions again = o;
  again.json_path = Path("again.json");
  again.baseline_path = o.json_path;
  st = RunBench(*config, again);
  ASSERT_TRUE(st.ok()) << st.ToString();
  Report r2(again.json_path);
  simdjson::dom::array ratios;
  ASSERT_EQ(r2.Object(r2.root(), "baseline")["ratios"].get(ratios), simdjson::SUCCESS);
  EXPECT_EQ(ratios.size(), 3u);
  for (simdjson::dom::element x : ratios) EXPECT_GT(r2.Number(x, "events_per_s"), 0);
}

TEST_F(BenchTest, AFileTraceWithExactlyOnceMatchesTheOracleAndNeverTouchesTheJobsOutput) {
  Generate(10'000);
  Config c = JobConfig();
  c.checkpoint.enabled = true;
  c.checkpoint.interval_ms = 100;
  BenchOptions o = Options("files.json");
  o.input = BenchInput::kFiles;
  o.events = 0;  // the whole files
  o.repeat = 3;
  Status st = RunBench(c, o);
  ASSERT_TRUE(st.ok()) << st.ToString();

  Report r(o.json_path);
  // Exactly once measured against the same pipeline without checkpoints;
  // every row three times, the median kept.
  EXPECT_EQ(r.Array("runs").size(), 4u);  // peak, plain, two loads
  EXPECT_EQ(r.Number(r.Object(r.root(), "settings"), "repeat"), 3);
  for (simdjson::dom::element run : r.Array("runs")) {
    simdjson::dom::array repeats;
    ASSERT_EQ(run["repeats"].get(repeats), simdjson::SUCCESS);
    EXPECT_EQ(repeats.size(), 3u);
  }
  simdjson::dom::element peak = r.Run("peak");
  ExpectRunFigures(r, peak, /*lookups=*/false);
  ExpectRunFigures(r, r.Run("plain"), /*lookups=*/false);
  bool exactly_once = false;
  ASSERT_EQ(peak["exactly_once"].get(exactly_once), simdjson::SUCCESS);
  EXPECT_TRUE(exactly_once);
  // Every measured sample becomes visible with its epoch: counted in the
  // visibility, or, for the run's final epoch, apart from it.
  const double visible =
      r.Number(r.Object(peak, "visibility_ms"), "count") + r.Number(peak, "final_epoch_samples");
  EXPECT_GT(visible, 0);
  EXPECT_EQ(visible, r.Number(r.Object(peak, "latency_ms"), "count"));
  EXPECT_GT(r.Number(peak, "epochs_committed"), 0);
  // Where the commit latency goes: one observation per phase for each epoch
  // in the commit latency.
  simdjson::dom::element phases = r.Object(peak, "commit_phases_ms");
  for (const char* phase : {"align", "pre_commit", "queued", "durable", "metadata", "commit"}) {
    EXPECT_EQ(r.Number(r.Object(phases, phase), "count"),
              r.Number(r.Object(peak, "commit_lag_ms"), "count"))
        << phase;
  }
  // The changelog on disk over the run: [seconds, MiB, pending], in time
  // order, from the start to after the end.
  simdjson::dom::array disk;
  ASSERT_EQ(peak["changelog_on_disk"].get(disk), simdjson::SUCCESS);
  ASSERT_GE(disk.size(), 2u);
  double last_s = -1, most_mib = 0;
  for (simdjson::dom::element point : disk) {
    simdjson::dom::array p;
    ASSERT_EQ(point.get(p), simdjson::SUCCESS);
    ASSERT_EQ(p.size(), 3u);
    const double s = p.at(0).get_double().value();
    EXPECT_GE(s, last_s);
    last_s = s;
    most_mib = std::max(most_mib, p.at(1).get_double().value());
  }
  EXPECT_GT(most_mib, 0) << "the run wrote a changelog";
  simdjson::dom::element eos = r.Object(r.root(), "exactly_once");
  EXPECT_GT(r.Number(eos, "throughput_ratio"), 0);
  EXPECT_EQ(r.Number(eos, "interval_ms"), 100);

  // Counts against the independent oracle of the files.
  for (const char* run : {"peak", "plain"}) {
    EXPECT_EQ(r.Number(r.Run(run), "samples"), static_cast<double>(oracle_.labels.size())) << run;
    EXPECT_EQ(r.Number(r.Run(run), "positives"), static_cast<double>(positives_)) << run;
    EXPECT_EQ(r.Number(r.Run(run), "dead_letters"), static_cast<double>(oracle_.rejected)) << run;
  }
  EXPECT_EQ(r.Number(r.Object(r.root(), "input"), "distinct_impressions"),
            static_cast<double>(oracle_.labels.size()));
  simdjson::dom::element oracle = r.Object(r.root(), "oracle");
  EXPECT_EQ(r.Number(oracle, "with_sample"), static_cast<double>(oracle_.labels.size()));
  EXPECT_EQ(r.Number(oracle, "without_sample"), 0);

  // The job's state, checkpoints, output and dead letters are untouched.
  for (const char* name : {"job-state", "job-out", "job-dead.jsonl"}) {
    EXPECT_FALSE(fs::exists(Path(name))) << name;
  }
}

TEST_F(BenchTest, AKafkaRangeIsLoadedAndItsSamplesGoToTheBenchTopicOnly) {
  Generate(6'000);
  testbroker::BrokerOptions bo;
  bo.default_partitions = 2;
  auto broker = testbroker::TestBroker::Start(bo);
  ASSERT_TRUE(broker.ok()) << broker.status().ToString();
  auto producer =
      BulkProducer::Open({{"bootstrap.servers", (*broker)->bootstrap()}, {"linger.ms", "5"}});
  ASSERT_TRUE(producer.ok());
  for (auto [topic, file] :
       {std::pair{"impressions", Path("imp.jsonl")}, std::pair{"clicks", Path("clk.jsonl")}}) {
    ASSERT_TRUE(test_support::ProduceLines(**producer, topic, file, 2, /*event_time=*/true).ok());
  }

  Config c = JobConfig();
  c.source.type = SourceType::kKafka;
  c.source.kafka.brokers = (*broker)->bootstrap();
  c.source.kafka.group_id = "live";
  c.source.kafka.poll_timeout_ms = 20;
  c.sink.type = SinkType::kKafka;
  c.sink.kafka.brokers = (*broker)->bootstrap();
  c.sink.kafka.topic = "samples";
  BenchOptions o = Options("kafka.json");
  o.input = BenchInput::kKafka;
  o.events = 0;
  o.loads.clear();  // one run: the bench topic then holds each sample once

  // The job's own topic is refused, and a Kafka sink needs a topic of its own.
  Status st = RunBench(c, o);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.ToString().find("--sink-topic"), std::string::npos) << st.ToString();
  o.sink_topic = "samples";
  st = RunBench(c, o);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.ToString().find("'samples'"), std::string::npos) << st.ToString();

  o.sink_topic = "bench-samples";
  st = RunBench(c, o);
  ASSERT_TRUE(st.ok()) << st.ToString();
  Report r(o.json_path);
  EXPECT_EQ(r.Array("runs").size(), 1u);
  ExpectRunFigures(r, r.Run("peak"), /*lookups=*/false);
  EXPECT_EQ(r.Number(r.Run("peak"), "samples"), static_cast<double>(oracle_.labels.size()));

  // Every sample, right label, in the bench's topic; nothing in the job's.
  ASSERT_TRUE(
      test_support::ConsumeCommitted((*broker)->bootstrap(), "bench-samples", Path("out.jsonl"))
          .ok());
  EXPECT_EQ(
      test_support::ExpectMatchesOracle(oracle_, test_support::ReadSamples(Path("out.jsonl"))),
      static_cast<size_t>(positives_));
  // No consumer group committed anything: the job's, nor the bench's.
  EXPECT_FALSE(HasCommittedOffsets((*broker)->bootstrap(), "live"));
  EXPECT_FALSE(HasCommittedOffsets((*broker)->bootstrap(), "live-bench"));
  // (The broker creates a topic on first use: the job's was never used.)
  const Status job =
      test_support::ConsumeCommitted((*broker)->bootstrap(), "samples", Path("job.jsonl"));
  if (job.ok()) {
    EXPECT_TRUE(test_support::ReadLines(Path("job.jsonl")).empty());
  }
}

TEST_F(BenchTest, BadOptionsAreRefusedByNameBeforeAnythingRuns) {
  Generate(1'000);
  const Config c = JobConfig();
  auto refused = [&](BenchOptions o, const std::string& what) {
    const Status st = RunBench(c, o);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << what << ": " << st.ToString();
    EXPECT_NE(st.ToString().find(what), std::string::npos) << st.ToString();
  };
  BenchOptions o = Options("bad.json");
  o.loads = {1.5};
  refused(o, "--loads");
  o = Options("bad.json");
  o.seconds_per_load = 0;
  refused(o, "--seconds-per-load");
  o = Options("bad.json");
  o.repeat = 0;
  refused(o, "--repeat");
  o = Options("bad.json");
  o.input = BenchInput::kKafka;
  refused(o, "--input kafka");
  o = Options("bad.json");
  o.baseline_path = Path("imp.jsonl");
  refused(o, "--baseline");
  o = Options("bad.json");
  o.features = Path("missing.jsonl");
  Config with_lookups = c;
  with_lookups.lookups = {LookupSpec{"user", "user_features", "f", LookupKey::kUserId, 2, {}}};
  const Status st = RunBench(with_lookups, o);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.ToString().find("--features"), std::string::npos) << st.ToString();
  EXPECT_FALSE(fs::exists(Path("bad.json")));
}

}  // namespace
}  // namespace ctrjoin
