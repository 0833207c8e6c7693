// StoreBreaker's states on a given clock: closed until the configured run
// of failures, open for a backoff that grows with each reopening, half-open
// with exactly one call out, closed again by a success.
#include "joins/store_breaker.h"

#include <gtest/gtest.h>

namespace ctrjoin {
namespace {

using namespace std::chrono_literals;
using Clock = StoreBreaker::Clock;

class StoreBreakerTest : public ::testing::Test {
 protected:
  StoreBreaker breaker_{
      {.failures_to_open = 3, .initial_ms = 100, .max_ms = 1000}, &state_, &openings_};
  Gauge state_;
  Counter openings_;
  Clock::time_point t0_ = Clock::now();
};

TEST_F(StoreBreakerTest, OpensAfterTheConfiguredRunOfFailuresOnly) {
  breaker_.Failed(t0_);
  breaker_.Failed(t0_);
  breaker_.Succeeded();  // a success breaks the run
  breaker_.Failed(t0_);
  breaker_.Failed(t0_);
  EXPECT_EQ(breaker_.state(), BreakerState::kClosed);
  EXPECT_FALSE(breaker_.Admit(t0_).has_value());
  breaker_.Failed(t0_);
  EXPECT_EQ(breaker_.state(), BreakerState::kOpen);
  EXPECT_EQ(state_.Get(), static_cast<int64_t>(BreakerState::kOpen));
  EXPECT_EQ(openings_.Get(), 1u);
  // Held back for the first backoff: 100 ms +-50%.
  std::optional<Clock::time_point> later = breaker_.Admit(t0_);
  ASSERT_TRUE(later.has_value());
  EXPECT_GE(*later - t0_, 50ms);
  EXPECT_LE(*later - t0_, 150ms);
}

TEST_F(StoreBreakerTest, HalfOpenLetsOneProbeThroughAndItsOutcomeDecides) {
  for (int i = 0; i < 3; ++i) breaker_.Failed(t0_);
  const Clock::time_point t1 = t0_ + 200ms;  // past the first backoff
  EXPECT_FALSE(breaker_.Admit(t1).has_value()) << "the probe goes";
  EXPECT_EQ(breaker_.state(), BreakerState::kHalfOpen);
  EXPECT_TRUE(breaker_.Admit(t1).has_value()) << "only one call while half-open";

  breaker_.Failed(t1);  // the probe failed: open again, longer
  EXPECT_EQ(breaker_.state(), BreakerState::kOpen);
  EXPECT_EQ(openings_.Get(), 2u);
  std::optional<Clock::time_point> later = breaker_.Admit(t1);
  ASSERT_TRUE(later.has_value());
  EXPECT_GE(*later - t1, 100ms) << "second backoff: 200 ms +-50%";

  const Clock::time_point t2 = t1 + 400ms;
  EXPECT_FALSE(breaker_.Admit(t2).has_value());
  breaker_.Succeeded();
  EXPECT_EQ(breaker_.state(), BreakerState::kClosed);
  EXPECT_EQ(state_.Get(), 0);
  EXPECT_FALSE(breaker_.Admit(t2).has_value());
  EXPECT_FALSE(breaker_.Admit(t2).has_value()) << "closed: every call goes";
}

TEST_F(StoreBreakerTest, BackoffStopsGrowingAtItsMaximum) {
  Clock::time_point t = t0_;
  for (int i = 0; i < 3; ++i) breaker_.Failed(t);
  for (int round = 0; round < 10; ++round) {
    t += 2s;
    ASSERT_FALSE(breaker_.Admit(t).has_value());
    breaker_.Failed(t);
  }
  std::optional<Clock::time_point> later = breaker_.Admit(t);
  ASSERT_TRUE(later.has_value());
  EXPECT_LE(*later - t, 1500ms) << "max_ms 1000 +50%";
  EXPECT_EQ(openings_.Get(), 11u);
}

}  // namespace
}  // namespace ctrjoin
