// The replay progress report's lines (src/app/replay_progress.h).
#include "src/app/replay_progress.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ctrjoin {
namespace {

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

}  // namespace
}  // namespace ctrjoin
