// The tag ctrjoin writes into the offsets it commits (src/io/kafka_source.h):
// the epoch, and in mode group the committing process's instance. Older tags
// (epoch only) and foreign metadata must still read right.

#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "src/io/kafka_source.h"

namespace ctrjoin {
namespace {

TEST(CommitTagTest, EpochAndInstanceRoundTrip) {
  const CommitTag tag{42, "0123abcd"};
  EXPECT_EQ(tag.Format(), "ctrjoin-epoch=42 instance=0123abcd");
  const std::optional<CommitTag> back = CommitTag::Parse(tag.Format());
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->epoch, 42u);
  EXPECT_EQ(back->instance, "0123abcd");
}

TEST(CommitTagTest, AnEpochOnlyTagHasNoInstance) {
  EXPECT_EQ((CommitTag{7, ""}.Format()), "ctrjoin-epoch=7");
  const std::optional<CommitTag> tag = CommitTag::Parse("ctrjoin-epoch=7");
  ASSERT_TRUE(tag.has_value());
  EXPECT_EQ(tag->epoch, 7u);
  EXPECT_TRUE(tag->instance.empty());
}

TEST(CommitTagTest, OtherMetadataIsNoTag) {
  for (const std::string& metadata :
       {std::string(), std::string("ctrjoin-epoch="), std::string("ctrjoin-epoch=x"),
        std::string("epoch=7"), std::string("something else")}) {
    EXPECT_FALSE(CommitTag::Parse(metadata).has_value()) << metadata;
  }
}

}  // namespace
}  // namespace ctrjoin
