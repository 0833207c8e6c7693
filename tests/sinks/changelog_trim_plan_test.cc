// Which head of a task's changelog partition may be deleted: records whose
// every put's deadline is below a committed marker's watermark, never past
// the last committed marker, and only as a prefix.
#include <gtest/gtest.h>

#include <limits>
#include <optional>
#include <vector>

#include "sinks/changelog_trimmer.h"

namespace ctrjoin {
namespace {

using Record = ChangelogTrimPlan::Record;
constexpr int64_t kNoPut = std::numeric_limits<int64_t>::min();

Record Puts(int64_t offset, int64_t max_horizon) { return {offset, max_horizon, std::nullopt}; }
Record Marker(int64_t offset, int64_t max_horizon, int64_t watermark) {
  return {offset, max_horizon, watermark};
}

TEST(ChangelogTrimPlanTest, AHeadWhoseDeadlinesAreAllPassedGoesUpToTheLastMarker) {
  ChangelogTrimPlan plan;
  std::vector<Record> first = {Puts(0, 100), Marker(1, 200, 50)};
  EXPECT_EQ(plan.Committed(7, first), std::nullopt) << "deadline 100 is not passed at 50";
  std::vector<Record> second = {Marker(3, 300, 150)};
  EXPECT_EQ(plan.Committed(7, second), 1) << "record 0 (100 < 150) goes; 1 holds 200";
  std::vector<Record> third = {Marker(5, kNoPut, 250)};
  EXPECT_EQ(plan.Committed(7, third), 3);
  std::vector<Record> fourth = {Marker(7, kNoPut, 400)};
  EXPECT_EQ(plan.Committed(7, fourth), 7) << "all dead; the last marker stays";
  std::vector<Record> again = {Marker(9, kNoPut, 400)};
  EXPECT_EQ(plan.Committed(7, again), 9);
}

TEST(ChangelogTrimPlanTest, OnlyAPrefixGoesAndTasksAreApart) {
  ChangelogTrimPlan plan;
  std::vector<Record> records = {Puts(0, 1000), Puts(1, 10), Marker(2, 10, 100)};
  EXPECT_EQ(plan.Committed(0, records), std::nullopt) << "record 0 holds 1000";
  std::vector<Record> other = {Puts(0, 10), Marker(1, kNoPut, 100)};
  EXPECT_EQ(plan.Committed(1, other), 1) << "task 1 is not held up by task 0";
  std::vector<Record> later = {Marker(3, kNoPut, 1001)};
  EXPECT_EQ(plan.Committed(0, later), 3);
}

TEST(ChangelogTrimPlanTest, WithoutACommittedMarkerNothingGoes) {
  ChangelogTrimPlan plan;
  std::vector<Record> puts = {Puts(0, 10), Puts(1, 10)};
  EXPECT_EQ(plan.Committed(0, puts), std::nullopt);
}

TEST(ChangelogTrimPlanTest, WhatARestoreReadGoesOnceItsLatestDeadlineIsPassed) {
  ChangelogTrimPlan plan;
  std::vector<Record> before = {Puts(0, 10), Marker(1, kNoPut, 100)};
  EXPECT_EQ(plan.Committed(2, before), 1);
  // The task went away and came back: what it knew is stale.
  plan.Restored(2, 20, 600);
  std::vector<Record> first = {Marker(21, kNoPut, 500)};
  EXPECT_EQ(plan.Committed(2, first), std::nullopt) << "a restored entry lives until 600";
  std::vector<Record> second = {Marker(23, kNoPut, 700)};
  EXPECT_EQ(plan.Committed(2, second), 23);
}

TEST(ChangelogTrimPlanTest, ARecordWithoutADeliveredOffsetIsNoDeletionPoint) {
  ChangelogTrimPlan plan;
  std::vector<Record> records = {Puts(0, 10), Marker(-1, kNoPut, 100)};
  EXPECT_EQ(plan.Committed(0, records), std::nullopt);
  std::vector<Record> next = {Marker(4, kNoPut, 200)};
  EXPECT_EQ(plan.Committed(0, next), 4);
}

}  // namespace
}  // namespace ctrjoin
