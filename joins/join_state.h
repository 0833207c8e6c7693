#pragma once
// JoinState: one shard's keyed, event-time-bounded join state.
//
// Every key (xxh3 of an impression id) has at most one entry, which moves
// through a small state machine driven by the label join:
//
//   kHeldClicks ─► kPending ─► kLabeled ─► kClosedPositive ─► (deleted)
//                      └─────────────────► kClosedNegative ─► (deleted)
//
// Each entry has one event-time deadline; PopExpired(wm) removes and returns
// every entry whose deadline is strictly below wm, so nothing outlives its
// window plus allowed lateness.
//
// Memory: entries live in an in-memory hash map while the shard's hot-state
// budget allows (the map's arrays, timers and filter included, and the
// transient peak of the map growing). EnforceBudget() moves the entries with the latest deadlines
// (needed last) to the SpillStore (RocksDB): the entry itself under a timer
// key ordered by deadline (so expiry is one range scan), and its deadline
// under a key by impression key (so Find can locate it). Find() brings a spilled entry back into
// memory. A Bloom filter over the spilled keys keeps lookups of keys that were never spilled (every
// new impression) away from RocksDB.
//
// Checkpoints (SetChangelog): every Put is also appended to the shard's
// changelog, with its horizon: the later of its deadline and the deadline
// of the live entry it replaces. Expiry appends nothing: restoring from the
// log drops every entry whose deadline the marker's watermark has passed,
// and a segment is deleted only once the watermark has passed every horizon
// in it, so a deleted record can never leave an older one of its key alive
// (src/README.md, "State and checkpoints"). The spill store is a cache: it is rebuilt
// from the log on restore. Mark() is a checkpoint: O(1), one marker.
//
// Called only from the owning shard's thread. Owns its map and timer heap;
// borrows the SpillStore (one per shard in the pipeline), the changelog and
// the metrics.

#include <absl/container/flat_hash_map.h>
#include <absl/functional/function_ref.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "joins/join_metrics.h"
#include "joins/key_filter.h"
#include "src/core/event.h"
#include "src/core/huge_page_allocator.h"
#include "src/core/status.h"
#include "src/state/changelog.h"
#include "src/state/spill_store.h"

namespace ctrjoin {

enum class EntryState : uint8_t {
  kHeldClicks = 0,      // clicks waiting for their impression; payload = click ts list
  kPending = 1,         // impression waiting for a click; payload = encoded impression
  kLabeled = 2,         // positive emitted, window still open (duplicates detected)
  kClosedPositive = 3,  // window closed after a positive
  kClosedNegative = 4,  // negative emitted; payload kept only for corrections
};

// An entry's bytes (an encoded impression, or held clicks' timestamps): one
// heap block of an 8-byte length and the bytes, null when empty. 8 bytes in
// the entry where a std::string took 32. Copying copies the block.
class Payload {
 public:
  Payload() = default;
  explicit Payload(std::string_view bytes);
  Payload(const Payload& other) : Payload(other.view()) {}
  Payload(Payload&& other) noexcept : block_(std::exchange(other.block_, nullptr)) {}
  Payload& operator=(Payload other) noexcept {
    std::swap(block_, other.block_);
    return *this;
  }
  ~Payload() { std::free(block_); }

  std::string_view view() const {
    if (block_ == nullptr) return {};
    size_t n;
    std::memcpy(&n, block_, sizeof n);
    return {block_ + sizeof n, n};
  }
  size_t size() const { return view().size(); }
  bool empty() const { return block_ == nullptr; }
  const void* block() const { return block_; }  // for prefetching
  size_t heap_bytes() const { return block_ == nullptr ? 0 : sizeof(size_t) + size(); }
  friend bool operator==(const Payload& a, const Payload& b) { return a.view() == b.view(); }

 private:
  char* block_ = nullptr;
};

struct JoinEntry {
  EntryState state = EntryState::kPending;
  int64_t impression_ts = 0;  // ms; unused for kHeldClicks
  int64_t deadline = 0;       // ms; expires once the watermark is > deadline
  Payload payload;
};
static_assert(sizeof(JoinEntry) == 32);

class JoinState {
 public:
  // store may be null: then nothing is ever spilled (tests, tiny runs).
  JoinState(uint32_t shard, SpillStore* store, size_t memory_budget_bytes, JoinMetrics* metrics);
  // Moving hands the gauges' share over: only the new owner takes it back.
  JoinState(JoinState&& other) noexcept;
  ~JoinState();

  // The entry for key, or nullptr. A spilled entry is brought back into memory.
  // The pointer is valid until the next non-const call; it is for reading:
  // a change must go through Put, or the changelog misses it.
  Result<JoinEntry*> Find(uint64_t key);
  // Inserts or replaces the entry for key (invalidates pointers from Find).
  // A key that may be spilled must be Found first (the label join always
  // does), or it would be held twice.
  void Put(uint64_t key, JoinEntry entry);
  // Hints that key is about to be Found or Put: its slot is fetched into
  // the cache meanwhile. Callers issue it some keys ahead, so that the
  // misses of a batch overlap (joins/README.md, "Join state").
  void Prefetch(uint64_t key) const { map_.prefetch(key); }
  // The second step, a few keys ahead, once the slot is in the cache: the
  // entry's payload, which lives behind a pointer.
  void PrefetchPayload(uint64_t key) const {
    if (auto it = map_.find(key); it != map_.end()) __builtin_prefetch(it->second.payload.block());
  }
  // Hands every entry with deadline < watermark to `close`, in deadline order,
  // until none is left: first those in memory, then the spilled ones, again
  // as long as closing made more expire. `close` may change the entry: if it
  // returns true the entry stays, as changed (its next deadline, another
  // state; logged as a Put would be), closed in place rather than erased
  // and inserted again; if false, it is deleted (and not logged). An entry
  // kept with a deadline the watermark has passed comes back in the next
  // round, so `close` must not keep an entry for ever.
  Status Expire(EventTime watermark, absl::FunctionRef<Result<bool>(uint64_t, JoinEntry&)> close);
  // Removes and returns every entry with deadline < watermark, in deadline order.
  Status PopExpired(EventTime watermark, std::vector<std::pair<uint64_t, JoinEntry>>& out);
  // Spills to RocksDB when the hot state is over budget. Call once per batch.
  Status EnforceBudget();

  // Appends every Put to log (borrowed) from now on, for checkpoints.
  // Call before the first change.
  void SetChangelog(ChangelogWriter* log) { log_ = log; }
  // A checkpoint: appends epoch's marker with the watermark the state has
  // expired up to. Needs a changelog.
  Result<ChangelogPosition> Mark(uint64_t epoch, EventTime watermark);
  // Waits (any thread) until epoch's marker is durable.
  std::function<Status()> DurableWaiter(uint64_t epoch) const {
    return [log = log_, epoch] { return log->WaitDurable(epoch); };
  }
  // Restoring: a key not in the state yet, with the entry as the log held
  // it, appended to this state's log as is. Timers are ordered once, by
  // FinishRestore, which must come before the next PopExpired.
  void PutRestored(uint64_t key, JoinEntry entry, std::string_view encoded);
  void FinishRestore();
  uint64_t changelog_bytes() const { return log_ != nullptr ? log_->bytes_appended() : 0; }

  size_t memory_bytes() const;
  size_t entries_in_memory() const { return map_.size(); }
  size_t entries_spilled() const { return spilled_; }

 private:
  struct Timer {
    int64_t deadline;
    uint64_t key;
    auto operator<=>(const Timer&) const = default;
  };

  // The table and the timer heap are large and randomly accessed: huge pages.
  using Map =
      absl::flat_hash_map<uint64_t, JoinEntry, absl::Hash<uint64_t>, std::equal_to<uint64_t>,
                          HugePageAllocator<std::pair<const uint64_t, JoinEntry>>>;

  void PushTimer(int64_t deadline, uint64_t key);
  void LogPut(uint64_t key, const JoinEntry& entry, int64_t horizon);
  // Pops every timer due at watermark into due_, stale ones included.
  void PopDueTimers(EventTime watermark);
  void AddBytes(const JoinEntry& e, int sign);
  std::string EntryKey(uint64_t key) const;
  std::string TimerKey(int64_t deadline, uint64_t key) const;
  Status Spill(size_t target_bytes, size_t min_victims);
  Status GrowFilter(size_t keys);
  Status PopExpiredSpilled(EventTime watermark, std::vector<std::pair<uint64_t, JoinEntry>>& out);
  void PublishGauges();

  const uint32_t shard_;
  SpillStore* const store_;
  const size_t budget_bytes_;
  JoinMetrics* const metrics_;

  Map map_;
  std::vector<Timer, HugePageAllocator<Timer>> timers_;  // min-heap; stale timers skipped on pop
  std::vector<Timer> due_;                               // scratch of Expire
  std::vector<std::pair<uint64_t, JoinEntry>> spilled_due_;  // scratch of Expire
  size_t payload_bytes_ = 0;
  size_t spilled_ = 0;
  ChangelogWriter* log_ = nullptr;
  std::string encoded_;       // scratch: an entry's header, for the changelog
  KeyFilter spilled_filter_;  // every spilled key (and some since removed)
  size_t filter_added_ = 0;   // keys added to the filter since it was built
  int64_t spill_scan_from_ = std::numeric_limits<int64_t>::min();  // last expiry bound

  // Last values published to the shared gauges (which sum over shards).
  int64_t published_entries_ = 0;
  int64_t published_bytes_ = 0;
  int64_t published_spilled_ = 0;
};

// Serialisation of an entry for the spill store and the changelog.
void EncodeEntry(const JoinEntry& e, std::string& out);
Status DecodeEntry(std::string_view in, JoinEntry& out);

// Reads one shard's changelog (dir) as of epoch's marker and hands every
// entry still alive then whose key `wanted` accepts to `restore`, each key
// once, in no particular order. The caller Puts them into the shard that
// now owns the key (the shard count may have changed).
// `encoded` is the entry as the log holds it (valid during the call).
// epoch kChangelogEnd reads the whole log, as of its last marker. Returns
// the watermark of the marker it stopped at (EventTime::Min() if none).
Result<EventTime> ReplayJoinChangelog(
    const std::string& dir, uint64_t epoch, const std::function<bool(uint64_t key)>& wanted,
    const std::function<Status(uint64_t key, JoinEntry entry, std::string_view encoded)>& restore);

}  // namespace ctrjoin
