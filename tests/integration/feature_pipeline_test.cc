// End to end with feature lookups: a generated trace through `RunPipeline`,
// features looked up in the test HBase Thrift2 server and, for comparison, in
// the embedded store. Checks point-in-time values per sample: a version
// written after an impression is never used.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <filesystem>
#include <fstream>

#include "joins/hbase_client.h"
#include "src/app/app.h"
#include "tests/support/hbase_server.h"
#include "tests/support/temp_dir.h"
#include "tests/support/trace_oracle.h"

namespace ctrjoin {
namespace {

constexpr int64_t kWindowMs = 30'000;
constexpr int kUsers = 200;
constexpr int64_t kDay = 86'400'000;

class FeaturePipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    workload_ = test_support::OracleWorkload(21, kWindowMs);
    workload_.users = kUsers;
    workload_.items = 50;
    GenerateOptions gen{Path("imp.jsonl"), Path("clk.jsonl"), "", 5'000};
    ASSERT_TRUE(GenerateTrace(gen, workload_).ok());
    // 5000 impressions at 500/s: ten seconds of event time from start_ts_ms.
    mid_ts_ = workload_.start_ts_ms + 5'000;
  }
  std::string Path(const std::string& name) const { return dir_.File(name); }

  // Every user: age n a day before; even users also 1000+n from mid_ts_;
  // everybody -1 ten days later (after every impression). Items: one price.
  struct Cell {
    std::string table, row, column, value;
    int64_t ts;
  };
  std::vector<Cell> Cells() const {
    std::vector<Cell> cells;
    for (int n = 0; n < kUsers; ++n) {
      const std::string row = "u" + std::to_string(n);
      cells.push_back(
          {"user_features", row, "age", std::to_string(n), workload_.start_ts_ms - kDay});
      if (n % 2 == 0) {
        cells.push_back({"user_features", row, "age", std::to_string(1000 + n), mid_ts_});
      }
      cells.push_back({"user_features", row, "age", "-1", workload_.start_ts_ms + 10 * kDay});
    }
    for (int n = 0; n < 50; ++n) {
      cells.push_back({"item_features", "i" + std::to_string(n), "price", std::to_string(n) + ".5",
                       workload_.start_ts_ms - kDay});
    }
    return cells;
  }

  Config MakeConfig(const std::string& out) const {
    Config c;
    c.source.files.impressions_path = Path("imp.jsonl");
    c.source.files.clicks_path = Path("clk.jsonl");
    c.join.window_ms = kWindowMs;
    c.state.dir = Path("state-" + out);
    c.sink.type = SinkType::kFile;
    c.sink.path = Path(out);
    c.dead_letter.path = Path("dead-" + out);
    c.lookups = {LookupSpec{"user", "user_features", "f", LookupKey::kUserId, 2, {}},
                 LookupSpec{"item", "item_features", "f", LookupKey::kItemId, 2, {}}};
    return c;
  }

  // Checks every sample's user.age and item.price; returns sample_id -> JSON.
  std::map<std::string, std::string> CheckSamples(const std::string& path) {
    simdjson::dom::parser parser;
    std::map<std::string, std::string> by_id;
    for (const std::string& line : test_support::ReadLines(path)) {
      simdjson::dom::element doc;
      EXPECT_FALSE(parser.parse(line).get(doc));
      std::string_view user, item, sid;
      int64_t ts = 0;
      double age = -2, price = -2;
      EXPECT_FALSE(doc["user_id"].get(user));
      EXPECT_FALSE(doc["item_id"].get(item));
      EXPECT_FALSE(doc["ts"].get(ts));
      EXPECT_FALSE(doc["sample_id"].get(sid));
      EXPECT_FALSE(doc["features"]["user.age"].get(age)) << line;
      EXPECT_FALSE(doc["features"]["item.price"].get(price)) << line;
      const int n = std::stoi(std::string(user.substr(1)));
      const double expected = (n % 2 == 0 && ts >= mid_ts_) ? 1000 + n : n;
      EXPECT_EQ(age, expected) << line;
      EXPECT_EQ(price, std::stoi(std::string(item.substr(1))) + 0.5) << line;
      EXPECT_EQ(doc["partial"].error(), simdjson::NO_SUCH_FIELD);
      by_id[std::string(sid)] = line;
    }
    return by_id;
  }

  test_support::TempDir dir_;
  WorkloadOptions workload_;
  int64_t mid_ts_ = 0;
};

TEST_F(FeaturePipelineTest, HBaseAndEmbeddedStoresGiveTheSamePointInTimeFeatures) {
  auto server = test_support::TestHBaseServer::Start({});
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  HBaseClientOptions client_options;
  client_options.port = (*server)->port();
  auto client = HBaseClient::Open(client_options);
  ASSERT_TRUE(client.ok());
  std::map<std::string, std::vector<HBasePut>> puts;
  std::ofstream features(Path("features.jsonl"));
  for (const Cell& c : Cells()) {
    puts[c.table].push_back(HBasePut{c.row, "f", c.column, c.value, c.ts});
    features << R"({"table":")" << c.table << R"(","row":")" << c.row << R"(","ts":)" << c.ts
             << R"(,"columns":{")" << c.column << R"(":)" << c.value << "}}\n";
  }
  features.close();
  for (const auto& [table, rows] : puts) ASSERT_TRUE((*client)->PutMultiple(table, rows).ok());

  Config hbase = MakeConfig("hbase.jsonl");
  hbase.feature_store.type = FeatureStoreType::kHBase;
  hbase.feature_store.hbase = client_options;
  Metrics hbase_metrics;
  Status st = RunPipeline(hbase, hbase_metrics);
  ASSERT_TRUE(st.ok()) << st.ToString();

  Config embedded = MakeConfig("embedded.jsonl");
  embedded.feature_store.embedded.path = Path("feature-db");
  embedded.feature_store.embedded.load = Path("features.jsonl");
  Metrics embedded_metrics;
  st = RunPipeline(embedded, embedded_metrics);
  ASSERT_TRUE(st.ok()) << st.ToString();

  const auto from_hbase = CheckSamples(Path("hbase.jsonl"));
  const auto from_embedded = CheckSamples(Path("embedded.jsonl"));
  EXPECT_GT(from_hbase.size(), 4'900u);
  EXPECT_EQ(from_hbase, from_embedded) << "same samples, byte for byte";
  test_support::ExpectMatchesOracle(
      test_support::ComputeOracle(Path("imp.jsonl"), Path("clk.jsonl"), kWindowMs),
      test_support::ReadSamples(Path("hbase.jsonl")));
  // Batching: far fewer store calls than rows.
  EXPECT_GT(hbase_metrics.lookup.Sum(&LookupCounters::requests), 0u);
  EXPECT_LT(hbase_metrics.lookup.Sum(&LookupCounters::store_calls),
            hbase_metrics.lookup.Sum(&LookupCounters::requests));
  EXPECT_GT((*server)->counts().get_multiple, 0);
}

}  // namespace
}  // namespace ctrjoin
