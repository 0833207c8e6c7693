#pragma once
// HugePageAllocator: an allocator for large, randomly accessed arrays (the
// join state's hash table and timer heap).
//
// An array of at least kHugePage bytes is mapped on its own, aligned to
// 2 MiB and madvised MADV_HUGEPAGE, so that with transparent huge pages in
// mode `madvise` (Debian's default) a random access costs one TLB entry per
// 2 MiB instead of per 4 KiB; smaller arrays come from operator new. Where
// huge pages are not available the advice is ignored and the mapping is an
// ordinary one. Memory is counted by the caller as before (capacity times
// element size): the rounding up to 2 MiB is at most one page per array.
//
// Stateless and thread-safe: any thread may allocate and free.

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <new>

namespace ctrjoin {

inline constexpr size_t kHugePage = size_t{2} << 20;

namespace huge_page_detail {

inline size_t RoundUp(size_t bytes) { return (bytes + kHugePage - 1) & ~(kHugePage - 1); }

// Maps `bytes` (a multiple of kHugePage) at a 2 MiB boundary, or nullptr.
inline void* MapAligned(size_t bytes) {
  const size_t span = bytes + kHugePage;
  void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const auto start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (start + kHugePage - 1) & ~(uintptr_t{kHugePage} - 1);
  // Give back the unaligned head and the tail beyond `bytes`.
  if (aligned > start) munmap(raw, aligned - start);
  const uintptr_t end = aligned + bytes;
  if (start + span > end) munmap(reinterpret_cast<void*>(end), start + span - end);
  madvise(reinterpret_cast<void*>(aligned), bytes, MADV_HUGEPAGE);
  return reinterpret_cast<void*>(aligned);
}

}  // namespace huge_page_detail

template <typename T>
class HugePageAllocator {
 public:
  using value_type = T;

  HugePageAllocator() = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) noexcept {}  // NOLINT: rebinding is implicit

  T* allocate(size_t n) {
    const size_t bytes = n * sizeof(T);
    if (bytes < kHugePage) return static_cast<T*>(::operator new(bytes));
    void* p = huge_page_detail::MapAligned(huge_page_detail::RoundUp(bytes));
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<T*>(p);
  }

  void deallocate(T* p, size_t n) noexcept {
    const size_t bytes = n * sizeof(T);
    if (bytes < kHugePage) {
      ::operator delete(p);
      return;
    }
    munmap(p, huge_page_detail::RoundUp(bytes));
  }

  template <typename U>
  bool operator==(const HugePageAllocator<U>&) const noexcept {
    return true;
  }
};

}  // namespace ctrjoin
