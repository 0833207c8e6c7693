// HugePageAllocator: small arrays from operator new, large ones mapped on
// their own at a 2 MiB boundary; both usable to their last element, and a
// container that grows past the threshold keeps its contents.
#include "src/core/huge_page_allocator.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace ctrjoin {
namespace {

TEST(HugePageAllocatorTest, LargeArraysAreAlignedToTwoMebibytesAndUsable) {
  HugePageAllocator<uint64_t> alloc;
  for (size_t n : {kHugePage / 8, kHugePage / 8 + 1, 3 * kHugePage / 8 + 5}) {
    uint64_t* p = alloc.allocate(n);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % kHugePage, 0u) << n;
    for (size_t i = 0; i < n; ++i) p[i] = i;
    EXPECT_EQ(p[n - 1], n - 1);
    alloc.deallocate(p, n);
  }
}

TEST(HugePageAllocatorTest, SmallArraysComeFromTheHeap) {
  HugePageAllocator<uint64_t> alloc;
  uint64_t* p = alloc.allocate(16);
  p[15] = 7;
  EXPECT_EQ(p[15], 7u);
  alloc.deallocate(p, 16);
}

TEST(HugePageAllocatorTest, AVectorKeepsItsContentsAcrossTheThreshold) {
  std::vector<uint32_t, HugePageAllocator<uint32_t>> v;
  for (uint32_t i = 0; i < 3 * kHugePage / sizeof(uint32_t); ++i) v.push_back(i);
  for (uint32_t i = 0; i < v.size(); i += 4099) ASSERT_EQ(v[i], i);
  EXPECT_EQ(v.back(), v.size() - 1);
}

}  // namespace
}  // namespace ctrjoin
