#include "joins/lookup_service.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <iterator>

#include "src/core/clock.h"

namespace ctrjoin {

namespace {

using Clock = std::chrono::steady_clock;

constexpr int64_t kMaxAsOfOffsetMs = 366LL * 24 * 3600 * 1000;

}  // namespace

Status LookupSpec::Validate(const std::string& prefix) const {
  if (name.empty()) return Status::InvalidArgument(prefix + ".name: must not be empty");
  if (name.find('.') != std::string::npos) {
    // "a" and "a.b" would both name a feature "a.b.c" (columns "b.c" and "c").
    return Status::InvalidArgument(
        prefix + ".name: '" + name +
        "' must not contain '.' (it prefixes the features: name.column)");
  }
  if (table.empty()) return Status::InvalidArgument(prefix + ".table: must not be empty");
  if (family.empty()) return Status::InvalidArgument(prefix + ".family: must not be empty");
  if (max_versions < 1 || max_versions > 100) {
    return Status::InvalidArgument(prefix + ".max_versions: must be in [1, 100]");
  }
  if (as_of_offset_ms < 0 || as_of_offset_ms > kMaxAsOfOffsetMs) {
    return Status::InvalidArgument(prefix + ".as_of_offset_ms: must be in [0, 1 year]");
  }
  CTRJOIN_RETURN_IF_ERROR(cache.Validate(prefix + ".cache"));
  return ColumnDecls(prefix).status();
}

Result<FeatureDecls> LookupSpec::ColumnDecls(const std::string& prefix) const {
  return ParseFeatureDecls(columns, prefix + ".columns");
}

Status LookupServiceOptions::Validate() const {
  if (io_threads < 1 || io_threads > 256) {
    return Status::InvalidArgument("lookup.io_threads: must be in [1, 256]");
  }
  if (max_batch < 1 || max_batch > 10'000) {
    return Status::InvalidArgument("lookup.max_batch: must be in [1, 10000]");
  }
  if (max_batch_delay_us < 0)
    return Status::InvalidArgument("lookup.max_batch_delay_us: must be >= 0");
  if (deadline_ms <= 0) return Status::InvalidArgument("lookup.deadline_ms: must be > 0");
  if (retry_initial_ms <= 0 || retry_max_ms < retry_initial_ms) {
    return Status::InvalidArgument(
        "lookup.retry_initial_ms: must be > 0 and <= lookup.retry_max_ms");
  }
  if (live_horizon_ms < 0) return Status::InvalidArgument("lookup.live_horizon_ms: must be >= 0");
  if (breaker_failures < 1 || breaker_failures > 1000) {
    return Status::InvalidArgument("lookup.breaker_failures: must be in [1, 1000]");
  }
  return Status::Ok();
}

// A row fetch shared by every impression waiting for that row (coalescing).
// Its waiters are touched under mu_; the rest by the io thread holding it.
struct LookupService::Waiter {
  int64_t ts;
  bool recent;  // within the live horizon: may be served by the staleness rule
  Completion done;
  Clock::time_point since;  // when this impression asked: its own deadline
};

struct LookupService::Request {
  size_t lookup = 0;
  std::string row;
  std::string key;  // in pending_
  bool live = false;
  int64_t upper = 0;  // exclusive version bound; live requests set it when sent
  std::vector<Waiter> waiters;
  int attempts = 0;
  Clock::time_point enqueued;
  Clock::time_point not_before;
};

// The lookups of one EnrichAsync call. Results are written by completions
// on io threads (each to its own slot); the last arrival assembles them.
struct LookupService::BatchState {
  LookupService* service;
  std::vector<Impression*> impressions;
  std::vector<FeatureSet> results;  // [impression * lookups + lookup]
  std::vector<char> gave_up;        // same index
  std::atomic<size_t> remaining{0};
  std::function<void(Status)> done;

  void Arrive() {
    if (remaining.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    const size_t lookups = service->lookups_.size();
    bool any_gave_up = false;
    for (size_t i = 0; i < impressions.size(); ++i) {
      for (size_t l = 0; l < lookups; ++l) {
        const size_t idx = i * lookups + l;
        if (gave_up[idx]) {
          impressions[i]->features_partial = true;
          any_gave_up = true;
        } else {
          service->AddFeatures(l, results[idx].get(), impressions[i]->lookup_features);
        }
      }
    }
    if (any_gave_up && service->cancelled_.load()) {
      done(Status::Unavailable("feature lookups were cancelled while pending"));
      return;
    }
    done(Status::Ok());
  }
};

LookupService::LookupService(LookupServiceOptions options, std::vector<LookupSpec> lookups,
                             FeatureStore* store, LookupMetrics* metrics)
    : options_(options),
      lookups_(std::move(lookups)),
      store_(store),
      metrics_(metrics),
      reachability_(store->Describe(), &metrics->store_unreachable_since_ms),
      ready_(lookups_.size()),
      breaker_({options.breaker_failures, options.retry_initial_ms, options.retry_max_ms},
               &metrics->breaker_state, &metrics->breaker_openings) {
  for (const LookupSpec& spec : lookups_) {
    counters_.push_back(&metrics_->For(spec.name));
    caches_.push_back(std::make_unique<FeatureCache>(spec.cache, counters_.back()));
    // Validate() has refused declarations that do not parse.
    Result<FeatureDecls> columns = spec.ColumnDecls(spec.name);
    columns_.push_back(columns.ok() ? std::move(*columns) : FeatureDecls{});
  }
  for (int i = 0; i < options_.io_threads; ++i) threads_.emplace_back([this] { IoLoop(); });
}

LookupService::~LookupService() {
  Cancel();
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void LookupService::EnrichAsync(std::vector<Impression*> impressions,
                                std::function<void(Status)> done) {
  auto state = std::make_shared<BatchState>();
  const size_t lookups = lookups_.size();
  const size_t slots = impressions.size() * lookups;
  state->service = this;
  state->impressions = std::move(impressions);
  state->results.resize(slots);
  state->gave_up.resize(slots);
  state->remaining.store(slots + 1);  // +1: held until every lookup is issued
  state->done = std::move(done);
  const int64_t now = MonotonicMs();
  const int64_t recent_from = WallClockMs() - options_.live_horizon_ms;
  std::vector<uint64_t> hits(lookups, 0);
  for (size_t i = 0; i < state->impressions.size(); ++i) {
    const Impression& imp = *state->impressions[i];
    for (size_t l = 0; l < lookups; ++l) {
      const size_t idx = i * lookups + l;
      const LookupSpec& spec = lookups_[l];
      const std::string& row = spec.key_field == LookupKey::kUserId ? imp.user_id : imp.item_id;
      const int64_t as_of = imp.ts.ms - spec.as_of_offset_ms;
      bool cannot_tell = false;
      if (std::optional<FeatureSet> hit =
              caches_[l]->Get(row, as_of, now, as_of >= recent_from, &cannot_tell)) {
        ++hits[l];
        state->results[idx] = std::move(*hit);
        state->Arrive();
        continue;
      }
      // A cached row whose history below as_of was cut: only an exact read
      // can tell, a newer bound would only add newer versions.
      Submit(l, row, as_of, /*exact=*/cannot_tell, [state, idx](std::optional<FeatureSet> r) {
        if (r) {
          state->results[idx] = std::move(*r);
        } else {
          state->gave_up[idx] = 1;
        }
        state->Arrive();
      });
    }
  }
  for (size_t l = 0; l < lookups; ++l) {
    counters_[l]->cache_hits.Add(hits[l]);
    counters_[l]->cache_misses.Add(state->impressions.size() - hits[l]);
  }
  state->Arrive();
}

void LookupService::Submit(size_t lookup, const std::string& row, int64_t ts, bool exact,
                           Completion done) {
  // Every lookup but an exact one fetches with the wall clock as bound, so one
  // read answers every later impression of the row whose version the cached
  // history holds (joins/README.md, "Point in time").
  const bool recent = ts >= WallClockMs() - options_.live_horizon_ms;
  const bool live = !exact;
  std::string key = std::to_string(lookup);
  key.push_back('\x1f');
  key.append(row);
  key.push_back('\x1f');
  key.append(live ? "live" : std::to_string(ts + 1));
  std::unique_lock<std::mutex> lock(mu_);
  if (cancelled_.load()) {
    lock.unlock();
    done(std::nullopt);
    return;
  }
  if (auto it = pending_.find(key); it != pending_.end()) {
    it->second->waiters.push_back({ts, recent, std::move(done), Clock::now()});
    counters_[lookup]->coalesced.Add();
    return;
  }
  auto r = std::make_shared<Request>();
  r->lookup = lookup;
  r->row = row;
  r->key = key;
  r->live = live;
  r->upper = live ? 0 : ts + 1;
  r->enqueued = Clock::now();
  r->waiters.push_back({ts, recent, std::move(done), r->enqueued});
  pending_.emplace(std::move(key), r);
  ready_[lookup].push_back(std::move(r));
  counters_[lookup]->requests.Add();
  lock.unlock();
  cv_.notify_one();
}

void LookupService::IoLoop() {
  const auto max_delay = std::chrono::microseconds(options_.max_batch_delay_us);
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    if (cancelled_.load()) {
      // Complete everything pending, in flight or waiting, with no features.
      std::vector<std::shared_ptr<Request>> all;
      for (auto& [key, r] : pending_) all.push_back(r);
      pending_.clear();
      retry_.clear();
      for (auto& q : ready_) q.clear();
      std::vector<Waiter> waiters;
      for (auto& r : all) {
        for (auto& w : r->waiters) waiters.push_back(std::move(w));
        r->waiters.clear();
      }
      lock.unlock();
      for (auto& w : waiters) w.done(std::nullopt);
      lock.lock();
      cv_.wait_for(lock, std::chrono::milliseconds(100));
      continue;
    }
    const auto now = Clock::now();
    auto next_retry = now + std::chrono::milliseconds(100);
    for (auto it = retry_.begin(); it != retry_.end();) {
      if ((*it)->not_before <= now) {
        ready_[(*it)->lookup].push_back(std::move(*it));
        it = retry_.erase(it);
      } else {
        next_retry = std::min(next_retry, (*it)->not_before);
        ++it;
      }
    }
    size_t chosen = ready_.size();
    for (size_t k = 0; k < ready_.size(); ++k) {
      const size_t l = (next_lookup_ + k) % ready_.size();
      if (!ready_[l].empty()) {
        chosen = l;
        break;
      }
    }
    if (chosen == ready_.size()) {
      cv_.wait_until(lock, next_retry);
      continue;
    }
    // An open breaker holds every batch back: one backoff for all rows.
    if (std::optional<Clock::time_point> later = breaker_.Admit(now)) {
      if (options_.emit_partial) ExpireHeldBack(lock);
      cv_.wait_until(lock, std::min(*later, next_retry));
      continue;
    }
    std::deque<std::shared_ptr<Request>>& queue = ready_[chosen];
    const auto fill_by = queue.front()->enqueued + max_delay;
    if (queue.size() < options_.max_batch && now < fill_by) {
      cv_.wait_until(lock, std::min(fill_by, next_retry));
      continue;
    }
    next_lookup_ = chosen + 1;
    std::vector<std::shared_ptr<Request>> batch;
    while (!queue.empty() && batch.size() < options_.max_batch) {
      batch.push_back(std::move(queue.front()));
      queue.pop_front();
    }
    lock.unlock();
    Fetch(chosen, batch);
    lock.lock();
  }
}

void LookupService::AddFeatures(size_t lookup, const std::vector<Feature>* found,
                                std::vector<Feature>& out) const {
  const size_t begin = out.size();
  if (found != nullptr) out.insert(out.end(), found->begin(), found->end());
  const std::string& name = lookups_[lookup].name;
  for (const auto& [column, decl] : columns_[lookup]) {
    if (!decl.default_value) continue;
    const auto is_column = [&, &column = column](const Feature& f) {
      return f.name.size() == name.size() + 1 + column.size() && f.name.starts_with(name) &&
             f.name[name.size()] == '.' && f.name.ends_with(column);
    };
    if (std::none_of(out.begin() + begin, out.end(), is_column)) {
      out.push_back(Feature{name + "." + column, *decl.default_value});
    }
  }
}

void LookupService::Fetch(size_t lookup, std::vector<std::shared_ptr<Request>>& batch) {
  const LookupSpec& spec = lookups_[lookup];
  const int64_t wall = WallClockMs();
  std::vector<FeatureFetch> fetches;
  fetches.reserve(batch.size());
  for (auto& r : batch) {
    if (r->live) r->upper = wall + 1;  // everything written up to now
    fetches.push_back(FeatureFetch{r->row, r->upper});
  }
  const auto start = Clock::now();
  Result<std::vector<FetchedRow>> rows =
      store_->GetMultiple(spec.table, spec.family, fetches, spec.max_versions);
  LookupCounters& counters = *counters_[lookup];
  counters.store_calls.Add();
  counters.latency.Record(Clock::now() - start);
  if (rows.ok() && rows->size() == batch.size()) {
    reachability_.Reached();
    {
      std::lock_guard<std::mutex> lock(mu_);
      breaker_.Succeeded();
    }
    cv_.notify_all();
    const std::string prefix = spec.name + ".";
    const int64_t now = MonotonicMs();
    size_t rejected = 0;
    std::string first_rejected;
    for (size_t i = 0; i < batch.size(); ++i) {
      const bool described = !first_rejected.empty();
      const size_t rejected_before = rejected;
      auto versions =
          RowVersions::Make((*rows)[i], prefix, spec.max_versions, batch[i]->upper, batch[i]->live,
                            columns_[lookup], &rejected, &first_rejected);
      if (!described && !first_rejected.empty()) first_rejected += " (row '" + batch[i]->row + "')";
      // Counted before its impressions go on: a sample is never out before
      // the count of what was left out of it.
      if (rejected > rejected_before) counters.cells_rejected.Add(rejected - rejected_before);
      caches_[lookup]->Put(batch[i]->row, versions, now);
      Complete(*batch[i], versions);
    }
    if (rejected > 0) {
      static std::atomic<int64_t> last_warning_ms{0};
      if (now - last_warning_ms.load() >= 1000) {
        last_warning_ms.store(now);
        spdlog::warn("feature lookup '{}': {} cell(s) not of their declared type, left out: {}",
                     spec.name, rejected, first_rejected);
      }
    }
    return;
  }
  const Status error =
      rows.ok() ? Status::Internal("store returned the wrong number of rows") : rows.status();
  counters.errors.Add();
  reachability_.Lost(error);
  static std::atomic<int64_t> last_warning_ms{0};
  const int64_t now_ms = MonotonicMs();
  if (now_ms - last_warning_ms.load() >= 1000) {
    last_warning_ms.store(now_ms);
    spdlog::warn("feature lookup '{}' ({} rows) failed, retrying: {}", spec.name, batch.size(),
                 error.ToString());
  }
  std::vector<Waiter> give_up;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto now = Clock::now();
    breaker_.Failed(now);
    for (auto& r : batch) {
      ++r->attempts;
      if (options_.emit_partial && TakeExpired(*r, now, give_up)) continue;
      r->not_before =
          now + JitteredBackoff(r->attempts, options_.retry_initial_ms, options_.retry_max_ms);
      retry_.push_back(r);
      counters.retries.Add();
    }
  }
  cv_.notify_all();
  for (Waiter& w : give_up) w.done(std::nullopt);
}

bool LookupService::TakeExpired(Request& r, Clock::time_point now, std::vector<Waiter>& give_up) {
  // Each impression has its own deadline, counted from when it asked.
  const auto deadline = std::chrono::milliseconds(options_.deadline_ms);
  auto expired = std::stable_partition(r.waiters.begin(), r.waiters.end(),
                                       [&](const Waiter& w) { return now - w.since < deadline; });
  counters_[r.lookup]->partial.Add(static_cast<uint64_t>(r.waiters.end() - expired));
  std::move(expired, r.waiters.end(), std::back_inserter(give_up));
  r.waiters.erase(expired, r.waiters.end());
  if (!r.waiters.empty()) return false;
  if (auto it = pending_.find(r.key); it != pending_.end() && it->second.get() == &r) {
    pending_.erase(it);
  }
  return true;
}

void LookupService::ExpireHeldBack(std::unique_lock<std::mutex>& lock) {
  const auto now = Clock::now();
  std::vector<Waiter> give_up;
  const auto expired = [&](const std::shared_ptr<Request>& r) {
    return TakeExpired(*r, now, give_up);
  };
  for (auto& queue : ready_) std::erase_if(queue, expired);
  std::erase_if(retry_, expired);
  if (give_up.empty()) return;
  lock.unlock();
  for (Waiter& w : give_up) w.done(std::nullopt);
  lock.lock();
}

void LookupService::Complete(const Request& request,
                             const std::shared_ptr<const RowVersions>& versions) {
  std::vector<Waiter> waiters;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = pending_.find(request.key);
        it != pending_.end() && it->second.get() == &request) {
      pending_.erase(it);
    }
    waiters = std::move(const_cast<Request&>(request).waiters);
  }
  for (Waiter& w : waiters) {
    if (std::optional<FeatureSet> answer = versions->Resolve(w.ts, w.recent)) {
      w.done(std::move(*answer));
    } else {
      // These versions cannot tell (the row's history below ts was cut at
      // max_versions by newer versions): ask exactly for this ts.
      Submit(request.lookup, request.row, w.ts, /*exact=*/true, std::move(w.done));
    }
  }
}

}  // namespace ctrjoin
