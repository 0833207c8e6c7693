#pragma once
// A (topic, partition) key, ordered so maps iterate topic by topic, which is
// also the grouping every Kafka response uses. A plain value.

#include <compare>
#include <cstdint>
#include <string>

namespace ctrjoin::testbroker {

struct TopicPartition {
  std::string topic;
  std::int32_t partition = 0;

  auto operator<=>(const TopicPartition&) const = default;
};

}  // namespace ctrjoin::testbroker
