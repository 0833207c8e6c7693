#pragma once
// KeyFilter: a blocked Bloom filter over 64-bit keys that are already good
// hashes (xxh3). JoinState keeps one over its spilled keys so that a lookup
// of a key that was never spilled (every new impression) does not touch
// RocksDB. No false negatives; about 1% false positives at 10 bits per key.
// Deletions are not supported: a removed key only costs a RocksDB read.
//
// Owned and called by one shard thread.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ctrjoin {

class KeyFilter {
 public:
  // Sized for `capacity` keys at 10 bits each (at least one block).
  explicit KeyFilter(size_t capacity = 0);

  void Add(uint64_t key);
  bool MayContain(uint64_t key) const;
  void Clear();

  size_t capacity() const { return capacity_; }
  size_t memory_bytes() const { return blocks_.size() * sizeof(Block); }

 private:
  struct Block {
    uint64_t words[8];  // one cache line
  };
  static constexpr int kProbes = 6;

  const Block& BlockOf(uint64_t key) const;

  size_t capacity_;
  std::vector<Block> blocks_;
};

}  // namespace ctrjoin
