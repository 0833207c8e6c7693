#include "src/core/state_codec.h"

#include <gtest/gtest.h>

namespace ctrjoin {
namespace {

TEST(StateCodecTest, ImpressionRoundTrips) {
  Impression imp{"imp-1",
                 std::string("user\0x", 6),  // an embedded NUL survives
                 "item",
                 EventTime{1'767'225'600'123},
                 {{"a", 1.25},
                  {"b", std::string("ios")},
                  {"c", std::vector<double>{1, -2.5}},
                  {"empty", std::vector<double>{}},
                  {"id", int64_t{-9223372036854775807 - 1}},
                  {"ids", std::vector<int64_t>{16777217, -1}}}};
  imp.lookup_features = {{"user.age", int64_t{34}}, {"item.tags", std::string("a,b")}};
  imp.features_partial = true;
  std::string bytes;
  EncodeImpression(imp, bytes);
  Impression back;
  ASSERT_TRUE(DecodeImpression(bytes, back).ok());
  EXPECT_EQ(back, imp);
}

TEST(StateCodecTest, TruncatedInputIsCorruption) {
  Impression imp{"imp-1", "u", "i", EventTime{5}, {{"a", 1.0}}};
  std::string bytes;
  EncodeImpression(imp, bytes);
  for (size_t n = 0; n < bytes.size(); ++n) {
    Impression back;
    EXPECT_FALSE(DecodeImpression(std::string_view(bytes).substr(0, n), back).ok()) << n;
  }
  Impression back;
  EXPECT_FALSE(DecodeImpression(bytes + "x", back).ok());
}

TEST(StateCodecTest, BigEndianSortsLikeNumbers) {
  std::string a, b;
  PutBigEndian64(a, 255);
  PutBigEndian64(b, 256);
  EXPECT_LT(a, b);
  EXPECT_EQ(ReadBigEndian64(b.data()), 256u);
}

}  // namespace
}  // namespace ctrjoin
