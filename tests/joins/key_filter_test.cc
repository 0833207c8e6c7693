#include "joins/key_filter.h"

#include <gtest/gtest.h>

#include "src/core/hash.h"

namespace ctrjoin {
namespace {

TEST(KeyFilterTest, NoFalseNegativesAndFewFalsePositives) {
  KeyFilter filter(100'000);
  for (int i = 0; i < 100'000; ++i) filter.Add(ImpressionKey("in-" + std::to_string(i)));
  for (int i = 0; i < 100'000; ++i) {
    ASSERT_TRUE(filter.MayContain(ImpressionKey("in-" + std::to_string(i)))) << i;
  }
  int false_positives = 0;
  for (int i = 0; i < 100'000; ++i) {
    false_positives += filter.MayContain(ImpressionKey("out-" + std::to_string(i))) ? 1 : 0;
  }
  EXPECT_LT(false_positives, 3'000);  // about 1% expected at 10 bits per key
  EXPECT_EQ(filter.memory_bytes(), (100'000 * 10 + 511) / 512 * 64);
}

TEST(KeyFilterTest, ClearForgetsEverything) {
  KeyFilter filter(10);
  filter.Add(42);
  EXPECT_TRUE(filter.MayContain(42));
  filter.Clear();
  EXPECT_FALSE(filter.MayContain(42));
}

}  // namespace
}  // namespace ctrjoin
