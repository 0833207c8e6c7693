// End to end over files: a generated trace through `RunPipeline`, compared
// with labels computed independently from the same files by a brute-force
// oracle (no watermarks, no state: just the window rule).
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <gtest/gtest.h>
#include <simdjson.h>

#include "src/app.h"
#include "src/hash.h"
#include "src/workload.h"

namespace ctrjoin {
namespace {

constexpr int64_t kWindowMs = 30'000;

struct Oracle {
  std::map<std::string, int> labels;  // impression id -> expected label
  size_t rejected = 0;                // lines that must be dead-lettered
};

std::vector<std::string> ReadLines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

// The window rule, brute force: label 1 iff some valid click for the id has
// ts in [impression ts, impression ts + W]; the first impression of an id wins.
Oracle ComputeOracle(const std::string& impressions, const std::string& clicks) {
  simdjson::dom::parser parser;
  Oracle oracle;
  std::map<std::string, int64_t> first_ts;
  for (const std::string& line : ReadLines(impressions)) {
    simdjson::dom::element doc;
    std::string_view id, user, item;
    int64_t ts = 0;
    if (parser.parse(line).get(doc) || doc["impression_id"].get(id) ||
        doc["user_id"].get(user) || doc["item_id"].get(item) || doc["ts"].get(ts)) {
      ++oracle.rejected;
      continue;
    }
    first_ts.emplace(std::string(id), ts);
  }
  std::multimap<std::string, int64_t> click_ts;
  for (const std::string& line : ReadLines(clicks)) {
    simdjson::dom::element doc;
    std::string_view id;
    int64_t ts = 0;
    if (parser.parse(line).get(doc) || doc["impression_id"].get(id) || doc["ts"].get(ts)) {
      ++oracle.rejected;
      continue;
    }
    click_ts.emplace(std::string(id), ts);
  }
  for (const auto& [id, ts] : first_ts) {
    int label = 0;
    auto [lo, hi] = click_ts.equal_range(id);
    for (auto it = lo; it != hi; ++it) {
      if (it->second >= ts && it->second <= ts + kWindowMs) label = 1;
    }
    oracle.labels[id] = label;
  }
  return oracle;
}

class FilePipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("ctrjoin_pipeline_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    GenerateOptions gen;
    gen.impressions_path = Path("impressions.jsonl");
    gen.clicks_path = Path("clicks.jsonl");
    gen.impressions = 30'000;
    WorkloadOptions w;
    w.seed = 7;
    w.impressions_per_sec = 500;
    w.ctr = 0.05;
    w.mean_click_delay_ms = kWindowMs / 2;  // a good share falls beyond the window
    w.max_disorder_ms = 2'000;              // within the out-of-orderness bound
    w.late_rate = 0;                        // nothing late: the oracle needs no watermarks
    w.malformed_rate = 0.002;
    w.duplicate_click_rate = 0.02;
    w.duplicate_impression_rate = 0.01;
    ASSERT_TRUE(GenerateTrace(gen, w).ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  Config MakeConfig(const std::string& out, uint32_t shards, size_t batch, uint64_t budget_mb) {
    Config c;
    c.source.files.impressions_path = Path("impressions.jsonl");
    c.source.files.clicks_path = Path("clicks.jsonl");
    c.watermark.out_of_orderness_ms = 5'000;
    c.join.window_ms = kWindowMs;
    c.state.dir = Path("state-" + out);
    c.state.memory_budget_mb = budget_mb;
    c.sink.type = "file";
    c.sink.path = Path(out);
    c.dead_letter.path = Path("dead-" + out);
    c.pipeline.shards = shards;
    c.pipeline.batch_size = batch;
    return c;
  }

  // sample_id -> (impression_id, label) from a JSON-lines sample file.
  std::map<uint64_t, std::pair<std::string, int64_t>> ReadSamples(const std::string& path) {
    simdjson::dom::parser parser;
    std::map<uint64_t, std::pair<std::string, int64_t>> samples;
    for (const std::string& line : ReadLines(path)) {
      simdjson::dom::element doc;
      EXPECT_FALSE(parser.parse(line).get(doc)) << line;
      std::string_view sid, id;
      int64_t label = -1;
      EXPECT_FALSE(doc["sample_id"].get(sid));
      EXPECT_FALSE(doc["impression_id"].get(id));
      EXPECT_FALSE(doc["label"].get(label));
      const bool inserted =
          samples.emplace(std::stoull(std::string(sid)), std::make_pair(std::string(id), label))
              .second;
      EXPECT_TRUE(inserted) << "duplicate sample " << line;
    }
    return samples;
  }

  std::filesystem::path dir_;
};

TEST_F(FilePipelineTest, OneSamplePerImpressionWithTheWindowLabel) {
  const Oracle oracle = ComputeOracle(Path("impressions.jsonl"), Path("clicks.jsonl"));
  ASSERT_GT(oracle.labels.size(), 29'000u);
  ASSERT_GT(oracle.rejected, 0u);

  Metrics metrics;
  Status st = RunPipeline(MakeConfig("samples.jsonl", 4, 256, 256), metrics);
  ASSERT_TRUE(st.ok()) << st.ToString();

  const auto samples = ReadSamples(Path("samples.jsonl"));
  EXPECT_EQ(samples.size(), oracle.labels.size());
  size_t positives = 0, mismatches = 0;
  for (const auto& [id, label] : oracle.labels) {
    auto it = samples.find(ImpressionKey(id));
    if (it == samples.end()) {
      ADD_FAILURE() << "no sample for " << id;
      continue;
    }
    EXPECT_EQ(it->second.first, id);
    if (it->second.second != label && ++mismatches < 10) {
      ADD_FAILURE() << id << ": label " << it->second.second << ", expected " << label;
    }
    positives += label;
  }
  EXPECT_EQ(mismatches, 0u);
  EXPECT_GT(positives, 500u);
  EXPECT_EQ(metrics.join.positives.Get(), positives);
  EXPECT_EQ(metrics.dead_letters.Get(), oracle.rejected);
  EXPECT_EQ(ReadLines(Path("dead-samples.jsonl")).size(), oracle.rejected);
  EXPECT_GT(metrics.join.duplicate_clicks.Get(), 0u);
  EXPECT_GT(metrics.join.duplicate_impressions.Get(), 0u);
  EXPECT_GT(metrics.join.orphan_clicks.Get(), 0u);
  EXPECT_EQ(metrics.join.late_clicks.Get(), 0u);
  EXPECT_EQ(metrics.join.state_entries.Get(), 0) << "every window closed at the end";
}

// (Spilling is covered at the join level, in joins/join_state_test.cc.)
TEST_F(FilePipelineTest, SameInputSameSamplesWhateverShardsAndBatches) {
  Metrics m1, m2;
  ASSERT_TRUE(RunPipeline(MakeConfig("a.jsonl", 1, 512, 1024), m1).ok());
  ASSERT_TRUE(RunPipeline(MakeConfig("b.jsonl", 3, 97, 64), m2).ok());
  const auto a = ReadSamples(Path("a.jsonl"));
  const auto b = ReadSamples(Path("b.jsonl"));
  EXPECT_GT(a.size(), 29'000u);
  EXPECT_EQ(a, b);
}

}  // namespace
}  // namespace ctrjoin
