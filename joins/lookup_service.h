#pragma once
// LookupService: the asynchronous lookup join that enriches impressions with
// historical features (joins/README.md, "Feature enrichment"). It implements the
// pipeline's Enricher interface.
//
// For each impression and each configured lookup (e.g. user: table
// user_features, row = user_id) it asks the lookup's FeatureCache for the
// features as of the impression's ts. Misses become row requests:
//   - coalesced: concurrent misses for one row share one request;
//   - batched: io threads take up to max_batch requests of one lookup, waiting
//     at most max_batch_delay_us for a batch to fill, into one GetMultiple;
//   - bounded: at most io_threads store calls run at once; the pipeline's
//     source's tokens bound the batches (so the requests) waiting on lookups, which
//     back-pressures the sources when the store is slow;
//   - retried with jittered exponential backoff, and held back as a whole
//     while the store's circuit breaker is open (store_breaker.h). By
//     default a lookup is retried until it succeeds — no sample is ever
//     emitted with silently missing features; with emit_partial, a lookup
//     still failing deadline_ms after its impression asked completes
//     without its features (checked after each failed call, and while the
//     breaker holds the batches back) and the impression is flagged partial.
// Every request completes exactly once (features, a miss = no features, or
// partial); Cancel() completes all pending ones with an error.
//
// Point in time: a miss is fetched with the wall clock as bound (the newest
// max_versions versions), so its entry answers every impression of the row
// whose version it holds, a replay's included; only when those versions
// cannot tell (history below ts cut by newer versions) is ts fetched exactly,
// with the bound [0, ts + 1). An impression within live_horizon_ms of the
// wall clock may also be served the newest cached versions (see
// feature_cache.h for the staleness this allows); an older one never is.
//
// Threads: EnrichAsync from pipeline threads (never blocks on I/O); io_threads
// own threads run the store calls and the completions. Owns its threads,
// caches and request table; borrows the store and metrics.

#include <absl/container/flat_hash_map.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "joins/feature_cache.h"
#include "joins/feature_store.h"
#include "joins/lookup_metrics.h"
#include "joins/store_breaker.h"
#include "src/core/enum_names.h"
#include "src/ops/reachability.h"
#include "src/pipeline/enricher.h"

namespace ctrjoin {

// The impression field whose value is the looked-up row.
enum class LookupKey { kUserId, kItemId };
constexpr auto NamesOf(LookupKey) {
  return std::to_array<NamedValue<LookupKey>>(
      {{LookupKey::kUserId, "user_id"}, {LookupKey::kItemId, "item_id"}});
}

struct LookupSpec {
  std::string name;   // required; prefixes the features: "user.age"
  std::string table;  // required
  std::string family = "f";
  LookupKey key_field = LookupKey::kUserId;
  int max_versions = 3;  // versions per column fetched (and cached)
  FeatureCacheOptions cache;
  // Declared columns: column -> "<type>" or "<type>=<default>"
  // (src/core/feature_type.h). A cell not of its column's type is left out
  // (counted); a declared column a row lacks takes its default, if any.
  std::map<std::string, std::string> columns;
  // Features as of ts - as_of_offset_ms, for feature pipelines that land
  // their values late: a value written at t is only used from t + offset.
  int64_t as_of_offset_ms = 0;

  // The declarations in `columns`; errors name "<prefix>.columns.<column>".
  Result<FeatureDecls> ColumnDecls(const std::string& prefix) const;

  Status Validate(const std::string& prefix) const;  // prefix: "lookups[0]"
};

struct LookupServiceOptions {
  int io_threads = 4;
  size_t max_batch = 64;
  int64_t max_batch_delay_us = 500;
  int64_t deadline_ms = 10'000;
  int64_t retry_initial_ms = 10;
  int64_t retry_max_ms = 2'000;
  bool emit_partial = false;
  int64_t live_horizon_ms = 60'000;
  int breaker_failures = 3;  // consecutive failed store calls that open the breaker

  Status Validate() const;  // "lookup.io_threads: ..."
};

class LookupService : public Enricher {
 public:
  LookupService(LookupServiceOptions options, std::vector<LookupSpec> lookups, FeatureStore* store,
                LookupMetrics* metrics);
  ~LookupService() override;  // cancels, then joins the io threads

  void EnrichAsync(std::vector<Impression*> impressions, std::function<void(Status)> done) override;
  // Completes every pending and future lookup with an error. Only sets a
  // flag (async-signal-safe); io threads notice within 100 ms.
  void Cancel() override { cancelled_.store(true, std::memory_order_relaxed); }

 private:
  struct BatchState;
  struct Request;
  struct Waiter;
  // One impression's lookup result: features, or nullopt when given up.
  using Completion = std::function<void(std::optional<FeatureSet>)>;

  void Submit(size_t lookup, const std::string& row, int64_t ts, bool exact, Completion done);
  void IoLoop();
  void Fetch(size_t lookup, std::vector<std::shared_ptr<Request>>& batch);
  // emit_partial: moves r's waiters past deadline_ms into give_up; true
  // when none is left (r then leaves pending_). Under mu_.
  bool TakeExpired(Request& r, std::chrono::steady_clock::time_point now,
                   std::vector<Waiter>& give_up);
  // emit_partial, while the breaker holds batches back: gives up every
  // waiting lookup past its deadline. Called with `lock` held; releases it
  // to complete them.
  void ExpireHeldBack(std::unique_lock<std::mutex>& lock);
  void Complete(const Request& request, const std::shared_ptr<const RowVersions>& versions);
  // Appends lookup's features (none: the row has none) and the defaults of
  // its declared columns the row lacks.
  void AddFeatures(size_t lookup, const std::vector<Feature>* found,
                   std::vector<Feature>& out) const;

  const LookupServiceOptions options_;
  const std::vector<LookupSpec> lookups_;
  FeatureStore* const store_;
  LookupMetrics* const metrics_;
  Reachability reachability_;                          // the store's outages, for the log
  std::vector<LookupCounters*> counters_;              // one per lookup, in metrics_
  std::vector<std::unique_ptr<FeatureCache>> caches_;  // one per lookup
  std::vector<FeatureDecls> columns_;                  // one per lookup: its declared columns

  std::mutex mu_;  // protects pending_, ready_, retry_, stop_, next_lookup_, breaker_
  std::condition_variable cv_;
  absl::flat_hash_map<std::string, std::shared_ptr<Request>> pending_;  // coalescing key ->
  std::vector<std::deque<std::shared_ptr<Request>>> ready_;  // per lookup, waiting for a thread
  std::vector<std::shared_ptr<Request>> retry_;              // failed, waiting for their backoff
  size_t next_lookup_ = 0;                                   // round robin over lookups
  StoreBreaker breaker_;
  bool stop_ = false;
  std::atomic<bool> cancelled_{false};
  std::vector<std::thread> threads_;
};

}  // namespace ctrjoin
