// Replay ranges as given on the command line, their validation, the
// progress report, environment overrides and JSON log lines.
#include <gtest/gtest.h>

#include "src/config.h"
#include "src/logging.h"
#include "src/replay_progress.h"
#include "src/replay_range.h"

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
  for (const char* bad : {"", "yesterday", "2026-01-01", "2026-01-01T00:00:00", "2026-13-01T00:00:00Z",
                          "2026-01-01T00:00:00+01:00", "2026-01-01T00:00:00.5Z"}) {
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
  r.click_lookback_ms = -1;
  EXPECT_TRUE(r.Validate().message().starts_with("--click-lookback-ms")) << r.Validate().message();
}

TEST(ReplayProgressTest, ReportsPercentagePerPartitionRateAndEta) {
  std::vector<KafkaSource::PartitionProgress> parts = {
      {{StreamKind::kImpression, 0}, 100, 1100, 600},  // 50%
      {{StreamKind::kImpression, 1}, 0, 1000, 1000},   // 100%
      {{StreamKind::kClick, 0}, 0, 2000, 500},         // 25%
  };
  // 4000 records, 2000 read, 1000/s: 2 s left.
  std::vector<std::string> lines = ReplayProgress::Format(parts, 1000, 65);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0],
            "replay: 50.0% of 4000 records read, 1000 records/s, elapsed 0:01:05, ETA <= 0:00:02");
  EXPECT_EQ(lines[1], "  impressions [0] 50.0% [1] 100.0%");
  EXPECT_EQ(lines[2], "  clicks      [0] 25.0%");
  EXPECT_NE(ReplayProgress::Format(parts, 0, 1)[0].find("ETA <= --:--:--"), std::string::npos);
}

TEST(EnvOverrideTest, DoubleUnderscoreSeparatesLevels) {
  const char* env[] = {"CTRJOIN_JOIN__WINDOW_MS=60000", "CTRJOIN_SOURCE__KAFKA__BROKERS=h:1",
                       "CTRJOIN_CRASH_AT=write:3", "CTRJOIN_LOG_FORMAT=json", "PATH=/bin",
                       nullptr};
  std::vector<EnvOverride> o = EnvOverrides(const_cast<char**>(env));
  ASSERT_EQ(o.size(), 2u);
  EXPECT_EQ(o[0].variable, "CTRJOIN_JOIN__WINDOW_MS");
  EXPECT_EQ(o[0].assignment, "join.window_ms=60000");
  EXPECT_EQ(o[1].assignment, "source.kafka.brokers=h:1");
}

TEST(EnvOverrideTest, AppliesBetweenFileAndSetAndNamesTheVariable) {
  const std::string yaml = "source: {files: {impressions: a, clicks: b}}\njoin: {window_ms: 1000}\n";
  auto c = ParseConfig(yaml, {}, {{"CTRJOIN_JOIN__WINDOW_MS", "join.window_ms=2000"}});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->join.window_ms, 2000);
  c = ParseConfig(yaml, {"join.window_ms=3000"}, {{"CTRJOIN_JOIN__WINDOW_MS", "join.window_ms=2000"}});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->join.window_ms, 3000) << "--set wins over the environment";
  c = ParseConfig(yaml, {}, {{"CTRJOIN_JOIN__WINDOW_MS", "join.window_ms=ten"}});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("CTRJOIN_JOIN__WINDOW_MS"), std::string::npos)
      << c.status().message();
  EXPECT_NE(c.status().message().find("join.window_ms"), std::string::npos);
  c = ParseConfig(yaml, {}, {{"CTRJOIN_JOIN__WINDOWMS", "join.windowms=5"}});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("CTRJOIN_JOIN__WINDOWMS"), std::string::npos)
      << c.status().message();
}

TEST(LoggingTest, JsonLinesEscapeTheMessage) {
  EXPECT_EQ(JsonLogLine("2026-11-21T10:00:00.000Z", "info", "a \"b\"\n\tc\\"),
            "{\"ts\":\"2026-11-21T10:00:00.000Z\",\"level\":\"info\",\"msg\":\"a \\\"b\\\"\\n\\tc\\\\\"}\n");
  EXPECT_EQ(JsonLogLine("t", "warn", std::string("x\x01y")),
            "{\"ts\":\"t\",\"level\":\"warn\",\"msg\":\"x\\u0001y\"}\n");
  EXPECT_FALSE(ConfigureLogging("xml", "info").ok());
  EXPECT_TRUE(ConfigureLogging("text", "info").ok());
}

}  // namespace
}  // namespace ctrjoin
