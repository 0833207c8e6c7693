// Label join micro-benchmarks: one shard's LabelJoin holding N pending
// impressions (1 thousand to 10 million), and the cost per event of
//   insert  - a batch of new impressions,
//   expire  - a watermark advance that closes the oldest windows (each emits
//             its negative sample and its state is deleted),
//   match   - a batch of clicks for impressions inserted N/2 impressions
//             earlier (cold in cache at large N), each emitting its positive.
// Every call is LabelJoin::Process on a ShardBatch of 256 events (the
// pipeline's 512-record source batch over this machine's 2 shards). Building
// the batch and undoing the step (so that N stays N) are not timed; the
// figures are CPU time of the benchmark thread, i.e. events/s per core.
//
// Impressions are small on purpose: ids "i<n>", "u<n % 1000>", "t<n % 100>",
// no features, so 10 million fit in about 2 GB (peak RSS). Impression n has event
// time start + n ms and the window is N ms, so N impressions are exactly one
// window. allowed_lateness_ms is 0, so a closed entry is forgotten in the
// same watermark advance and the state holds exactly the N pending
// impressions (the work per expired entry is the same as with lateness: a
// closed entry is put back and popped again).
//
// In memory: the state has a SpillStore, as in the pipeline, and a budget
// (6 GiB) large enough that nothing spills. BM_LabelJoinSpill: the same at 1
// million pending with a 32 MiB budget, so almost all entries live in RocksDB;
// timed in real time, since RocksDB's flushes and compactions run on its own
// threads.
//
// Counters per size, measured when the state is built:
//   payload_B            encoded impression bytes per pending entry
//   state_B_per_pending  JoinState::memory_bytes() (the state_memory_bytes
//                        gauge: table arrays, timer heap, payload capacity)
//                        minus payload, per entry
//   rss_B_per_pending    process RSS growth (after malloc_trim) minus
//                        payload, per entry: also counts malloc's overhead
//   spilled_fraction     entries in RocksDB
//
// The fixture of one size is kept for all three benchmarks of that size
// (they are registered size by size) and rebuilt when the size changes.
// match runs last: the entries it labels stay until they are the oldest.
#include <benchmark/benchmark.h>
#include <malloc.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "bench/micro_common.h"
#include "joins/join_state.h"
#include "joins/label_join.h"
#include "src/core/hash.h"
#include "src/core/state_codec.h"
#include "src/state/spill_store.h"

namespace ctrjoin::bench {
namespace {

constexpr size_t kBatch = 256;
constexpr size_t kBuildBatch = 4096;
constexpr int64_t kStartTs = 1'767'225'600'000;
constexpr size_t kInMemoryBudget = 6ull << 30;
constexpr size_t kSpillBudget = 32ull << 20;
constexpr size_t kSpillStoreMemory = 64ull << 20;  // RocksDB block cache + memtables

size_t RssBytes() {
  std::ifstream statm("/proc/self/statm");
  size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

// A fresh directory under $TMPDIR for one fixture's RocksDB, removed with it.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "ctrjoin-micro-XXXXXX").string();
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }  // empty if it could not be made

 private:
  std::string path_;
};

// One shard's label join with `pending` impressions in it, numbered
// [oldest_, next_). Steps keep the count at `pending` when undone.
class PendingJoin {
 public:
  static Result<std::unique_ptr<PendingJoin>> Build(size_t pending, bool spill) {
    std::unique_ptr<PendingJoin> f(new PendingJoin(pending, spill));
    if (f->dir_.path().empty()) return Status::IoError("cannot create a scratch directory");
    SpillStoreOptions store;
    store.dir = f->dir_.path();
    store.rocksdb_memory_bytes = kSpillStoreMemory;
    Result<std::unique_ptr<SpillStore>> opened = SpillStore::Open(store);
    if (!opened.ok()) return opened.status();
    f->store_ = std::move(opened).value();
    LabelJoinOptions options;
    options.window_ms = static_cast<int64_t>(pending);
    options.allowed_lateness_ms = 0;
    JoinState state(0, f->store_.get(), spill ? kSpillBudget : kInMemoryBudget, &f->metrics_);
    f->join_ = std::make_unique<LabelJoin>(options, std::move(state), &f->metrics_);

    malloc_trim(0);
    const size_t rss_before = RssBytes();
    size_t payload = 0;
    std::string encoded;
    while (f->next_ < pending) {
      ShardBatch batch = f->Impressions(std::min(kBuildBatch, pending - f->next_));
      for (const KeyedEvent& e : batch.events) {
        encoded.clear();
        EncodeImpression(std::get<Impression>(e.event), encoded);
        payload += encoded.size();
      }
      CTRJOIN_RETURN_IF_ERROR(f->Process(batch));
    }
    f->out_ = {};
    malloc_trim(0);
    const size_t rss_after = RssBytes();
    const auto n = static_cast<double>(pending);
    f->payload_per_entry_ = static_cast<double>(payload) / n;
    f->state_per_entry_ =
        (static_cast<double>(f->join_->state().memory_bytes()) - static_cast<double>(payload)) / n;
    f->rss_per_entry_ = (static_cast<double>(rss_after) - static_cast<double>(rss_before) -
                         static_cast<double>(payload)) /
                        n;
    f->spilled_fraction_ = static_cast<double>(f->join_->state().entries_spilled()) / n;
    return f;
  }

  // The next `count` impressions; the watermark stays.
  ShardBatch Impressions(size_t count) {
    ShardBatch batch;
    batch.watermark = watermark_;
    batch.events.reserve(count);
    for (size_t i = 0; i < count; ++i, ++next_) {
      Impression imp;
      imp.impression_id = "i" + std::to_string(next_);
      imp.user_id = "u" + std::to_string(next_ % 1000);
      imp.item_id = "t" + std::to_string(next_ % 100);
      imp.ts = Ts(next_);
      const uint64_t key = ImpressionKey(imp.impression_id);
      batch.events.push_back(KeyedEvent{key, std::move(imp)});
    }
    return batch;
  }

  // No events; a watermark that closes the windows of the oldest `count`.
  ShardBatch Expiry(size_t count) {
    oldest_ += count;
    watermark_ = EventTime{Ts(oldest_ - 1).ms + window_ms() + 1};
    ShardBatch batch;
    batch.watermark = watermark_;
    return batch;
  }

  // Clicks, 1 ms after their impressions, for the `count` impressions from
  // pending/2 past the oldest on. Undone by Impressions(count) and
  // Expiry(count), the next call clicks the next `count`.
  ShardBatch Clicks(size_t count) {
    ShardBatch batch;
    batch.watermark = watermark_;
    batch.events.reserve(count);
    const uint64_t first = oldest_ + pending_ / 2;
    for (uint64_t n = first; n < first + count; ++n) {
      Click click{"i" + std::to_string(n), EventTime{Ts(n).ms + 1}};
      const uint64_t key = ImpressionKey(click.impression_id);
      batch.events.push_back(KeyedEvent{key, std::move(click)});
    }
    return batch;
  }

  Status Process(ShardBatch& batch) {
    out_.clear();
    return join_->Process(batch, out_);
  }

  void ReportCounters(benchmark::State& state) const {
    state.counters["payload_B"] = payload_per_entry_;
    state.counters["state_B_per_pending"] = state_per_entry_;
    state.counters["rss_B_per_pending"] = rss_per_entry_;
    state.counters["spilled_fraction"] = spilled_fraction_;
  }

  size_t pending() const { return pending_; }
  bool spill() const { return spill_; }

 private:
  PendingJoin(size_t pending, bool spill) : pending_(pending), spill_(spill) {}
  int64_t window_ms() const { return static_cast<int64_t>(pending_); }
  static EventTime Ts(uint64_t n) { return EventTime{kStartTs + static_cast<int64_t>(n)}; }

  const size_t pending_;
  const bool spill_;
  ScratchDir dir_;
  JoinMetrics metrics_;
  std::unique_ptr<SpillStore> store_;
  std::unique_ptr<LabelJoin> join_;
  std::vector<Sample> out_;
  uint64_t oldest_ = 0;
  uint64_t next_ = 0;
  EventTime watermark_ = EventTime::Min();
  double payload_per_entry_ = 0, state_per_entry_ = 0, rss_per_entry_ = 0, spilled_fraction_ = 0;
};

// The fixture of the size being benchmarked.
std::unique_ptr<PendingJoin> g_fixture;

// The fixture of that size; the previous one is freed first.
PendingJoin* Fixture(benchmark::State& state, size_t pending, bool spill) {
  if (g_fixture == nullptr || g_fixture->pending() != pending || g_fixture->spill() != spill) {
    g_fixture.reset();
    Result<std::unique_ptr<PendingJoin>> built = PendingJoin::Build(pending, spill);
    if (!built.ok()) {
      state.SkipWithError(built.status().ToString().c_str());
      return nullptr;
    }
    g_fixture = std::move(built).value();
  }
  return g_fixture.get();
}

enum class Step { kInsert, kExpire, kMatch };

void BM_LabelJoin(benchmark::State& state, Step step, bool spill) {
  PendingJoin* f = Fixture(state, static_cast<size_t>(state.range(0)), spill);
  if (f == nullptr) return;
  Status st = Status::Ok();
  for (auto _ : state) {
    state.PauseTiming();
    ShardBatch batch = step == Step::kInsert   ? f->Impressions(kBatch)
                       : step == Step::kExpire ? f->Expiry(kBatch)
                                               : f->Clicks(kBatch);
    state.ResumeTiming();
    st = f->Process(batch);
    state.PauseTiming();
    if (st.ok() && step != Step::kInsert) {
      ShardBatch refill = f->Impressions(kBatch);
      st = f->Process(refill);
    }
    if (st.ok() && step != Step::kExpire) {
      ShardBatch expiry = f->Expiry(kBatch);
      st = f->Process(expiry);
    }
    state.ResumeTiming();
    if (!st.ok()) {
      state.SkipWithError(st.ToString().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(kBatch));
  f->ReportCounters(state);
}

// Size by size, so that one fixture serves the three steps of its size.
[[maybe_unused]] const bool kRegistered = [] {
  const struct {
    const char* name;
    Step step;
  } steps[] = {{"insert", Step::kInsert}, {"expire", Step::kExpire}, {"match", Step::kMatch}};
  for (int64_t pending : {1'000, 10'000, 100'000, 1'000'000, 10'000'000}) {
    for (const auto& s : steps) {
      benchmark::RegisterBenchmark((std::string("BM_LabelJoin/") + s.name).c_str(), BM_LabelJoin,
                                   s.step, false)
          ->ArgName("pending")
          ->Arg(pending)
          ->Unit(benchmark::kMicrosecond);
    }
  }
  for (const auto& s : steps) {
    benchmark::RegisterBenchmark((std::string("BM_LabelJoinSpill/") + s.name).c_str(), BM_LabelJoin,
                                 s.step, true)
        ->ArgName("pending")
        ->Arg(1'000'000)
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
  }
  return true;
}();

}  // namespace

void ReleaseLabelJoinFixture() { g_fixture.reset(); }

}  // namespace ctrjoin::bench
