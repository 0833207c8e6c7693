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
using Ids = std::vector<PartitionId>;

class ReadAlignmentTest : public ::testing::Test {
 protected:
  std::map<PartitionId, int64_t> ends_ = {{kImp0, 1'000}, {kImp1, 1'000}, {kClk0, 1'000}};
  ReadAlignment alignment_{10'000, [this](PartitionId id) {
                             auto it = ends_.find(id);
                             return it == ends_.end() ? int64_t{-1} : it->second;
                           }};
};

TEST_F(ReadAlignmentTest, ClicksFarAheadPauseAtOnceUntilTheImpressionsCatchUpHalfWay) {
  EXPECT_FALSE(alignment_.Read(kImp0, 1'000, 10, 0));
  EXPECT_TRUE(alignment_.Read(kClk0, 50'000, 5, 0));  // pauses at this record
  EXPECT_EQ(alignment_.paused(), 1);
  EXPECT_EQ(alignment_.PausedIds(), Ids{kClk0});
  EXPECT_TRUE(alignment_.Update(0).pause.empty());

  // The slowest partition's own records never pause it.
  EXPECT_FALSE(alignment_.Read(kImp0, 44'999, 400, 0));  // 5,001 ms behind: more than half
  ReadAlignment::Change change = alignment_.Update(0);
  EXPECT_TRUE(change.pause.empty());
  EXPECT_TRUE(change.resume.empty());

  EXPECT_FALSE(alignment_.Read(kImp0, 45'000, 401, 0));
  EXPECT_EQ(alignment_.Update(0).resume, Ids{kClk0});
  EXPECT_EQ(alignment_.paused(), 0);
}

TEST_F(ReadAlignmentTest, WithinTheBoundNothingPauses) {
  EXPECT_FALSE(alignment_.Read(kImp0, 1'000, 10, 0));
  EXPECT_FALSE(alignment_.Read(kClk0, 11'000, 5, 0));
  EXPECT_TRUE(alignment_.Update(0).pause.empty());
  EXPECT_TRUE(alignment_.Read(kClk0, 11'001, 6, 0));
}

TEST_F(ReadAlignmentTest, APartitionWithNothingLeftToReadHoldsNoOneBack) {
  alignment_.Read(kImp0, 1'000, 10, 0);
  ASSERT_TRUE(alignment_.Read(kClk0, 50'000, 5, 0));
  // The impressions reach their end: the clicks go on, although far ahead.
  alignment_.Read(kImp0, 2'000, 1'000, 0);
  EXPECT_EQ(alignment_.Update(0).resume, Ids{kClk0});
  // One whose end is not known yet counts as having records left.
  ends_.erase(kImp0);
  alignment_.Read(kImp0, 2'000, 500, 0);
  EXPECT_EQ(alignment_.Update(0).pause, Ids{kClk0});
}

TEST_F(ReadAlignmentTest, AStalledPartitionStopsHoldingOthersBack) {
  alignment_.Read(kImp0, 1'000, 10, 0);
  ASSERT_TRUE(alignment_.Read(kClk0, 50'000, 5, 0));
  // The impressions deliver nothing (an open transaction, an outage).
  EXPECT_TRUE(alignment_.Update(ReadAlignment::kStalledAfterMs).resume.empty());
  EXPECT_EQ(alignment_.Update(ReadAlignment::kStalledAfterMs + 1).resume, Ids{kClk0});
}

TEST_F(ReadAlignmentTest, AfterAnAssignmentThoseThatDeliveredWaitForTheOthersFirstRecords) {
  alignment_.Assigned(kImp0);
  alignment_.Assigned(kClk0);
  // At the start of a backlog one fetch of clicks may span all of it.
  EXPECT_TRUE(alignment_.Read(kClk0, 49'000, 4, 10));
  EXPECT_TRUE(alignment_.Update(500).resume.empty());
  // The impressions' first record sets the frontier.
  EXPECT_FALSE(alignment_.Read(kImp0, 45'000, 1, 600));
  EXPECT_EQ(alignment_.Update(600).resume, Ids{kClk0});

  // Assigned anew: a partition that delivers nothing (empty, or caught up)
  // holds the others back for kStalledAfterMs after the first delivery.
  alignment_.Assigned(kImp0);
  alignment_.Assigned(kClk0);
  EXPECT_TRUE(alignment_.Read(kClk0, 50'000, 6, 2'010));
  EXPECT_TRUE(alignment_.Update(2'010 + ReadAlignment::kStalledAfterMs).resume.empty());
  EXPECT_EQ(alignment_.Update(2'011 + ReadAlignment::kStalledAfterMs).resume, Ids{kClk0});
}

TEST_F(ReadAlignmentTest, TheSlowestPartitionWithRecordsLeftSetsTheFrontierAndAlwaysRuns) {
  EXPECT_FALSE(alignment_.Read(kImp0, 20'000, 10, 0));
  EXPECT_FALSE(alignment_.Read(kImp1, 5'000, 10, 0));
  EXPECT_TRUE(alignment_.Read(kClk0, 40'000, 5, 0));
  EXPECT_EQ(alignment_.Update(0).pause, Ids{kImp0});
  // The slowest, impressions[1], runs; a paused one resumes within half the bound.
  EXPECT_FALSE(alignment_.Read(kImp1, 15'000, 20, 0));
  EXPECT_EQ(alignment_.Update(0).resume, Ids{kImp0});
  EXPECT_EQ(alignment_.PausedIds(), Ids{kClk0});
  // A partition with no timestamps (-1) takes no part.
  alignment_.Forget(kClk0);
  EXPECT_FALSE(alignment_.Read(kClk0, -1, 6, 0));
  EXPECT_EQ(alignment_.paused(), 0);
  EXPECT_TRUE(alignment_.Update(0).pause.empty());
  // Clear forgets everything.
  alignment_.Clear();
  EXPECT_FALSE(alignment_.Read(kClk0, 90'000, 7, 0));
  EXPECT_TRUE(alignment_.Update(0).pause.empty());
}

}  // namespace
}  // namespace ctrjoin
