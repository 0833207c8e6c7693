#pragma once
// Hashing helpers. The sample id and the key group of a key are both derived
// from xxh3-64 of the impression id, so they are stable across runs and
// replays.

#include <xxhash.h>

#include <cstdint>
#include <string_view>

namespace ctrjoin {

inline uint64_t ImpressionKey(std::string_view impression_id) {
  return XXH3_64bits(impression_id.data(), impression_id.size());
}

// Keyed state is divided into `count` key groups, fixed when a job is
// created; shard i of `shards` owns the contiguous range of groups g with
// g * shards / count == i. So the shard count may change between restarts
// (a restore hands each group to its new owner) while a key's group never
// does.
struct KeyGroups {
  uint32_t count = 256;
  uint32_t shards = 1;  // at most count

  uint32_t GroupOf(uint64_t key) const { return static_cast<uint32_t>(key % count); }
  uint32_t ShardOfGroup(uint32_t group) const {
    return static_cast<uint32_t>(static_cast<uint64_t>(group) * shards / count);
  }
  uint32_t ShardOf(uint64_t key) const { return ShardOfGroup(GroupOf(key)); }
};

}  // namespace ctrjoin
