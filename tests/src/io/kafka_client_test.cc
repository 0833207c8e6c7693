// Kafka's default partitioner as ctrjoin computes it (src/io/kafka_client.h):
// the partition a Java client, or librdkafka with partitioner=murmur2_random,
// gives a key. Group mode's co-partitioning check depends on it.

#include "src/io/kafka_client.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace ctrjoin {
namespace {

// Kafka's partition of a key: murmur2's value made positive (the sign bit
// cleared), modulo the partition count.
int32_t JavaPartition(int32_t murmur2, int32_t partitions) {
  return static_cast<int32_t>((static_cast<uint32_t>(murmur2) & 0x7fffffffu) %
                              static_cast<uint32_t>(partitions));
}

TEST(KafkaDefaultPartitionTest, IsWhatTheJavaClientChooses) {
  // murmur2 values of Kafka's own unit tests (Utils.murmur2).
  const std::vector<std::pair<std::string, int32_t>> known = {
      {"21", -973932308},
      {"foobar", -790332482},
      {"a-little-bit-long-string", -985981536},
      {"a-little-bit-longer-string", -1486304829},
      {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
      {"abc", 479470107},
      {"1", -1993445489},
      {"12345", -1188365604},
  };
  for (const auto& [key, murmur2] : known) {
    for (int32_t partitions : {1, 2, 3, 8, 12, 1000, 65'521, 2'147'483'647}) {
      EXPECT_EQ(KafkaDefaultPartition(key, partitions), JavaPartition(murmur2, partitions))
          << "key '" << key << "', " << partitions << " partitions";
    }
  }
}

}  // namespace
}  // namespace ctrjoin

namespace ctrjoin {
namespace {

// Bytes as librdkafka's range assignor writes them (version 0, user data
// empty): imp [0, 2], clk [0, 2].
std::string AssignmentBytes() {
  std::string b;
  auto i16 = [&](int v) { b += {static_cast<char>(v >> 8), static_cast<char>(v & 0xff)}; };
  auto i32 = [&](int v) {
    for (int shift = 24; shift >= 0; shift -= 8) b += static_cast<char>((v >> shift) & 0xff);
  };
  i16(0);
  i32(2);
  for (const std::string topic : {"imp", "clk"}) {
    i16(static_cast<int>(topic.size()));
    b += topic;
    i32(2);
    i32(0);
    i32(2);
  }
  i32(0);  // user data
  return b;
}

TEST(ParseConsumerAssignmentTest, ReadsTopicsAndPartitions) {
  Result<std::map<std::string, std::vector<int32_t>>> parsed =
      ParseConsumerAssignment(AssignmentBytes());
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(*parsed,
            (std::map<std::string, std::vector<int32_t>>{{"clk", {0, 2}}, {"imp", {0, 2}}}));
  // No bytes: no partitions (a member between a join and its assignment).
  Result<std::map<std::string, std::vector<int32_t>>> empty = ParseConsumerAssignment("");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(ParseConsumerAssignmentTest, BytesCutShortAreRefused) {
  const std::string bytes = AssignmentBytes();
  for (size_t cut : {size_t{1}, size_t{5}, size_t{8}, size_t{12}, size_t{20}}) {
    EXPECT_EQ(ParseConsumerAssignment(std::string_view(bytes).substr(0, cut)).status().code(),
              StatusCode::kInvalidArgument)
        << cut;
  }
}

}  // namespace
}  // namespace ctrjoin
