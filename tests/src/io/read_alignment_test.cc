// ReadAlignment (src/io/read_alignment.h): which partitions the Kafka source
// pauses so that none reads far ahead of the slowest one with records left.

#include "src/io/read_alignment.h"

#include <gtest/gtest.h>

#include <map>
#include <vector>

namespace ctrjoin {
namespace {

const PartitionId kImp0{StreamKind::kImpression, 0};
const PartitionId kImp1{StreamKind::kImpression, 1};
const PartitionId kClk0{StreamKind::kClick, 0};

class ReadAlignmentTest : public ::testing::Test {
 protected:
  ReadAlignment::Change Update(int64_t now_ms = 0) {
    return alignment_.Update(now_ms, [this](PartitionId id) {
      auto it = ends_.find(id);
      return it == ends_.end() ? int64_t{-1} : it->second;
    });
  }

  ReadAlignment alignment_{10'000};
  std::map<PartitionId, int64_t> ends_ = {{kImp0, 1'000}, {kImp1, 1'000}, {kClk0, 1'000}};
};

TEST_F(ReadAlignmentTest, ClicksFarAheadPauseUntilTheImpressionsCatchUpHalfWay) {
  alignment_.Read(kImp0, 1'000, 10, 0);
  alignment_.Read(kClk0, 50'000, 5, 0);
  ReadAlignment::Change change = Update();
  EXPECT_EQ(change.pause, std::vector<PartitionId>{kClk0});
  EXPECT_TRUE(change.resume.empty());
  EXPECT_EQ(alignment_.paused(), 1);

  alignment_.Read(kImp0, 44'999, 400, 0);  // 5,001 ms behind: more than half the bound
  change = Update();
  EXPECT_TRUE(change.pause.empty());
  EXPECT_TRUE(change.resume.empty());

  alignment_.Read(kImp0, 45'000, 401, 0);
  change = Update();
  EXPECT_EQ(change.resume, std::vector<PartitionId>{kClk0});
  EXPECT_EQ(alignment_.paused(), 0);
}

TEST_F(ReadAlignmentTest, WithinTheBoundNothingPauses) {
  alignment_.Read(kImp0, 1'000, 10, 0);
  alignment_.Read(kClk0, 11'000, 5, 0);
  EXPECT_TRUE(Update().pause.empty());
  alignment_.Read(kClk0, 11'001, 6, 0);
  EXPECT_EQ(Update().pause, std::vector<PartitionId>{kClk0});
}

TEST_F(ReadAlignmentTest, APartitionWithNothingLeftToReadHoldsNoOneBack) {
  alignment_.Read(kImp0, 1'000, 10, 0);
  alignment_.Read(kClk0, 50'000, 5, 0);
  ASSERT_EQ(Update().pause, std::vector<PartitionId>{kClk0});
  // The impressions reach their end: the clicks go on, although far ahead.
  alignment_.Read(kImp0, 2'000, 1'000, 0);
  EXPECT_EQ(Update().resume, std::vector<PartitionId>{kClk0});
  // Nor does a partition whose end is not known yet.
  ends_.erase(kImp0);
  alignment_.Read(kImp0, 2'000, 500, 0);
  EXPECT_TRUE(Update().pause.empty());
}

TEST_F(ReadAlignmentTest, AStalledPartitionStopsHoldingOthersBack) {
  alignment_.Read(kImp0, 1'000, 10, 0);
  alignment_.Read(kClk0, 50'000, 5, 0);
  ASSERT_EQ(Update(0).pause, std::vector<PartitionId>{kClk0});
  // The impressions deliver nothing (an open transaction, an outage).
  EXPECT_TRUE(Update(ReadAlignment::kStalledAfterMs).resume.empty());
  EXPECT_EQ(Update(ReadAlignment::kStalledAfterMs + 1).resume, std::vector<PartitionId>{kClk0});
}

TEST_F(ReadAlignmentTest, TheSlowestPartitionWithRecordsLeftSetsTheFrontierAndAlwaysRuns) {
  alignment_.Read(kImp0, 20'000, 10, 0);
  alignment_.Read(kImp1, 5'000, 10, 0);
  alignment_.Read(kClk0, 40'000, 5, 0);
  ReadAlignment::Change change = Update();
  EXPECT_EQ(change.pause, (std::vector<PartitionId>{kImp0, kClk0}));
  // Paused partitions do not count: impressions[1] runs, whatever the rest do.
  alignment_.Read(kImp1, 15'000, 20, 0);
  change = Update();
  EXPECT_EQ(change.resume, std::vector<PartitionId>{kImp0});
  EXPECT_EQ(alignment_.paused(), 1);
  // A partition with no timestamps (-1) takes no part.
  alignment_.Forget(kClk0);
  alignment_.Read(kClk0, -1, 6, 0);
  EXPECT_EQ(alignment_.paused(), 0);
  EXPECT_TRUE(Update().pause.empty());
}

}  // namespace
}  // namespace ctrjoin
