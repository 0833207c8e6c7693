// Replay ranges as given on the command line, their validation and the range
// kept for resumes.
#include "src/io/replay_range.h"

#include <gtest/gtest.h>

#include <fstream>

#include "tests/support/temp_dir.h"

namespace ctrjoin {
namespace {

TEST(ReplayRangeTest, ParsesPartitionOffsets) {
  auto ok = ParsePartitionOffsets("0=100,1=250,7=0", "--start-offsets");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(*ok, (std::map<int32_t, int64_t>{{0, 100}, {1, 250}, {7, 0}}));
  for (const char* bad : {"", "0", "0=", "=5", "a=1", "0=x", "0=1,0=2", "-1=4", "0=-4", "0=1,"}) {
    auto r = ParsePartitionOffsets(bad, "--start-offsets");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_TRUE(r.status().message().starts_with("--start-offsets: ")) << r.status().message();
  }
}

TEST(ReplayRangeTest, ParsesTimes) {
  const std::pair<const char*, int64_t> good[] = {{"2026-01-01T00:00:00Z", 1'767'225'600'000},
                                                  {"2026-01-01T00:00:01.250Z", 1'767'225'601'250},
                                                  {"1767225600000", 1'767'225'600'000}};
  for (auto [text, ms] : good) {
    Result<int64_t> r = ParseTimestampMs(text, "--start-time");
    ASSERT_TRUE(r.ok()) << text << ": " << r.status().ToString();
    EXPECT_EQ(r.value(), ms) << text;
  }
  for (const char* bad :
       {"", "yesterday", "2026-01-01", "2026-01-01T00:00:00", "2026-13-01T00:00:00Z",
        "2026-01-01T00:00:00+01:00", "2026-01-01T00:00:00.5Z", "2026-02-31T00:00:00Z",
        "2026-01-01T-1:00:00Z", " 2026-01-01T00:00:00Z", "2026-01-01T00:00:00.-12Z",
        "2026-01-01T24:00:00Z", "1969-12-31T23:59:59Z", "2026-1-01T00:00:00Z"}) {
    auto r = ParseTimestampMs(bad, "--end-time");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_TRUE(r.status().message().starts_with("--end-time: ")) << r.status().message();
  }
}

TEST(ReplayRangeTest, ValidationNamesTheOption) {
  ReplayRange r;
  EXPECT_TRUE(r.Validate().ok());
  r.start_offsets = {{0, 5}};
  r.start_ms = 1;
  EXPECT_TRUE(r.Validate().message().starts_with("--start-offsets")) << r.Validate().message();
  r = ReplayRange{};
  r.start_ms = 10;
  r.end_ms = 10;
  EXPECT_TRUE(r.Validate().message().starts_with("--end-time")) << r.Validate().message();
  r = ReplayRange{};
  r.start_ms = -5;
  EXPECT_TRUE(r.Validate().message().starts_with("--start-time")) << r.Validate().message();
  r = ReplayRange{};
  r.click_lookback_ms = -1;
  EXPECT_TRUE(r.Validate().message().starts_with("--click-lookback-ms")) << r.Validate().message();
}

TEST(ReplayRangeTest, ResolvedRangeIsKeptForResumesOfTheSameRangeOnly) {
  test_support::TempDir dir;
  const std::string path = dir.File("state/replay-x/RANGE");
  ReplayRange range;
  range.start_ms = 1'000;
  ResolvedRange resolved;
  resolved.start = {{{StreamKind::kImpression, 0}, 5}, {{StreamKind::kClick, 1}, 0}};
  resolved.end = {{{StreamKind::kImpression, 0}, 90}, {{StreamKind::kClick, 1}, 70}};
  resolved.click_start_ms = 400;
  resolved.impressions = 85;
  EXPECT_EQ(LoadResolvedRange(path, range).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(SaveResolvedRange(path, range, resolved).ok());
  Result<ResolvedRange> loaded = LoadResolvedRange(path, range);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->start, resolved.start);
  EXPECT_EQ(loaded->end, resolved.end);
  EXPECT_EQ(loaded->click_start_ms, 400);
  EXPECT_EQ(loaded->impressions, 85u);
  ReplayRange other = range;
  other.end_ms = 9'000;
  Result<ResolvedRange> refused = LoadResolvedRange(path, other);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("started with the range from time 1000"),
            std::string::npos)
      << refused.status().message();
  std::ofstream(path) << "ctrjoin-replay-range 1\nspec " << range.Describe() << "\npartition x\n";
  EXPECT_EQ(LoadResolvedRange(path, range).status().code(), StatusCode::kCorruption);
}

}  // namespace
}  // namespace ctrjoin
