#include "joins/key_filter.h"

#include <algorithm>

namespace ctrjoin {

namespace {
// Probe bits come from a remixed key, independent of the block choice.
uint64_t Remix(uint64_t key) { return key * 0x9E3779B97F4A7C15ull; }
}  // namespace

KeyFilter::KeyFilter(size_t capacity)
    : capacity_(capacity), blocks_(std::max<size_t>(1, (capacity * 10 + 511) / 512)) {
  Clear();
}

void KeyFilter::Clear() {
  for (Block& b : blocks_) std::fill(std::begin(b.words), std::end(b.words), 0);
}

const KeyFilter::Block& KeyFilter::BlockOf(uint64_t key) const {
  // The high half picks the block (multiply-shift, no division).
  const uint64_t n = blocks_.size();
  return blocks_[static_cast<size_t>(((key >> 32) * n) >> 32)];
}

void KeyFilter::Add(uint64_t key) {
  Block& b = const_cast<Block&>(BlockOf(key));
  uint64_t h = Remix(key);
  for (int i = 0; i < kProbes; ++i) {
    const unsigned bit = h & 511;
    b.words[bit >> 6] |= 1ull << (bit & 63);
    h = (h >> 9) | (h << 55);
  }
}

bool KeyFilter::MayContain(uint64_t key) const {
  const Block& b = BlockOf(key);
  uint64_t h = Remix(key);
  for (int i = 0; i < kProbes; ++i) {
    const unsigned bit = h & 511;
    if ((b.words[bit >> 6] & (1ull << (bit & 63))) == 0) return false;
    h = (h >> 9) | (h << 55);
  }
  return true;
}

}  // namespace ctrjoin
