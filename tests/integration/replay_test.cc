// `ctrjoin replay` through the in-process test broker: a live run labels a
// generated trace (with user/item features from the embedded store); then the
// store gets new versions of every feature (as it would months later), and
// replays of sub-ranges, by offsets and by times, must produce exactly the
// samples the live run produced for the impressions in those ranges: same
// ids, labels, impression timestamps and features, byte for byte (all but a
// positive's click_ts, see ByImpression).
//
// The trace keeps every event within the watermark's out-of-orderness and
// has no duplicate impression ids: then a label depends only on event times,
// not on the order partitions are read in (README, "Replay").
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <simdjson.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "joins/embedded_feature_store.h"
#include "src/app/app.h"
#include "src/io/kafka_client.h"
#include "tests/support/kafka_broker/broker.h"
#include "tests/support/kafka_test_util.h"
#include "tests/support/temp_dir.h"
#include "tests/support/trace_oracle.h"

namespace ctrjoin {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kWindowMs = 20'000;
constexpr int kPartitions = 2;
constexpr uint64_t kImpressions = 20'000;

// One impression line of the trace: where ProduceLines put it.
struct Placed {
  std::string impression_id;
  int32_t partition = 0;
  int64_t offset = 0;
  int64_t ts = 0;
};

class ReplayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    workload_ = test_support::OracleWorkload(31, kWindowMs);
    workload_.users = 300;
    workload_.items = 60;
    workload_.duplicate_impression_rate = 0;
    workload_.malformed_rate = 0;
    GenerateOptions gen{Path("imp.jsonl"), Path("clk.jsonl"), Path("features.jsonl"), kImpressions};
    ASSERT_TRUE(GenerateTrace(gen, workload_).ok());

    testbroker::BrokerOptions options;
    options.default_partitions = kPartitions;
    auto broker = testbroker::TestBroker::Start(options);
    ASSERT_TRUE(broker.ok()) << broker.status().ToString();
    broker_ = std::move(broker).value();
    auto producer =
        BulkProducer::Open({{"bootstrap.servers", broker_->bootstrap()}, {"linger.ms", "5"}});
    ASSERT_TRUE(producer.ok());
    for (auto [topic, file] :
         {std::pair{"impressions", Path("imp.jsonl")}, std::pair{"clicks", Path("clk.jsonl")}}) {
      ASSERT_TRUE(
          test_support::ProduceLines(**producer, topic, file, kPartitions, /*event_time=*/true)
              .ok());
    }
    // Line i went to partition i % kPartitions at offset i / kPartitions.
    simdjson::dom::parser parser;
    const std::vector<std::string> lines = test_support::ReadLines(Path("imp.jsonl"));
    for (size_t i = 0; i < lines.size(); ++i) {
      simdjson::dom::element doc;
      ASSERT_FALSE(parser.parse(lines[i]).get(doc));
      std::string_view id;
      int64_t ts = 0;
      ASSERT_FALSE(doc["impression_id"].get(id));
      ASSERT_FALSE(doc["ts"].get(ts));
      placed_.push_back({std::string(id), static_cast<int32_t>(i % kPartitions),
                         static_cast<int64_t>(i / kPartitions), ts});
    }
  }

  std::string Path(const std::string& name) const { return dir_.File(name); }

  Config LiveConfig() const {
    Config c;
    c.source.type = SourceType::kKafka;
    c.source.kafka.brokers = broker_->bootstrap();
    c.source.kafka.group_id = "live";
    c.source.kafka.stop_at_end = true;
    c.source.kafka.poll_timeout_ms = 20;
    c.watermark.out_of_orderness_ms = 5'000;
    c.watermark.idle_timeout_ms = 0;  // partitions are read at different speeds
    c.join.window_ms = kWindowMs;
    c.lookups = {LookupSpec{"user", "user_features", "f", LookupKey::kUserId, 2, {}},
                 LookupSpec{"item", "item_features", "f", LookupKey::kItemId, 2, {}}};
    c.feature_store.embedded.path = Path("features-db");
    c.feature_store.embedded.load = Path("features.jsonl");
    c.state.dir = Path("state");
    c.checkpoint.dir = c.state.dir + "/checkpoints";
    c.checkpoint.interval_ms = 200;
    c.sink.type = SinkType::kFile;
    c.sink.path = Path("live.jsonl");
    c.dead_letter.path = Path("dead.jsonl");
    c.pipeline.shards = 2;
    return c;
  }

  // c's sink made a transactional Kafka sink on the test broker.
  void UseKafkaSink(Config& c, const std::string& topic, const std::string& prefix) const {
    c.sink.type = SinkType::kKafka;
    c.sink.kafka.brokers = broker_->bootstrap();
    c.sink.kafka.topic = topic;
    c.sink.transactional_id_prefix = prefix;
    c.sink.transaction_timeout_ms = 15'000;
  }

  // Every feature of every user and item gets a new version, dated now
  // (long after every impression): a replay must not see it.
  void ChangeFeatures() {
    EmbeddedFeatureStoreOptions o;
    o.path = Path("features-db");
    auto store = EmbeddedFeatureStore::Open(o);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    const int64_t now = 1'790'000'000'000;  // 2026-09
    ASSERT_GT(now, placed_.back().ts + 10 * kWindowMs);
    uint64_t changed = 0;
    for (const std::string& line : test_support::ReadLines(Path("features.jsonl"))) {
      simdjson::dom::parser parser;
      simdjson::dom::element doc;
      ASSERT_FALSE(parser.parse(line).get(doc));
      std::string_view table, row;
      ASSERT_FALSE(doc["table"].get(table));
      ASSERT_FALSE(doc["row"].get(row));
      simdjson::dom::object columns;
      ASSERT_FALSE(doc["columns"].get(columns));
      for (auto [column, value] : columns) {
        ASSERT_TRUE(
            (*store)
                ->Put(std::string(table), std::string(row), "f", std::string(column), now, "-7")
                .ok());
        ++changed;
      }
    }
    ASSERT_GT(changed, 0u);
  }

  // Sample JSON by impression id, without a positive's click_ts: that is the
  // first click to arrive, and with two clicks in the window arriving out of
  // order it depends on the order partitions were read in (README, Replay).
  static std::map<std::string, std::string> ByImpression(const std::vector<std::string>& lines) {
    std::map<std::string, std::string> out;
    simdjson::dom::parser parser;
    for (const std::string& line : lines) {
      simdjson::dom::element doc;
      EXPECT_FALSE(parser.parse(line).get(doc)) << line;
      std::string_view id;
      EXPECT_FALSE(doc["impression_id"].get(id)) << line;
      std::string without = line;
      if (size_t at = without.find("\"click_ts\":"); at != std::string::npos) {
        without.erase(at, without.find(',', at) + 1 - at);
      }
      EXPECT_TRUE(out.emplace(std::string(id), without).second) << "duplicate sample: " << line;
    }
    return out;
  }

  static std::vector<std::string> EpochFiles(const std::string& dir) {
    std::vector<std::string> lines;
    for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
      if (!e.path().filename().string().starts_with("part-")) continue;
      for (std::string& l : test_support::ReadLines(e.path().string()))
        lines.push_back(std::move(l));
    }
    return lines;
  }

  // The live samples of the impressions in [start, end) per partition.
  std::map<std::string, std::string> LiveIn(const std::map<int32_t, int64_t>& start,
                                            const std::map<int32_t, int64_t>& end) const {
    std::set<std::string> ids;
    for (const Placed& p : placed_) {
      if (p.offset >= start.at(p.partition) && p.offset < end.at(p.partition)) {
        ids.insert(p.impression_id);
      }
    }
    std::map<std::string, std::string> out;
    for (const auto& [id, line] : live_) {
      if (ids.contains(id)) out[id] = line;
    }
    EXPECT_EQ(out.size(), ids.size()) << "the live run labelled every impression in the range";
    return out;
  }

  // The first offset per partition whose record time is >= ms (what
  // offsets-for-times answers).
  std::map<int32_t, int64_t> OffsetsForTime(int64_t ms) const {
    std::map<int32_t, int64_t> out;
    for (int32_t p = 0; p < kPartitions; ++p) out[p] = -1;
    std::map<int32_t, int64_t> next;
    for (const Placed& p : placed_) {
      next[p.partition] = p.offset + 1;
      if (out[p.partition] < 0 && p.ts >= ms) out[p.partition] = p.offset;
    }
    for (auto& [p, o] : out) {
      if (o < 0) o = next[p];
    }
    return out;
  }

  void RunLive() {
    Metrics metrics;
    Status st = RunPipeline(LiveConfig(), metrics);
    ASSERT_TRUE(st.ok()) << st.ToString();
    live_ = ByImpression(test_support::ReadLines(Path("live.jsonl")));
    ASSERT_EQ(live_.size(), placed_.size());
    ChangeFeatures();
  }

  test_support::TempDir dir_;
  WorkloadOptions workload_;
  std::unique_ptr<testbroker::TestBroker> broker_;
  std::vector<Placed> placed_;
  std::map<std::string, std::string> live_;
};

void ExpectSameSamples(const std::map<std::string, std::string>& expected,
                       const std::map<std::string, std::string>& replayed) {
  size_t positives = 0, with_features = 0, mismatches = 0;
  for (const auto& [id, line] : expected) {
    auto it = replayed.find(id);
    if (it == replayed.end()) {
      ADD_FAILURE() << "replay has no sample for " << id << ": " << line;
      if (++mismatches > 5) return;
      continue;
    }
    if (it->second != line) {
      ADD_FAILURE() << "replay differs for " << id << "\n live:   " << line
                    << "\n replay: " << it->second;
      if (++mismatches > 5) return;
    }
    positives += line.find("\"label\":1") != std::string::npos ? 1 : 0;
    with_features += line.find("\"user.") != std::string::npos ? 1 : 0;
  }
  for (const auto& [id, line] : replayed) {
    if (!expected.contains(id)) {
      ADD_FAILURE() << "replay has a sample outside its range: " << line;
      if (++mismatches > 5) return;
    }
  }
  EXPECT_GT(positives, 20u);
  EXPECT_EQ(with_features, expected.size()) << "every sample carries looked-up features";
  std::printf("replay: %zu samples (%zu positive) equal to the live run's\n", expected.size(),
              positives);
}

TEST_F(ReplayTest, ByOffsetsReproducesTheLiveSamples) {
  RunLive();
  ReplayOptions replay;
  replay.name = "by-offsets";
  replay.output = Path("replay-offsets");
  replay.range.start_offsets = {{0, 700}, {1, 900}};
  replay.range.end_offsets = {{0, 2300}, {1, 2000}};
  replay.progress = ReplayProgressMode::kLog;
  // Beside the live job, which holds the embedded feature store (RocksDB's
  // lock): the replay opens it read-only.
  auto held = EmbeddedFeatureStore::Open(LiveConfig().feature_store.embedded);
  ASSERT_TRUE(held.ok()) << held.status().ToString();
  Metrics metrics;
  Status st = RunReplay(LiveConfig(), replay, metrics);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ExpectSameSamples(LiveIn(replay.range.start_offsets, replay.range.end_offsets),
                    ByImpression(EpochFiles(Path("replay-offsets"))));
  EXPECT_EQ(metrics.pipeline.impressions_in.Get(), 1600u + 1100u);
  EXPECT_GT(metrics.checkpoint.committed.Get(), 0u);
  // A finished replay says so, with counts from its parts, and publishes its schema.
  simdjson::dom::parser parser;
  simdjson::dom::element marker;
  ASSERT_EQ(parser.load(Path("replay-offsets") + "/_SUCCESS").get(marker), simdjson::SUCCESS);
  EXPECT_EQ(marker["samples"].get_uint64().value(), EpochFiles(Path("replay-offsets")).size());
  EXPECT_TRUE(fs::exists(Path("replay-offsets") + "/_schema.json"));
  EXPECT_TRUE(fs::exists(Path("replay-offsets") + "/_tf_feature_spec.py"));

  // Run again under the same name: it resumes from its last checkpoint,
  // finds the range done and adds nothing.
  Metrics again;
  st = RunReplay(LiveConfig(), replay, again);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(again.checkpoint.restores.Get(), 1u);
  ExpectSameSamples(LiveIn(replay.range.start_offsets, replay.range.end_offsets),
                    ByImpression(EpochFiles(Path("replay-offsets"))));
}

TEST_F(ReplayTest, ByTimesIntoATopicReproducesTheLiveSamples) {
  RunLive();
  // The live run's config as it would be with a Kafka sink: the replay
  // writes its own topic with its own transactional ids.
  Config live = LiveConfig();
  UseKafkaSink(live, "samples", "live");
  ReplayOptions replay;
  replay.name = "by-time";
  replay.output = "samples-replayed";
  const int64_t from = workload_.start_ts_ms + 3'000, to = workload_.start_ts_ms + 8'000;
  replay.range.start_ms = from;
  replay.range.end_ms = to;
  replay.progress = ReplayProgressMode::kLog;
  Metrics metrics;
  Status st = RunReplay(live, replay, metrics);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_TRUE(test_support::ConsumeCommitted(broker_->bootstrap(), "samples-replayed",
                                             Path("by-time.jsonl"))
                  .ok());
  ExpectSameSamples(LiveIn(OffsetsForTime(from), OffsetsForTime(to)),
                    ByImpression(test_support::ReadLines(Path("by-time.jsonl"))));
}

TEST_F(ReplayTest, RefusesTheLiveOutputAndBadRanges) {
  Config live = LiveConfig();
  ReplayOptions replay;
  replay.output = live.sink.path;
  Result<Config> c = ReplayConfig(live, replay);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("--output"), std::string::npos) << c.status().message();
  // The same directory spelled otherwise, one inside it, one holding it.
  const std::string dir = live.sink.path;
  const std::string parent = std::filesystem::path(dir).parent_path().string();
  const std::string name = std::filesystem::path(dir).filename().string();
  // Relative, through a directory that does not exist.
  const std::string relative =
      "nonexistent/../" + std::filesystem::relative(dir, std::filesystem::current_path()).string();
  for (const std::string& output :
       {dir + "/", dir + "/.", parent + "/./" + name, dir + "/replay", parent, relative}) {
    replay.output = output;
    c = ReplayConfig(live, replay);
    EXPECT_FALSE(c.ok()) << output << " was accepted";
    if (!c.ok()) {
      EXPECT_NE(c.status().message().find("the live run's sink.path"), std::string::npos)
          << c.status().message();
    }
  }
  replay.output = dir + "-replay";  // a sibling whose name starts alike
  EXPECT_TRUE(ReplayConfig(live, replay).ok());
  // A replay into a topic: never one the live job reads or writes.
  Config kafka_live = live;
  UseKafkaSink(kafka_live, "samples", "live");
  for (const std::string& topic :
       {kafka_live.sink.kafka.topic, kafka_live.source.kafka.impressions_topic,
        kafka_live.source.kafka.clicks_topic}) {
    replay.output = topic;
    c = ReplayConfig(kafka_live, replay);
    EXPECT_FALSE(c.ok()) << topic << " was accepted";
    if (!c.ok()) {
      EXPECT_NE(c.status().message().find("is the live run's"), std::string::npos)
          << c.status().message();
    }
  }

  replay.output = Path("out");
  replay.range.start_offsets = {{0, 10}};
  replay.range.end_offsets = {{0, 5}};
  Metrics metrics;
  Status st = RunReplay(live, replay, metrics);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("--end-offsets: partition 0 ends at 5"), std::string::npos)
      << st.message();

  replay.range.end_offsets = {{7, 5}};
  st = RunReplay(live, replay, metrics);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("has no partition 7"), std::string::npos) << st.message();

  replay.range.end_offsets = {{0, 999'999}};
  st = RunReplay(live, replay, metrics);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("outside its retained offsets"), std::string::npos) << st.message();
}

// The consumer group's committed offsets are gone (here: a changed
// group_id) while the job's checkpoints are there: starting afresh would
// duplicate or lose samples, so it is refused until the operator says what
// to do (txn/README.md, "Lost offsets").
TEST_F(ReplayTest, LostGroupOffsetsAreRefusedUntilTheOperatorSaysWhatToDo) {
  Config c = LiveConfig();
  c.checkpoint.enabled = true;
  UseKafkaSink(c, "samples-lost-offsets", "lost-offsets");
  Metrics first;
  Status st = RunPipeline(c, first);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_GT(first.checkpoint.committed.Get(), 0u);
  // The pool it used is recorded, so that a later, smaller pool fences it all.
  EXPECT_EQ(test_support::ReadLines(c.checkpoint.dir + "/TRANSACTIONAL_IDS"),
            std::vector<std::string>{"2"});

  c.source.kafka.group_id = "live-renamed";
  Metrics refused;
  st = RunPipeline(c, refused);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();  // exit 2
  EXPECT_NE(st.message().find("the output records no committed epoch"), std::string::npos)
      << st.message();
  EXPECT_EQ(refused.pipeline.samples_out.Get(), 0u) << "nothing was run";

  StartOptions reset;
  reset.recover.reset_state = true;
  Metrics afresh;
  st = RunPipeline(c, afresh, reset);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(afresh.checkpoint.restores.Get(), 0u) << "started afresh, as asked";
  EXPECT_EQ(afresh.pipeline.impressions_in.Get(), first.pipeline.impressions_in.Get());
}

// `source.kafka.start: latest` resolves to offsets once, and every assigned
// partition's position is kept from the first epoch on: records produced
// while the job is down are read at the restart, whether or not their
// partitions had delivered anything before.
class LatestStartTest : public ReplayTest {
 protected:
  // A job on topics that hold the fixture's trace, starting at their end.
  Config LatestConfig(SinkType sink) const {
    Config c = LiveConfig();
    c.source.kafka.group_id = "latest";
    c.source.kafka.start = StartPosition::kLatest;
    c.lookups.clear();
    c.checkpoint.enabled = true;
    if (sink == SinkType::kKafka) {
      UseKafkaSink(c, "samples-latest", "latest");
    } else {
      c.sink.type = sink;
      c.sink.path = Path("out-latest");
    }
    return c;
  }

  // Produces `n` new impressions (other ids than the trace's) and their clicks.
  uint64_t ProduceMore(uint64_t n) {
    WorkloadOptions more = test_support::OracleWorkload(77, kWindowMs);
    more.duplicate_impression_rate = 0;
    more.malformed_rate = 0;
    more.duplicate_click_rate = 0;
    GenerateOptions gen{Path("more-imp.jsonl"), Path("more-clk.jsonl"), "", n};
    EXPECT_TRUE(GenerateTrace(gen, more).ok());
    auto producer = BulkProducer::Open({{"bootstrap.servers", broker_->bootstrap()}});
    EXPECT_TRUE(producer.ok());
    for (auto [topic, file] : {std::pair{"impressions", Path("more-imp.jsonl")},
                               std::pair{"clicks", Path("more-clk.jsonl")}}) {
      EXPECT_TRUE(
          test_support::ProduceLines(**producer, topic, file, kPartitions, /*event_time=*/true)
              .ok());
    }
    return test_support::ReadLines(Path("more-imp.jsonl")).size();
  }
};

TEST_F(LatestStartTest, RecordsProducedWhileTheJobIsDownAreReadAtTheRestart) {
  const Config c = LatestConfig(SinkType::kKafka);
  Metrics first;
  Status st = RunPipeline(c, first);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(first.pipeline.impressions_in.Get(), 0u) << "it started at the end";

  const uint64_t produced = ProduceMore(500);
  Metrics second;
  st = RunPipeline(c, second);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(second.checkpoint.restores.Get(), 1u);
  EXPECT_EQ(second.pipeline.impressions_in.Get(), produced);
}

TEST_F(LatestStartTest, AJobKilledBeforeItsFirstCommitStartsWhereItFirstResolvedLatest) {
  const Config c = LatestConfig(SinkType::kFile);
  Metrics first;
  Status st = RunPipeline(c, first);
  ASSERT_TRUE(st.ok()) << st.ToString();
  // As if it had been killed before its first checkpoint completed.
  fs::remove_all(c.checkpoint.dir);

  const uint64_t produced = ProduceMore(500);
  Metrics second;
  st = RunPipeline(c, second);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(second.checkpoint.restores.Get(), 0u) << "a fresh start";
  EXPECT_EQ(second.pipeline.impressions_in.Get(), produced)
      << "from the offsets its first run resolved `latest` to, not from the end";
}

}  // namespace
}  // namespace ctrjoin
