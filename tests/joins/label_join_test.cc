// Every rule of the label join (joins/README.md, "Label join semantics").
#include "joins/label_join.h"

#include <gtest/gtest.h>

#include "src/core/hash.h"

namespace ctrjoin {
namespace {

constexpr int64_t kW = 1000;  // window

class LabelJoinTest : public ::testing::Test {
 protected:
  void SetUp() override { Make(LabelJoinOptions{kW, 500, false, 16}); }

  void Make(LabelJoinOptions options) {
    join_.reset();  // before the metrics it borrows
    metrics_ = std::make_unique<JoinMetrics>();
    join_ = std::make_unique<LabelJoin>(options, JoinState(0, nullptr, 1 << 30, metrics_.get()),
                                        metrics_.get());
  }

  static KeyedEvent Imp(const std::string& id, int64_t ts) {
    Impression imp{id, "u-" + id, "i-" + id, EventTime{ts}, {{"f", 1.5}}};
    return KeyedEvent{ImpressionKey(id), std::move(imp)};
  }
  static KeyedEvent Clk(const std::string& id, int64_t ts) {
    return KeyedEvent{ImpressionKey(id), Click{id, EventTime{ts}}};
  }

  // Feeds events, then advances the watermark; returns emitted samples.
  std::vector<Sample> Feed(std::vector<KeyedEvent> events, int64_t watermark) {
    ShardBatch batch;
    batch.events = std::move(events);
    batch.watermark = EventTime{watermark};
    std::vector<Sample> out;
    Status st = join_->Process(batch, out);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return out;
  }
  std::vector<Sample> End() {
    ShardBatch batch;
    batch.end_of_input = true;
    std::vector<Sample> out;
    EXPECT_TRUE(join_->Process(batch, out).ok());
    return out;
  }

  std::unique_ptr<JoinMetrics> metrics_;
  std::unique_ptr<LabelJoin> join_;
};

TEST_F(LabelJoinTest, ClickInWindowEmitsPositiveAtOnce) {
  EXPECT_TRUE(Feed({Imp("a", 100)}, 0).empty());
  auto out = Feed({Clk("a", 600)}, 0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].label, 1);
  EXPECT_EQ(out[0].sample_id, ImpressionKey("a"));
  EXPECT_EQ(out[0].impression.impression_id, "a");
  EXPECT_EQ(out[0].impression.user_id, "u-a");
  EXPECT_EQ(out[0].click_ts.ms, 600);
  ASSERT_EQ(out[0].impression.features.size(), 1u);
  EXPECT_EQ(std::get<double>(out[0].impression.features[0].value), 1.5);
  // The window closing later emits nothing more.
  EXPECT_TRUE(Feed({}, 5000).empty());
  EXPECT_EQ(metrics_->positives.Get(), 1u);
  EXPECT_EQ(metrics_->negatives.Get(), 0u);
}

TEST_F(LabelJoinTest, WindowBoundsAreInclusive) {
  auto out = Feed({Imp("a", 100), Clk("a", 100), Imp("b", 100), Clk("b", 100 + kW)}, 0);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(metrics_->positives.Get(), 2u);
}

TEST_F(LabelJoinTest, NegativeOnlyWhenWatermarkPassesWindowEnd) {
  Feed({Imp("a", 100)}, 0);
  EXPECT_TRUE(Feed({}, 100 + kW).empty()) << "watermark == ts + W does not close the window";
  auto out = Feed({}, 100 + kW + 1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].label, 0);
  EXPECT_EQ(out[0].impression.impression_id, "a");
  EXPECT_EQ(out[0].click_ts, EventTime::Min());
}

TEST_F(LabelJoinTest, ClickOutsideWindowDoesNotLabel) {
  Feed({Imp("a", 100)}, 0);
  EXPECT_TRUE(Feed({Clk("a", 100 + kW + 1), Clk("a", 99)}, 0).empty());
  EXPECT_EQ(metrics_->clicks_outside_window.Get(), 2u);
  auto out = Feed({}, 100 + kW + 1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].label, 0);
}

TEST_F(LabelJoinTest, DuplicateClicksAreCountedNotEmitted) {
  Feed({Imp("a", 100)}, 0);
  EXPECT_EQ(Feed({Clk("a", 200), Clk("a", 300)}, 0).size(), 1u);
  EXPECT_TRUE(Feed({Clk("a", 400)}, 0).empty());
  EXPECT_EQ(metrics_->duplicate_clicks.Get(), 2u);
  EXPECT_TRUE(End().empty());
}

TEST_F(LabelJoinTest, ClickBeforeImpressionIsHeldThenMatched) {
  EXPECT_TRUE(Feed({Clk("a", 300)}, 0).empty());
  auto out = Feed({Imp("a", 100)}, 0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].label, 1);
  EXPECT_EQ(out[0].click_ts.ms, 300);
}

TEST_F(LabelJoinTest, EarliestHeldClickInWindowWins) {
  Feed({Clk("a", 900), Clk("a", 300), Clk("a", 50)}, 0);
  auto out = Feed({Imp("a", 100)}, 0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].click_ts.ms, 300);
  EXPECT_EQ(metrics_->duplicate_clicks.Get(), 1u);
  EXPECT_EQ(metrics_->clicks_outside_window.Get(), 1u);  // the click at 50
}

TEST_F(LabelJoinTest, OrphanClickDroppedWhenWatermarkPassesItsTs) {
  Feed({Clk("ghost", 300)}, 0);
  EXPECT_EQ(metrics_->orphan_clicks.Get(), 0u);
  Feed({}, 301);
  EXPECT_EQ(metrics_->orphan_clicks.Get(), 1u);
  // The impression arriving now is too late to match it.
  auto out = Feed({Imp("ghost", 250)}, 301);
  EXPECT_TRUE(out.empty());
  out = End();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].label, 0);
}

TEST_F(LabelJoinTest, HeldClickPastTheWatermarkIsAnOrphanEvenWithALaterOneHeld) {
  Feed({Clk("a", 300), Clk("a", 900)}, 0);
  Feed({}, 500);  // passes 300, not 900
  auto out = Feed({Imp("a", 250)}, 500);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].click_ts.ms, 900) << "the click at 300 was an orphan by then";
  EXPECT_EQ(metrics_->orphan_clicks.Get(), 1u);
}

TEST_F(LabelJoinTest, ClickBehindWatermarkWithoutImpressionIsOrphanAtOnce) {
  Feed({}, 1000);
  Feed({Clk("x", 500)}, 1000);
  EXPECT_EQ(metrics_->orphan_clicks.Get(), 1u);
}

TEST_F(LabelJoinTest, LateClickDroppedAndCountedByDefault) {
  Feed({Imp("a", 100)}, 0);
  ASSERT_EQ(Feed({}, 1200).size(), 1u);  // negative; remembered until 1600
  EXPECT_TRUE(Feed({Clk("a", 500)}, 1200).empty());
  EXPECT_EQ(metrics_->late_clicks.Get(), 1u);
  EXPECT_EQ(metrics_->corrections.Get(), 0u);
}

TEST_F(LabelJoinTest, LateClickEmitsCorrectionByOption) {
  Make(LabelJoinOptions{kW, 500, true, 16});
  Feed({Imp("a", 100)}, 0);
  ASSERT_EQ(Feed({}, 1200).size(), 1u);
  auto out = Feed({Clk("a", 500)}, 1200);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].label, 1);
  EXPECT_TRUE(out[0].correction);
  EXPECT_EQ(out[0].impression.user_id, "u-a");
  EXPECT_EQ(out[0].click_ts.ms, 500);
  // A second late click is a duplicate, not a second correction.
  EXPECT_TRUE(Feed({Clk("a", 600)}, 1200).empty());
  EXPECT_EQ(metrics_->corrections.Get(), 1u);
  EXPECT_EQ(metrics_->duplicate_clicks.Get(), 1u);
}

TEST_F(LabelJoinTest, ClosedKeysAreForgottenAfterAllowedLateness) {
  Feed({Imp("a", 100)}, 0);
  Feed({}, 100 + kW + 1);
  EXPECT_EQ(join_->state().entries_in_memory(), 1u);  // remembered for late clicks
  Feed({}, 100 + kW + 500 + 1);
  EXPECT_EQ(join_->state().entries_in_memory(), 0u);
  Feed({Clk("a", 500)}, 100 + kW + 500 + 1);
  EXPECT_EQ(metrics_->late_clicks.Get(), 0u);
  EXPECT_EQ(metrics_->orphan_clicks.Get(), 1u);
}

TEST_F(LabelJoinTest, DuplicateImpressionFirstWins) {
  Feed({Imp("a", 100)}, 0);
  Feed({Imp("a", 150)}, 0);
  auto out = Feed({Clk("a", 1120)}, 0);  // in the first's window only
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(metrics_->duplicate_impressions.Get(), 1u);
  out = End();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].impression.ts.ms, 100);
  EXPECT_EQ(out[0].label, 0);
  // Still a duplicate after its window closed.
  EXPECT_EQ(metrics_->duplicate_impressions.Get(), 1u);
}

TEST_F(LabelJoinTest, LateImpressionIsCountedAndDropped) {
  Feed({}, 5000);
  EXPECT_TRUE(Feed({Imp("a", 100)}, 5000).empty());
  EXPECT_EQ(metrics_->late_impressions.Get(), 1u);
  EXPECT_TRUE(End().empty());
}

TEST_F(LabelJoinTest, EndOfInputClosesEveryWindowAndFreesState) {
  Feed({Imp("a", 100), Imp("b", 200), Clk("b", 250), Clk("c", 300)}, 0);
  auto out = End();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].impression.impression_id, "a");
  EXPECT_EQ(metrics_->orphan_clicks.Get(), 1u);
  EXPECT_EQ(join_->state().entries_in_memory(), 0u);
}

TEST_F(LabelJoinTest, EventTimesNearTheEndOfTimeDoNotOverflow) {
  const int64_t end = std::numeric_limits<int64_t>::max();
  Feed({Imp("a", end - 10), Clk("b", end)}, 0);
  EXPECT_EQ(Feed({Clk("a", end - 5)}, 0).size(), 1u) << "still in the window";
  Feed({Imp("c", end - 1)}, 0);
  auto out = End();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].impression.impression_id, "c");
  EXPECT_EQ(metrics_->orphan_clicks.Get(), 1u);
  EXPECT_EQ(join_->state().entries_in_memory(), 0u);
}

TEST_F(LabelJoinTest, HeldClicksPerKeyAreBounded) {
  Make(LabelJoinOptions{kW, 500, false, 2});
  Feed({Clk("a", 300), Clk("a", 301), Clk("a", 302)}, 0);
  EXPECT_EQ(metrics_->duplicate_clicks.Get(), 1u);
}

TEST(LabelJoinOptionsTest, ValidateNamesTheField) {
  LabelJoinOptions o;
  o.window_ms = 0;
  Status st = o.Validate();
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("join.window_ms"), std::string::npos);
}

}  // namespace
}  // namespace ctrjoin
