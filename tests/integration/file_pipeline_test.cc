// End to end over files: a generated trace through `RunPipeline`, compared
// with labels computed independently from the same files by a brute-force
// oracle (no watermarks, no state: just the window rule).
#include <filesystem>

#include <gtest/gtest.h>

#include "src/app.h"
#include "src/hash.h"
#include "src/workload.h"
#include "tests/support/trace_oracle.h"
#include "tests/support/temp_dir.h"

namespace ctrjoin {
namespace {

constexpr int64_t kWindowMs = 30'000;
using testing::ComputeOracle;
using testing::ExpectMatchesOracle;
using testing::Oracle;
using testing::ReadLines;
using testing::ReadSamples;

class FilePipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    GenerateOptions gen;
    gen.impressions_path = Path("impressions.jsonl");
    gen.clicks_path = Path("clicks.jsonl");
    gen.impressions = 30'000;
    ASSERT_TRUE(GenerateTrace(gen, testing::OracleWorkload(7, kWindowMs)).ok());
  }

  std::string Path(const std::string& name) const { return dir_.File(name); }

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

  testing::TempDir dir_;
};

TEST_F(FilePipelineTest, OneSamplePerImpressionWithTheWindowLabel) {
  const Oracle oracle =
      ComputeOracle(Path("impressions.jsonl"), Path("clicks.jsonl"), kWindowMs);
  ASSERT_GT(oracle.labels.size(), 29'000u);
  ASSERT_GT(oracle.rejected, 0u);

  Metrics metrics;
  Status st = RunPipeline(MakeConfig("samples.jsonl", 4, 256, 256), metrics);
  ASSERT_TRUE(st.ok()) << st.ToString();

  const size_t positives = ExpectMatchesOracle(oracle, ReadSamples(Path("samples.jsonl")));
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
