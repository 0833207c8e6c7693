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
//   - the fetch was "live" (its bound was the wall clock when it was made)
//     and ts >= known_until: then the newest cached versions are served, and
//     a version written after the fetch is seen at most expire_after_write_ms
//     (negative entries: negative_ttl_ms) later. Replays fetch with the
//     impression's own bound and are never served this way.
//
// Bounded by entries and bytes (LRU) and by time (expire-after-write).
// Thread-safe: keys are spread over stripes, each with its own mutex. Every
// write names its row explicitly.

#include <absl/container/flat_hash_map.h>

#include <cstdint>
#include <list>
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
  std::optional<FeatureSet> Resolve(int64_t ts) const;
};

class FeatureCache {
 public:
  FeatureCache(FeatureCacheOptions options, LookupCounters* metrics);
  ~FeatureCache();

  // Features of row as of ts, if a live entry determines them. now_ms is a
  // monotonic clock for expiry. Hits and misses are counted by the caller
  // (once per batch: a shared counter per call would cost more than the hit).
  std::optional<FeatureSet> Get(std::string_view row, int64_t ts, int64_t now_ms);
  void Put(std::string_view row, std::shared_ptr<const RowVersions> versions, int64_t now_ms);

  size_t entries() const;

 private:
  struct Node {
    std::string row;
    std::shared_ptr<const RowVersions> versions;
    int64_t expires_at_ms;
    size_t bytes;  // versions, key and bookkeeping
  };
  // xxh3, computed once per call for both the stripe and the index.
  struct RowHash {
    using is_transparent = void;
    size_t operator()(std::string_view row) const;
  };
  struct Stripe {
    mutable std::mutex mu;  // protects lru, index, bytes
    std::list<Node> lru;    // most recent first
    absl::flat_hash_map<std::string_view, std::list<Node>::iterator, RowHash>
        index;  // views into lru
    size_t bytes = 0;
  };
  void EraseLocked(Stripe& s, std::list<Node>::iterator it);

  static constexpr size_t kStripes = 16;
  const FeatureCacheOptions options_;
  LookupCounters* const metrics_;
  Stripe stripes_[kStripes];
};

}  // namespace ctrjoin
