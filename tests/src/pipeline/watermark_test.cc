#include "src/pipeline/watermark.h"

#include <gtest/gtest.h>

namespace ctrjoin {
namespace {

using namespace std::chrono_literals;
const PartitionId kImp0{StreamKind::kImpression, 0};
const PartitionId kImp1{StreamKind::kImpression, 1};
const PartitionId kClk0{StreamKind::kClick, 0};

// The router advances the tracker every batch, at least every poll timeout:
// simulate that from `from` up to (excluding) `to`.
void RunUntil(WatermarkTracker& t, WatermarkTracker::Clock::time_point from,
              WatermarkTracker::Clock::time_point to) {
  for (auto now = from; now < to; now += std::chrono::milliseconds(100)) t.Advance(now);
}

TEST(WatermarkTest, MinOverPartitionsMinusOutOfOrderness) {
  WatermarkTracker t({/*out_of_orderness_ms=*/100, /*idle_timeout_ms=*/0});
  const auto now = WatermarkTracker::Clock::now();
  t.Observe(kImp0, EventTime{1000}, now);
  t.Observe(kClk0, EventTime{700}, now);
  EXPECT_EQ(t.Advance(now).ms, 600);
  t.Observe(kClk0, EventTime{2000}, now);
  EXPECT_EQ(t.Advance(now).ms, 900);
  t.Observe(kImp0, EventTime{500}, now);  // out of order: max stays
  EXPECT_EQ(t.Advance(now).ms, 900);
}

TEST(WatermarkTest, NeverMovesBackwards) {
  WatermarkTracker t({100, 0});
  const auto now = WatermarkTracker::Clock::now();
  t.Observe(kImp0, EventTime{1000}, now);
  EXPECT_EQ(t.Advance(now).ms, 900);
  t.Observe(kImp1, EventTime{10}, now);  // a new, slower partition
  EXPECT_EQ(t.Advance(now).ms, 900);
}

TEST(WatermarkTest, AssignedSilentPartitionHoldsUntilIdle) {
  WatermarkTracker t({100, /*idle_timeout_ms=*/1000});
  const auto t0 = WatermarkTracker::Clock::now();
  t.Assign(kImp1, t0);
  t.Observe(kImp0, EventTime{5000}, t0);
  EXPECT_EQ(t.Advance(t0 + 500ms), EventTime::Min());
  RunUntil(t, t0 + 500ms, t0 + 1000ms);
  t.Observe(kImp0, EventTime{5000}, t0 + 1000ms);
  EXPECT_EQ(t.Advance(t0 + 1000ms).ms, 4900);  // kImp1 idle now
  EXPECT_EQ(t.active_partitions(), 1u);
}

TEST(WatermarkTest, IdlePartitionRejoinsWhenDataArrives) {
  WatermarkTracker t({0, 1000});
  const auto t0 = WatermarkTracker::Clock::now();
  t.Observe(kImp0, EventTime{5000}, t0);
  t.Observe(kClk0, EventTime{3000}, t0);
  EXPECT_EQ(t.Advance(t0).ms, 3000);
  RunUntil(t, t0, t0 + 2000ms);
  t.Observe(kImp0, EventTime{9000}, t0 + 2000ms);
  EXPECT_EQ(t.Advance(t0 + 2000ms).ms, 9000);  // clicks idle
  t.Observe(kClk0, EventTime{9500}, t0 + 2100ms);
  EXPECT_EQ(t.Advance(t0 + 2100ms).ms, 9000);
  EXPECT_EQ(t.active_partitions(), 2u);
}

// A partition the source reports pending (records read, not delivered yet:
// the file merge holds it back) does not go idle, however long it waits;
// the ts of its next record counts as seen.
TEST(WatermarkTest, PendingPartitionDoesNotGoIdle) {
  WatermarkTracker t({0, /*idle_timeout_ms=*/1000});
  const auto t0 = WatermarkTracker::Clock::now();
  t.Observe(kImp0, EventTime{5000}, t0);
  t.Observe(kClk0, EventTime{3000}, t0);
  for (auto now = t0; now < t0 + 3000ms; now += 100ms) {
    t.Observe(kImp0, EventTime{5000}, now);
    t.Pending(kClk0, EventTime::Min(), now);  // next ts not known
    t.Advance(now);
  }
  EXPECT_EQ(t.Advance(t0 + 3000ms).ms, 3000) << "clicks still hold the watermark";
  EXPECT_EQ(t.active_partitions(), 2u);
  t.Pending(kClk0, EventTime{4000}, t0 + 3100ms);
  EXPECT_EQ(t.Advance(t0 + 3100ms).ms, 4000) << "up to the next click, held back";
  t.Pending(kClk0, EventTime{9000}, t0 + 3200ms);
  EXPECT_EQ(t.Advance(t0 + 3200ms).ms, 5000) << "then the impressions hold it";
}

TEST(WatermarkTest, AllIdleHoldsAtTheSlowestPartitionWithData) {
  WatermarkTracker t({100, 1000});
  const auto t0 = WatermarkTracker::Clock::now();
  t.Assign(kImp1, t0);  // never delivers
  t.Observe(kImp0, EventTime{5000}, t0);
  t.Observe(kClk0, EventTime{3000}, t0);
  EXPECT_EQ(t.Advance(t0), EventTime::Min()) << "kImp1 holds while not idle";
  RunUntil(t, t0, t0 + 5s);
  EXPECT_EQ(t.Advance(t0 + 5s).ms, 2900) << "all idle: kImp1 has no data, kClk0 is slowest";
}

TEST(WatermarkTest, OurOwnStallIsNotIdleness) {
  WatermarkTracker t({0, 1000});
  const auto t0 = WatermarkTracker::Clock::now();
  t.Observe(kImp0, EventTime{5000}, t0);
  t.Observe(kClk0, EventTime{3000}, t0);
  EXPECT_EQ(t.Advance(t0).ms, 3000);
  // Nothing routed for 10 s (backpressure), then only impressions arrive.
  t.Observe(kImp0, EventTime{9000}, t0 + 10s);
  EXPECT_EQ(t.Advance(t0 + 10s).ms, 3000) << "clicks were not idle: we were stalled";
  EXPECT_EQ(t.active_partitions(), 2u);
  // Real silence after that does count.
  t.Observe(kImp0, EventTime{9500}, t0 + 10s + 600ms);
  EXPECT_EQ(t.Advance(t0 + 10s + 600ms).ms, 3000);
  RunUntil(t, t0 + 10s + 600ms, t0 + 11s + 100ms);
  t.Observe(kImp0, EventTime{9900}, t0 + 11s + 100ms);
  EXPECT_EQ(t.Advance(t0 + 11s + 100ms).ms, 9900);
}

TEST(WatermarkTest, FinishedPartitionsStopHolding) {
  WatermarkTracker t({0, 0});
  const auto now = WatermarkTracker::Clock::now();
  t.Observe(kImp0, EventTime{100}, now);
  t.Observe(kClk0, EventTime{5000}, now);
  EXPECT_EQ(t.Advance(now).ms, 100);
  t.Finish(kImp0);
  EXPECT_EQ(t.Advance(now).ms, 5000);
  t.Finish(kClk0);
  EXPECT_EQ(t.Advance(now), EventTime::Max());
}

TEST(WatermarkTest, RevokedPartitionStopsHolding) {
  WatermarkTracker t({0, 0});
  const auto now = WatermarkTracker::Clock::now();
  t.Assign(kImp1, now);
  t.Observe(kImp0, EventTime{100}, now);
  EXPECT_EQ(t.Advance(now), EventTime::Min());
  t.Revoke(kImp1);
  EXPECT_EQ(t.Advance(now).ms, 100);
}

// A checkpoint taken while a partition had not delivered anything yet: the
// restored tracker must still know it, or its first Advance (before the
// source has reported its assignment again) would move the watermark to the
// other partitions' bound, past what the checkpoint allowed.
TEST(WatermarkTest, RestoredTrackerKeepsSilentPartitionsHolding) {
  WatermarkTracker t({100, 0});
  const auto now = WatermarkTracker::Clock::now();
  t.Assign(kImp0, now);
  t.Assign(kImp1, now);
  t.Observe(kImp0, EventTime{5000}, now);
  ASSERT_EQ(t.Advance(now), EventTime::Min());

  WatermarkTracker restored({100, 0});
  restored.Restore(t.Snapshot(), t.current(), now);
  EXPECT_EQ(restored.Advance(now), EventTime::Min());
  restored.Observe(kImp1, EventTime{3000}, now);
  EXPECT_EQ(restored.Advance(now).ms, 2900);
}

TEST(WatermarkTest, FinishAllJumpsToEnd) {
  WatermarkTracker t({0, 0});
  t.Observe(kImp0, EventTime{100}, WatermarkTracker::Clock::now());
  t.FinishAll();
  EXPECT_EQ(t.Advance(WatermarkTracker::Clock::now()), EventTime::Max());
}

}  // namespace
}  // namespace ctrjoin
