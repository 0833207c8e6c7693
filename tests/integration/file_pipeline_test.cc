// End to end over files: a generated trace through `RunPipeline`, compared
// with labels computed independently from the same files by a brute-force
// oracle (no watermarks, no state: just the window rule).
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "sinks/file_sink.h"
#include "src/app.h"
#include "src/file_source.h"
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

// A bounded replay's end (Pipeline::EndAfterWindows): the first 3000
// impressions against all 60 s of clicks; the run ends once the watermark closes
// the last of their windows, long before the clicks end, with every label
// right.
TEST_F(FilePipelineTest, EndAfterWindowsStopsOnceTheRangeIsLabelled) {
  {
    std::ofstream head(Path("head.jsonl"));
    const std::vector<std::string> lines = ReadLines(Path("impressions.jsonl"));
    for (size_t i = 0; i < 3'000; ++i) head << lines[i] << "\n";
  }
  const Oracle oracle = ComputeOracle(Path("head.jsonl"), Path("clicks.jsonl"), kWindowMs);
  Config c = MakeConfig("head-samples.jsonl", 2, 256, 256);
  c.source.files.impressions_path = Path("head.jsonl");
  auto source = FileSource::Open(c.source.files, c.schema);
  ASSERT_TRUE(source.ok());
  auto out = LineWriter::OpenFile(Path("head-samples.jsonl"), false);
  ASSERT_TRUE(out.ok());
  FileSampleSink sink(std::move(out).value(), SampleFormat::kJson);
  auto dead = LineWriter::OpenFile(Path("head-dead.jsonl"), false);
  ASSERT_TRUE(dead.ok());
  JsonLinesDeadLetterSink dead_letters(std::move(dead).value());
  Metrics metrics;
  Status st = RunPipelineWith(c, metrics, **source, nullptr, sink, dead_letters, nullptr,
                              /*end_after_window_ms=*/kWindowMs);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ExpectMatchesOracle(oracle, ReadSamples(Path("head-samples.jsonl")));
  const size_t clicks = ReadLines(Path("clicks.jsonl")).size();
  // 3000 impressions are 6 s of event time; their windows close at about
  // 6 + 30 + 5 s of the 60 s of clicks.
  EXPECT_LT(metrics.clicks_in.Get(), clicks * 3 / 4) << "read clicks long past the range's windows";
}

}  // namespace
}  // namespace ctrjoin
