#pragma once
// Hashing helpers. The sample id and the shard of a key are both derived from
// xxh3-64 of the impression id, so they are stable across runs and replays.

#include <xxhash.h>

#include <cstdint>
#include <string_view>

namespace ctrjoin {

inline uint64_t ImpressionKey(std::string_view impression_id) {
  return XXH3_64bits(impression_id.data(), impression_id.size());
}

inline uint32_t ShardOf(uint64_t key, uint32_t shards) {
  return static_cast<uint32_t>(key % shards);
}

}  // namespace ctrjoin
