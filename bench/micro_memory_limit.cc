// The memory-limit baseline for the label join (BM_LabelJoin in
// micro_label_join.cc): what one core can do at N keys when each operation
// is a single random access into a table far larger than the caches, and
// nothing else.
//
// The table: open addressing with linear probing, 16-byte slots (key, value),
// no payloads, 2^k slots at a load of 0.3–0.6, on huge pages, like the join
// state's table. Keys are the join's (xxh3-64 of "i<n>"), so the slot is the
// key's low bits. Each batch of 256 operations hashes its keys, prefetches
// their slots 16 keys ahead and then probes, so the misses overlap:
//   insert  256 new keys
//   find    256 keys inserted N/2 keys earlier
//   erase   the 256 oldest keys (backward-shift deletion, no tombstones)
// Undoing a step (so that N stays N) is not timed; CPU time, i.e.
// operations/s per core. The join is compared with this in bench/README.md.
#include <benchmark/benchmark.h>

#include <bit>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "src/core/hash.h"
#include "src/core/huge_page_allocator.h"

namespace ctrjoin::bench {
namespace {

constexpr size_t kBatch = 256;
constexpr size_t kAhead = 16;

class FlatTable {
 public:
  explicit FlatTable(size_t keys) : slots_(std::bit_ceil(keys * 5 / 3)), mask_(slots_.size() - 1) {}

  void Prefetch(uint64_t key) const { __builtin_prefetch(&slots_[Home(key)]); }

  void Insert(uint64_t key, uint64_t value) {
    key = Stored(key);
    size_t i = Home(key);
    while (slots_[i].key != 0 && slots_[i].key != key) i = (i + 1) & mask_;
    slots_[i] = Slot{key, value};
  }

  // The value of key, or 0.
  uint64_t Find(uint64_t key) const {
    key = Stored(key);
    for (size_t i = Home(key);; i = (i + 1) & mask_) {
      if (slots_[i].key == key) return slots_[i].value;
      if (slots_[i].key == 0) return 0;
    }
  }

  void Erase(uint64_t key) {
    key = Stored(key);
    size_t i = Home(key);
    while (slots_[i].key != key) {
      if (slots_[i].key == 0) return;
      i = (i + 1) & mask_;
    }
    // Backward shift: move later members of the run into the hole when
    // their home is not between the hole and them.
    for (size_t j = (i + 1) & mask_; slots_[j].key != 0; j = (j + 1) & mask_) {
      const size_t home = Home(slots_[j].key);
      if (((j - home) & mask_) >= ((j - i) & mask_)) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i] = Slot{};
  }

 private:
  struct Slot {
    uint64_t key = 0;  // 0: empty
    uint64_t value = 0;
  };
  static uint64_t Stored(uint64_t key) { return key == 0 ? 1 : key; }
  size_t Home(uint64_t key) const { return Stored(key) & mask_; }

  std::vector<Slot, HugePageAllocator<Slot>> slots_;
  const size_t mask_;
};

uint64_t Key(uint64_t n) { return ImpressionKey("i" + std::to_string(n)); }

enum class Op { kInsert, kFind, kErase };

// N keys numbered [oldest, next); kept from one benchmark to the next of
// the same size.
struct Fixture {
  explicit Fixture(size_t n) : pending(n), table(n) {
    for (; next < pending; ++next) table.Insert(Key(next), next);
  }
  const size_t pending;
  FlatTable table;
  uint64_t oldest = 0, next = 0;
};

void BM_MemoryLimit(benchmark::State& state, Op op) {
  static std::unique_ptr<Fixture> fixture;
  const auto pending = static_cast<size_t>(state.range(0));
  if (fixture == nullptr || fixture->pending != pending) {
    fixture.reset();
    fixture = std::make_unique<Fixture>(pending);
  }
  FlatTable& table = fixture->table;
  uint64_t& oldest = fixture->oldest;
  uint64_t& next = fixture->next;
  std::vector<uint64_t> keys(kBatch);
  uint64_t found = 0;
  for (auto _ : state) {
    state.PauseTiming();
    const uint64_t first = op == Op::kInsert ? next
                           : op == Op::kFind ? oldest + pending / 2
                                             : oldest;
    for (size_t i = 0; i < kBatch; ++i) keys[i] = Key(first + i);
    state.ResumeTiming();
    for (size_t i = 0; i < kAhead; ++i) table.Prefetch(keys[i]);
    for (size_t i = 0; i < kBatch; ++i) {
      if (i + kAhead < kBatch) table.Prefetch(keys[i + kAhead]);
      switch (op) {
        case Op::kInsert: table.Insert(keys[i], first + i); break;
        case Op::kFind: found += table.Find(keys[i]); break;
        case Op::kErase: table.Erase(keys[i]); break;
      }
    }
    state.PauseTiming();
    // Undo: N keys again, the window moved on by one batch.
    for (size_t i = 0; i < kBatch; ++i) {
      if (op != Op::kInsert) table.Insert(Key(next + i), next + i);
      if (op != Op::kErase) table.Erase(Key(oldest + i));
    }
    next += kBatch;
    oldest += kBatch;
    state.ResumeTiming();
  }
  benchmark::DoNotOptimize(found);
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(kBatch));
}

[[maybe_unused]] const bool kRegistered = [] {
  const struct {
    const char* name;
    Op op;
  } ops[] = {{"insert", Op::kInsert}, {"find", Op::kFind}, {"erase", Op::kErase}};
  for (int64_t pending : {1'000'000, 10'000'000}) {
    for (const auto& o : ops) {
      benchmark::RegisterBenchmark((std::string("BM_MemoryLimit/") + o.name).c_str(),
                                   BM_MemoryLimit, o.op)
          ->ArgName("pending")
          ->Arg(pending)
          ->Unit(benchmark::kMicrosecond);
    }
  }
  return true;
}();

}  // namespace
}  // namespace ctrjoin::bench
