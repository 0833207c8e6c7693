#pragma once
// The version-aware keyed cache in front of a FeatureStore (one cache per
// lookup, e.g. "user"), and the rule that decides whether cached versions
// answer "features of this row as of ts" exactly.
//
// An entry holds what one fetch returned for a row: per column its newest
// versions below the fetch's bound `known_until`. It answers ts exactly when
//   - ts < known_until, and for every column either a cached version <= ts
//     exists or the column's history below known_until is complete (the
//     store returned fewer than max_versions versions), or
//   - the fetch was "live" (its bound was the wall clock when it was made),
//     ts >= known_until and the asking impression is recent (within the
//     lookup service's live horizon): then the newest cached versions are
//     served, and a version written after the fetch is seen at most
//     expire_after_write_ms (negative entries: negative_ttl_ms) later.
//     Historical impressions (replays) are never served this way: which rule
//     applies is decided by the asker, not by whoever fetched the entry.
//
// Bounded by entries and bytes (CLOCK, an approximate LRU) and by time
// (expire-after-write). Thread-safe: keys are spread over stripes, each with
// its own mutex, held on a hit for one table probe. Every write names its
// row explicitly.

#include <absl/container/flat_hash_map.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "joins/feature_store.h"
#include "joins/lookup_metrics.h"
#include "src/core/event.h"
#include "src/core/feature_type.h"

namespace ctrjoin {

struct FeatureCacheOptions {
  size_t max_entries = 1'000'000;
  size_t max_mb = 256;
  int64_t expire_after_write_ms = 60'000;
  int64_t negative_ttl_ms = 10'000;  // rows with no features

  Status Validate(const std::string& prefix) const;
};

using FeatureSet = std::shared_ptr<const std::vector<Feature>>;

// What one fetch told about one row. Immutable once built; shared.
struct RowVersions {
  struct Column {
    std::string name;  // prefixed, e.g. "user.age"
    // Newest first; nullopt for a cell whose text is not of the column's
    // declared type (the feature is absent where that version applies).
    std::vector<std::pair<int64_t, std::optional<FeatureValue>>> versions;
    bool complete = false;  // every version below known_until is here
  };
  int64_t known_until = 0;
  bool live = false;
  std::vector<Column> columns;
  FeatureSet newest;           // the newest version of every column
  int64_t newest_version = 0;  // the largest version among columns
  size_t bytes = 0;            // approximate memory held

  // Builds from a store row; prefix is "user." etc. A cell becomes a value
  // of its column's type in `columns`, or of the inferred type
  // (src/core/feature_type.h); a cell that is not of its declared type is
  // counted in *rejected (if given) and, if *first is empty, described there.
  static std::shared_ptr<const RowVersions> Make(const FetchedRow& row, const std::string& prefix,
                                                 int max_versions, int64_t known_until, bool live,
                                                 const FeatureDecls& columns = {},
                                                 size_t* rejected = nullptr,
                                                 std::string* first = nullptr);
  // The features as of ts, or nullopt when these versions cannot tell.
  // `recent`: the asker may be served by the staleness rule above.
  std::optional<FeatureSet> Resolve(int64_t ts, bool recent = true) const;
};

class FeatureCache {
 public:
  FeatureCache(FeatureCacheOptions options, LookupCounters* metrics);
  ~FeatureCache();

  // Features of row as of ts, if an unexpired entry determines them
  // (RowVersions::Resolve; `recent` as there). now_ms is a monotonic clock
  // for expiry. Hits and misses are counted by the caller (once per batch: a
  // shared counter per call would cost more than the hit).
  // On a miss, *cannot_tell (if given) says whether an unexpired entry was
  // there whose history below ts was cut: a fetch with a newer bound cannot
  // help then, only an exact one.
  std::optional<FeatureSet> Get(std::string_view row, int64_t ts, int64_t now_ms,
                                bool recent = true, bool* cannot_tell = nullptr);
  // Caches versions as the row's entry. An exact entry (not live) does not
  // displace an unexpired live one: the live entry answers every later ts it
  // holds, the exact one only ts below its own bound.
  void Put(std::string_view row, std::shared_ptr<const RowVersions> versions, int64_t now_ms);

  size_t entries() const;

 private:
  // A row's entry, in its stripe's table beside the row (one slot: the hit
  // path reads this slot and the versions' block, nothing else).
  struct Entry {
    std::shared_ptr<const RowVersions> versions;
    int64_t expires_at_ms = 0;
    size_t bytes = 0;         // versions, key and bookkeeping; not its turn in the clock
    uint64_t generation = 0;  // which of the row's turns in the clock is its own
    bool referenced = false;  // hit since the clock hand last passed it
  };
  // xxh3, computed once per call for both the stripe and the index.
  struct RowHash {
    using is_transparent = void;
    size_t operator()(std::string_view row) const;
  };
  // Eviction is CLOCK (second chance), an approximation of LRU whose hit
  // only sets a flag: rows wait in `clock` in the order they were cached; the
  // hand evicts the first whose entry was not hit since it last passed,
  // giving hit ones another turn.
  struct Stripe {
    mutable std::mutex mu;  // protects everything below
    absl::flat_hash_map<std::string, Entry, RowHash, std::equal_to<>> index;
    std::deque<std::pair<std::string, uint64_t>> clock;  // turns: row, generation
    uint64_t next_generation = 0;
    size_t bytes = 0;  // the entries and every turn in the clock, stale ones included
  };
  using Turn = std::pair<std::string, uint64_t>;
  static size_t TurnBytes(const Turn& turn) { return sizeof(Turn) + turn.first.size(); }
  void AddBytesLocked(Stripe& s, int64_t delta);
  // Erases an entry; its turn stays in the clock (and counted) until dropped.
  void EraseLocked(Stripe& s, decltype(Stripe::index)::iterator it);
  // Moves the hand until it evicts one entry; false when the clock is empty.
  bool EvictOneLocked(Stripe& s);
  // Drops the turns of erased or replaced entries.
  void CompactLocked(Stripe& s);

  static constexpr size_t kStripes = 16;
  const FeatureCacheOptions options_;
  LookupCounters* const metrics_;
  Stripe stripes_[kStripes];
};

}  // namespace ctrjoin
