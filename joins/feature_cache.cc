#include "joins/feature_cache.h"

#include <algorithm>
#include <map>

#include "src/core/hash.h"

namespace ctrjoin {

namespace {

size_t ValueBytes(const FeatureValue& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return sizeof(FeatureValue) + s->capacity();
  if (const auto* a = std::get_if<std::vector<double>>(&v)) {
    return sizeof(FeatureValue) + a->capacity() * sizeof(double);
  }
  if (const auto* a = std::get_if<std::vector<int64_t>>(&v)) {
    return sizeof(FeatureValue) + a->capacity() * sizeof(int64_t);
  }
  return sizeof(FeatureValue);
}

// A cell's value: of the column's declared type, or inferred.
Result<FeatureValue> DecodeCell(const FeatureDecls& columns, std::string_view column,
                                std::string_view text) {
  const auto decl = columns.find(column);
  if (decl == columns.end()) return InferFeatureText(text);
  return ParseFeatureText(text, decl->second.type);
}

}  // namespace

Status FeatureCacheOptions::Validate(const std::string& prefix) const {
  if (max_entries == 0) return Status::InvalidArgument(prefix + ".max_entries: must be > 0");
  if (max_mb == 0) return Status::InvalidArgument(prefix + ".max_mb: must be > 0");
  if (expire_after_write_ms <= 0) {
    return Status::InvalidArgument(prefix + ".expire_after_write_ms: must be > 0");
  }
  if (negative_ttl_ms <= 0)
    return Status::InvalidArgument(prefix + ".negative_ttl_ms: must be > 0");
  return Status::Ok();
}

std::shared_ptr<const RowVersions> RowVersions::Make(const FetchedRow& row,
                                                     const std::string& prefix, int max_versions,
                                                     int64_t known_until, bool live,
                                                     const FeatureDecls& columns, size_t* rejected,
                                                     std::string* first) {
  auto rv = std::make_shared<RowVersions>();
  rv->known_until = known_until;
  rv->live = live;
  std::map<std::string_view, size_t> by_column;  // column -> index in rv->columns
  for (const FeatureCell& cell : row.cells) {
    auto [it, inserted] = by_column.try_emplace(cell.column, rv->columns.size());
    if (inserted) rv->columns.push_back(Column{prefix + cell.column, {}, false});
    Result<FeatureValue> value = DecodeCell(columns, cell.column, cell.value);
    std::optional<FeatureValue> kept;
    if (value.ok()) {
      kept = std::move(*value);
    } else {
      if (rejected != nullptr) ++*rejected;
      if (first != nullptr && first->empty()) {
        *first = prefix + cell.column + " at version " + std::to_string(cell.version) + ": " +
                 value.status().message();
      }
    }
    rv->columns[it->second].versions.emplace_back(cell.version, std::move(kept));
  }
  auto newest = std::make_shared<std::vector<Feature>>();
  rv->bytes = sizeof(RowVersions);
  for (Column& c : rv->columns) {
    std::sort(c.versions.begin(), c.versions.end(),
              [](const auto& a, const auto& b) { return a.first > b.first; });
    c.complete = static_cast<int>(c.versions.size()) < max_versions;
    if (c.versions.front().second) newest->push_back(Feature{c.name, *c.versions.front().second});
    rv->newest_version = std::max(rv->newest_version, c.versions.front().first);
    rv->bytes += sizeof(Column) + c.name.capacity() + sizeof(Feature) + c.name.size();
    for (const auto& v : c.versions) {
      rv->bytes += sizeof(int64_t) + (v.second ? 2 * ValueBytes(*v.second) : sizeof(FeatureValue));
    }
  }
  rv->newest = std::move(newest);
  return rv;
}

std::optional<FeatureSet> RowVersions::Resolve(int64_t ts, bool recent) const {
  if (ts >= known_until) {
    if (live && recent) return newest;
    return std::nullopt;
  }
  if (ts >= newest_version) return newest;  // every column's newest version is <= ts
  auto out = std::make_shared<std::vector<Feature>>();
  for (const Column& c : columns) {
    auto it = std::find_if(c.versions.begin(), c.versions.end(),
                           [ts](const auto& v) { return v.first <= ts; });
    if (it != c.versions.end()) {
      if (it->second) out->push_back(Feature{c.name, *it->second});
    } else if (!c.complete) {
      return std::nullopt;  // an older version may exist that was not fetched
    }
  }
  return FeatureSet(std::move(out));
}

FeatureCache::FeatureCache(FeatureCacheOptions options, LookupCounters* metrics)
    : options_(options), metrics_(metrics) {}

FeatureCache::~FeatureCache() {
  for (Stripe& s : stripes_) {
    metrics_->cache_entries.Add(-static_cast<int64_t>(s.index.size()));
    metrics_->cache_bytes.Add(-static_cast<int64_t>(s.bytes));
  }
}

size_t FeatureCache::RowHash::operator()(std::string_view row) const { return ImpressionKey(row); }

void FeatureCache::EraseLocked(Stripe& s, decltype(Stripe::index)::iterator it) {
  s.bytes -= it->second.bytes;
  metrics_->cache_bytes.Add(-static_cast<int64_t>(it->second.bytes));
  metrics_->cache_entries.Add(-1);
  s.index.erase(it);  // its turn in the clock is skipped when the hand reaches it
}

void FeatureCache::EvictOneLocked(Stripe& s) {
  while (!s.clock.empty()) {
    auto [row, generation] = std::move(s.clock.front());
    s.clock.pop_front();
    auto it = s.index.find(row);
    if (it == s.index.end() || it->second.generation != generation) continue;  // gone
    if (it->second.referenced) {
      it->second.referenced = false;
      s.clock.emplace_back(std::move(row), generation);
      continue;
    }
    EraseLocked(s, it);
    metrics_->cache_evictions.Add();
    return;
  }
}

std::optional<FeatureSet> FeatureCache::Get(std::string_view row, int64_t ts, int64_t now_ms,
                                            bool recent) {
  const size_t hash = RowHash()(row);
  Stripe& s = stripes_[hash % kStripes];
  std::shared_ptr<const RowVersions> versions;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    auto it = s.index.find(row, hash);
    if (it == s.index.end()) return std::nullopt;
    Entry& e = it->second;
    if (e.expires_at_ms <= now_ms) {
      EraseLocked(s, it);
      return std::nullopt;
    }
    if (!e.referenced) e.referenced = true;
    const RowVersions& v = *e.versions;
    // The common hit, the newest versions, is answered here: a pointer that
    // shares the versions' ownership (one reference count taken).
    if (ts >= v.newest_version && (ts < v.known_until || (v.live && recent))) {
      return FeatureSet(e.versions, v.newest.get());
    }
    versions = e.versions;
  }
  return versions->Resolve(ts, recent);
}

void FeatureCache::Put(std::string_view row, std::shared_ptr<const RowVersions> versions,
                       int64_t now_ms) {
  const int64_t ttl =
      versions->columns.empty() ? options_.negative_ttl_ms : options_.expire_after_write_ms;
  // The row is held twice (table and clock).
  const size_t bytes = versions->bytes + 2 * row.size() + sizeof(Entry) + 2 * sizeof(std::string) +
                       sizeof(uint64_t) + 32;
  const size_t max_entries = std::max<size_t>(1, options_.max_entries / kStripes);
  const size_t max_bytes = std::max<size_t>(1, (options_.max_mb << 20) / kStripes);
  const size_t hash = RowHash()(row);
  Stripe& s = stripes_[hash % kStripes];
  std::lock_guard<std::mutex> lock(s.mu);
  if (auto found = s.index.find(row, hash); found != s.index.end()) {
    const Entry& old = found->second;
    if (!versions->live && old.versions->live && old.expires_at_ms > now_ms) return;
    EraseLocked(s, found);
  }
  const uint64_t generation = s.next_generation++;
  s.index.emplace(std::string(row), Entry{std::move(versions), now_ms + ttl, bytes, generation});
  s.clock.emplace_back(std::string(row), generation);
  s.bytes += bytes;
  metrics_->cache_bytes.Add(static_cast<int64_t>(bytes));
  metrics_->cache_entries.Add(1);
  while (s.index.size() > max_entries || (s.bytes > max_bytes && s.index.size() > 1)) {
    EvictOneLocked(s);
  }
  // Turns of rows erased or replaced are dropped when the hand reaches them;
  // compact when they outnumber the live ones, so the clock stays O(entries).
  if (s.clock.size() > 2 * s.index.size() + 64) {
    std::erase_if(s.clock, [&](const auto& turn) {
      auto it = s.index.find(turn.first);
      return it == s.index.end() || it->second.generation != turn.second;
    });
  }
}

size_t FeatureCache::entries() const {
  size_t n = 0;
  for (const Stripe& s : stripes_) {
    std::lock_guard<std::mutex> lock(s.mu);
    n += s.index.size();
  }
  return n;
}

}  // namespace ctrjoin
