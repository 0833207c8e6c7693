#include "src/ops/reachability.h"

#include <gtest/gtest.h>

namespace ctrjoin {
namespace {

using namespace std::chrono_literals;

// One line when the brokers go, one when they are back, whatever the number
// of connection errors in between.
TEST(ReachabilityTest, OneLineWhenLostAndOneWhenReachedAgain) {
  Reachability b("source.kafka: brokers");
  const Reachability::Clock::time_point t0{std::chrono::seconds(1'767'225'600)};
  EXPECT_EQ(b.Reached(t0), std::nullopt) << "nothing to say while reachable";
  const Status cause = Status::Unavailable("Local: Broker transport failure (_TRANSPORT)");
  EXPECT_EQ(b.Lost(cause, t0),
            "source.kafka: brokers unreachable since 00:00:00 UTC: Local: Broker transport failure "
            "(_TRANSPORT)");
  EXPECT_FALSE(b.reachable());
  for (int i = 0; i < 40; ++i) EXPECT_EQ(b.Lost(cause, t0 + 1s), std::nullopt);
  EXPECT_EQ(b.Reached(t0 + 12300ms),
            "source.kafka: brokers reachable again after 12.3 s (41 errors)");
  EXPECT_TRUE(b.reachable());
  EXPECT_EQ(b.Reached(t0 + 13s), std::nullopt);
  EXPECT_NE(b.Lost(cause, t0 + 20s), std::nullopt) << "a new outage is told again";
}

}  // namespace
}  // namespace ctrjoin
