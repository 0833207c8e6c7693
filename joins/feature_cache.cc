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

void FeatureCache::AddBytesLocked(Stripe& s, int64_t delta) {
  s.bytes += delta;
  metrics_->cache_bytes.Add(delta);
}

void FeatureCache::EraseLocked(Stripe& s, decltype(Stripe::index)::iterator it) {
  AddBytesLocked(s, -static_cast<int64_t>(it->second.bytes));
  metrics_->cache_entries.Add(-1);
  s.index.erase(it);
}

bool FeatureCache::EvictOneLocked(Stripe& s) {
  while (!s.clock.empty()) {
    Turn turn = std::move(s.clock.front());
    s.clock.pop_front();
    auto it = s.index.find(turn.first);
    if (it == s.index.end() || it->second.generation != turn.second) {  // gone: drop the turn
      AddBytesLocked(s, -static_cast<int64_t>(TurnBytes(turn)));
      continue;
    }
    if (it->second.referenced) {
      it->second.referenced = false;
      s.clock.push_back(std::move(turn));
      continue;
    }
    EraseLocked(s, it);
    AddBytesLocked(s, -static_cast<int64_t>(TurnBytes(turn)));
    metrics_->cache_evictions.Add();
    return true;
  }
  return false;
}

void FeatureCache::CompactLocked(Stripe& s) {
  int64_t dropped = 0;
  std::erase_if(s.clock, [&](const Turn& turn) {
    auto it = s.index.find(turn.first);
    if (it != s.index.end() && it->second.generation == turn.second) return false;
    dropped += static_cast<int64_t>(TurnBytes(turn));
    return true;
  });
  AddBytesLocked(s, -dropped);
}

std::optional<FeatureSet> FeatureCache::Get(std::string_view row, int64_t ts, int64_t now_ms,
                                            bool recent, bool* cannot_tell) {
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
  std::optional<FeatureSet> answer = versions->Resolve(ts, recent);
  if (!answer && cannot_tell != nullptr) *cannot_tell = ts < versions->known_until;
  return answer;
}

void FeatureCache::Put(std::string_view row, std::shared_ptr<const RowVersions> versions,
                       int64_t now_ms) {
  const int64_t ttl =
      versions->columns.empty() ? options_.negative_ttl_ms : options_.expire_after_write_ms;
  const size_t bytes = versions->bytes + row.size() + sizeof(std::string) + sizeof(Entry) + 32;
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
  // Turns of erased or replaced entries are dropped when the hand reaches
  // them; compact when they outnumber the live ones, so that the clock stays
  // O(entries) and stale turns never push a live entry out.
  if (s.clock.size() > 2 * s.index.size() + 64) CompactLocked(s);
  Turn turn(std::string(row), s.next_generation++);
  const size_t added = bytes + TurnBytes(turn);
  // Room first, so that the newcomer is never the entry evicted.
  while (!s.index.empty() && (s.index.size() + 1 > max_entries || s.bytes + added > max_bytes)) {
    if (!EvictOneLocked(s)) break;
  }
  s.index.emplace(std::string(row), Entry{std::move(versions), now_ms + ttl, bytes, turn.second});
  s.clock.push_back(std::move(turn));
  AddBytesLocked(s, static_cast<int64_t>(added));
  metrics_->cache_entries.Add(1);
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
