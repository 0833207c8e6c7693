#include "joins/join_state.h"

#include <malloc.h>

#include <algorithm>
#include <functional>
#include <tuple>
#include <utility>

#include "src/core/state_codec.h"

namespace ctrjoin {

namespace {
constexpr char kEntryTag = 'e';
constexpr char kTimerTag = 't';
// Spilling stops once hot state is below this fraction of the budget, so
// that spills happen in bulk rather than on every batch.
constexpr double kSpillLowWater = 0.75;
// Spilled entries go to RocksDB in write batches of about this size.
constexpr size_t kSpillChunkBytes = 4 << 20;
// Entries a batch may add to a shard before the next budget check.
constexpr size_t kGrowthHeadroom = 1024;
// Event times sort as unsigned big-endian after flipping the sign bit.
uint64_t OrderedBits(int64_t v) { return static_cast<uint64_t>(v) ^ (1ull << 63); }
}  // namespace

namespace {
// An encoded entry: state (1 byte), impression ts, deadline (fixed 64), payload.
constexpr size_t kDeadlineAt = 9;
constexpr size_t kEntryHeaderBytes = 17;

void EncodeEntryHeader(const JoinEntry& e, std::string& out) {
  out.push_back(static_cast<char>(e.state));
  PutFixed64(out, static_cast<uint64_t>(e.impression_ts));
  PutFixed64(out, static_cast<uint64_t>(e.deadline));
}

// The deadline of an encoded entry, without decoding the rest.
bool EntryDeadline(std::string_view encoded, int64_t& deadline) {
  if (encoded.size() < kEntryHeaderBytes) return false;
  encoded.remove_prefix(kDeadlineAt);
  uint64_t v = 0;
  GetFixed64(encoded, v);
  deadline = static_cast<int64_t>(v);
  return true;
}
}  // namespace

Payload::Payload(std::string_view bytes) {
  if (bytes.empty()) return;
  const size_t n = bytes.size();
  block_ = static_cast<char*>(std::malloc(sizeof n + n));
  if (block_ == nullptr) throw std::bad_alloc();
  std::memcpy(block_, &n, sizeof n);
  std::memcpy(block_ + sizeof n, bytes.data(), n);
}

void EncodeEntry(const JoinEntry& e, std::string& out) {
  EncodeEntryHeader(e, out);
  out.append(e.payload.view());
}

Status DecodeEntry(std::string_view in, JoinEntry& out) {
  if (in.size() < kEntryHeaderBytes || static_cast<uint8_t>(in[0]) > 4) {
    return Status::Corruption("undecodable join state entry");
  }
  out.state = static_cast<EntryState>(in[0]);
  in.remove_prefix(1);
  uint64_t ts = 0, deadline = 0;
  GetFixed64(in, ts);
  GetFixed64(in, deadline);
  out.impression_ts = static_cast<int64_t>(ts);
  out.deadline = static_cast<int64_t>(deadline);
  out.payload = Payload(in);
  return Status::Ok();
}

JoinState::JoinState(uint32_t shard, SpillStore* store, size_t memory_budget_bytes,
                     JoinMetrics* metrics)
    : shard_(shard), store_(store), budget_bytes_(memory_budget_bytes), metrics_(metrics) {}

JoinState::JoinState(JoinState&& other) noexcept
    : shard_(other.shard_),
      store_(other.store_),
      budget_bytes_(other.budget_bytes_),
      metrics_(other.metrics_),
      map_(std::move(other.map_)),
      timers_(std::move(other.timers_)),
      payload_bytes_(std::exchange(other.payload_bytes_, 0)),
      spilled_(std::exchange(other.spilled_, 0)),
      log_(other.log_),
      spilled_filter_(std::move(other.spilled_filter_)),
      filter_added_(std::exchange(other.filter_added_, 0)),
      spill_scan_from_(other.spill_scan_from_),
      published_entries_(std::exchange(other.published_entries_, 0)),
      published_bytes_(std::exchange(other.published_bytes_, 0)),
      published_spilled_(std::exchange(other.published_spilled_, 0)) {}

JoinState::~JoinState() {
  // Take this shard's share out of the process-wide gauges.
  metrics_->state_entries.Add(-published_entries_);
  metrics_->state_memory_bytes.Add(-published_bytes_);
  metrics_->spilled_entries.Add(-published_spilled_);
}

size_t JoinState::memory_bytes() const {
  using Slot = std::pair<const uint64_t, JoinEntry>;
  return map_.capacity() * (sizeof(Slot) + 1) + timers_.capacity() * sizeof(Timer) +
         payload_bytes_ + spilled_filter_.memory_bytes();
}

void JoinState::AddBytes(const JoinEntry& e, int sign) {
  const size_t heap = e.payload.heap_bytes();
  payload_bytes_ += sign > 0 ? heap : -heap;
}

void JoinState::PushTimer(int64_t deadline, uint64_t key) {
  timers_.push_back(Timer{deadline, key});
  std::push_heap(timers_.begin(), timers_.end(), std::greater<>());
}

std::string JoinState::EntryKey(uint64_t key) const {
  std::string k(1, kEntryTag);
  PutBigEndian64(k, shard_);
  PutBigEndian64(k, key);
  return k;
}

std::string JoinState::TimerKey(int64_t deadline, uint64_t key) const {
  std::string k(1, kTimerTag);
  PutBigEndian64(k, shard_);
  PutBigEndian64(k, OrderedBits(deadline));
  PutBigEndian64(k, key);
  return k;
}

Result<JoinEntry*> JoinState::Find(uint64_t key) {
  if (auto it = map_.find(key); it != map_.end()) return &it->second;
  if (spilled_ == 0 || !spilled_filter_.MayContain(key)) return static_cast<JoinEntry*>(nullptr);
  // The entry key holds the deadline; the timer key holds the entry.
  std::string value;
  bool found = false;
  const std::string entry_key = EntryKey(key);
  CTRJOIN_RETURN_IF_ERROR(store_->Get(entry_key, value, found));
  if (!found) return static_cast<JoinEntry*>(nullptr);
  std::string_view deadline_bytes(value);
  uint64_t deadline = 0;
  if (!GetFixed64(deadline_bytes, deadline)) return Status::Corruption("bad spilled entry key");
  const std::string timer_key = TimerKey(static_cast<int64_t>(deadline), key);
  CTRJOIN_RETURN_IF_ERROR(store_->Get(timer_key, value, found));
  if (!found) return Status::Corruption("spilled entry without its timer");
  JoinEntry entry;
  CTRJOIN_RETURN_IF_ERROR(DecodeEntry(value, entry));
  rocksdb::WriteBatch batch;
  batch.Delete(entry_key);
  batch.Delete(timer_key);
  CTRJOIN_RETURN_IF_ERROR(store_->Write(batch));
  --spilled_;
  AddBytes(entry, +1);
  PushTimer(entry.deadline, key);
  auto [it, inserted] = map_.insert_or_assign(key, std::move(entry));
  return &it->second;
}

void JoinState::Put(uint64_t key, JoinEntry entry) {
  AddBytes(entry, +1);
  auto [it, inserted] = map_.try_emplace(key);
  LogPut(key, entry, inserted ? entry.deadline : std::max(entry.deadline, it->second.deadline));
  if (inserted || it->second.deadline != entry.deadline) PushTimer(entry.deadline, key);
  if (!inserted) AddBytes(it->second, -1);
  std::swap(it->second, entry);  // the old entry is freed with `entry`
}

void JoinState::LogPut(uint64_t key, const JoinEntry& entry, int64_t horizon) {
  if (log_ == nullptr) return;
  encoded_.clear();
  EncodeEntryHeader(entry, encoded_);
  log_->Put(key, horizon, encoded_, entry.payload.view());
}

void JoinState::PopDueTimers(EventTime watermark) {
  // The final watermark (end of input) expires everything, even deadlines
  // saturated at the end of time.
  const bool final = watermark == EventTime::Max();
  due_.clear();
  while (!timers_.empty() && (final || timers_.front().deadline < watermark.ms)) {
    std::pop_heap(timers_.begin(), timers_.end(), std::greater<>());
    due_.push_back(timers_.back());
    timers_.pop_back();
  }
}

Status JoinState::Expire(EventTime watermark,
                         absl::FunctionRef<Result<bool>(uint64_t, JoinEntry&)> close) {
  // Lookups this far ahead are prefetched, so that their misses overlap.
  constexpr size_t kAhead = 16;
  for (bool more = true; more;) {
    PopDueTimers(watermark);
    more = !due_.empty();
    for (size_t i = 0; i < due_.size(); ++i) {
      if (i + kAhead < due_.size()) map_.prefetch(due_[i + kAhead].key);
      const Timer t = due_[i];
      auto it = map_.find(t.key);
      if (it == map_.end() || it->second.deadline != t.deadline) continue;  // stale
      JoinEntry& e = it->second;
      AddBytes(e, -1);
      Result<bool> keep = close(t.key, e);
      if (!keep.ok()) {
        AddBytes(e, +1);
        return keep.status();
      }
      if (!*keep) {
        map_.erase(it);
        continue;
      }
      AddBytes(e, +1);
      LogPut(t.key, e, std::max(e.deadline, t.deadline));
      PushTimer(e.deadline, t.key);
    }
    if (spilled_ == 0) continue;
    spilled_due_.clear();
    CTRJOIN_RETURN_IF_ERROR(PopExpiredSpilled(watermark, spilled_due_));
    more = more || !spilled_due_.empty();
    for (auto& [key, e] : spilled_due_) {
      Result<bool> keep = close(key, e);
      if (!keep.ok()) return keep.status();
      if (*keep) Put(key, std::move(e));
    }
    if (spilled_ == 0) {
      spilled_filter_.Clear();
      filter_added_ = 0;
    }
  }
  PublishGauges();
  return Status::Ok();
}

Status JoinState::PopExpired(EventTime watermark,
                             std::vector<std::pair<uint64_t, JoinEntry>>& out) {
  return Expire(watermark, [&out](uint64_t key, JoinEntry& e) -> Result<bool> {
    out.emplace_back(key, std::move(e));
    return false;
  });
}

Status JoinState::PopExpiredSpilled(EventTime watermark,
                                    std::vector<std::pair<uint64_t, JoinEntry>>& out) {
  // Everything below the previous watermark is gone already (deleted keys
  // would only slow the scan down), and nothing spilled since is below it.
  const std::string start = TimerKey(spill_scan_from_, 0);
  const std::string prefix = start.substr(0, 9);
  auto it = store_->NewIterator();
  rocksdb::WriteBatch batch;
  for (it->Seek(start); it->Valid(); it->Next()) {
    const rocksdb::Slice k = it->key();
    if (k.size() != 25 || !k.starts_with(prefix)) break;
    const int64_t deadline = static_cast<int64_t>(ReadBigEndian64(k.data() + 9) ^ (1ull << 63));
    if (deadline >= watermark.ms && watermark != EventTime::Max()) break;
    const uint64_t key = ReadBigEndian64(k.data() + 17);
    JoinEntry entry;
    CTRJOIN_RETURN_IF_ERROR(
        DecodeEntry(std::string_view(it->value().data(), it->value().size()), entry));
    batch.Delete(k);
    batch.Delete(EntryKey(key));
    --spilled_;
    out.emplace_back(key, std::move(entry));
  }
  CTRJOIN_RETURN_IF_ERROR(FromRocksDb(it->status(), "scanning spilled timers"));
  spill_scan_from_ = watermark.ms;
  if (batch.Count() > 0) CTRJOIN_RETURN_IF_ERROR(store_->Write(batch));
  return Status::Ok();
}

Status JoinState::EnforceBudget() {
  if (store_ == nullptr) {
    PublishGauges();
    return Status::Ok();
  }
  // The hash table grows by doubling at 7/8 load, and while it rehashes its
  // old and new arrays coexist. Grow only if that peak fits the budget and
  // the grown table leaves two thirds of it for entries; otherwise spill
  // enough entries to stay below the growth point.
  using Slot = std::pair<const uint64_t, JoinEntry>;
  const size_t grown_table = map_.capacity() * 2 * (sizeof(Slot) + 1);
  const size_t grow_at = map_.capacity() * 7 / 8;
  const bool near_growth = map_.size() + kGrowthHeadroom >= grow_at;
  size_t min_victims = 0;
  if (near_growth &&
      (memory_bytes() + grown_table > budget_bytes_ || grown_table > budget_bytes_ / 3)) {
    min_victims = map_.size() + kGrowthHeadroom - std::min(map_.size(), grow_at * 3 / 4);
  }
  if (memory_bytes() > budget_bytes_ || min_victims > 0) {
    CTRJOIN_RETURN_IF_ERROR(
        Spill(static_cast<size_t>(budget_bytes_ * kSpillLowWater), min_victims));
  }
  PublishGauges();
  return Status::Ok();
}

Status JoinState::Spill(size_t target_bytes, size_t min_victims) {
  // Victims: the entries with the latest deadlines, which are needed last.
  std::vector<Timer> by_deadline;
  by_deadline.reserve(map_.size());
  for (const auto& [key, e] : map_) by_deadline.push_back(Timer{e.deadline, key});
  // The table's arrays and the filter stay; what an entry frees is its share
  // of the rest (payloads, timers).
  using Slot = std::pair<const uint64_t, JoinEntry>;
  const size_t fixed = map_.capacity() * (sizeof(Slot) + 1) + spilled_filter_.memory_bytes();
  const size_t excess = memory_bytes() - std::min(memory_bytes(), target_bytes);
  const size_t per_entry =
      (memory_bytes() - std::min(memory_bytes(), fixed)) / std::max<size_t>(1, map_.size());
  const size_t victims =
      std::min(map_.size(), std::max(min_victims, excess / std::max<size_t>(1, per_entry) + 1));
  std::nth_element(by_deadline.begin(), by_deadline.end() - victims, by_deadline.end());
  // Keys brought back or expired stay in the filter: rebuild it from the
  // store once the keys added since the last build would overfill it.
  if (filter_added_ + victims > spilled_filter_.capacity()) {
    CTRJOIN_RETURN_IF_ERROR(GrowFilter(2 * (spilled_ + victims)));
  }

  // Written in chunks, each erased from memory only once it is in RocksDB.
  rocksdb::WriteBatch batch;
  std::vector<uint64_t> chunk;
  std::string value, deadline;
  const auto flush = [&]() -> Status {
    CTRJOIN_RETURN_IF_ERROR(store_->Write(batch));
    for (uint64_t key : chunk) {
      auto it = map_.find(key);
      AddBytes(it->second, -1);
      map_.erase(it);
      spilled_filter_.Add(key);
      ++filter_added_;
    }
    batch.Clear();
    chunk.clear();
    return Status::Ok();
  };
  for (auto v = by_deadline.end() - victims; v != by_deadline.end(); ++v) {
    const JoinEntry& e = map_.find(v->key)->second;
    value.clear();
    EncodeEntry(e, value);
    batch.Put(TimerKey(e.deadline, v->key), value);
    deadline.clear();
    PutFixed64(deadline, static_cast<uint64_t>(e.deadline));
    batch.Put(EntryKey(v->key), deadline);
    chunk.push_back(v->key);
    if (batch.GetDataSize() >= kSpillChunkBytes) CTRJOIN_RETURN_IF_ERROR(flush());
  }
  CTRJOIN_RETURN_IF_ERROR(flush());
  spilled_ += victims;
  metrics_->spill_writes.Add(victims);

  // Rebuild the timer heap without the spilled entries, and give memory back.
  timers_.clear();
  timers_.shrink_to_fit();
  timers_.reserve(map_.size());
  for (const auto& [key, e] : map_) timers_.push_back(Timer{e.deadline, key});
  std::make_heap(timers_.begin(), timers_.end(), std::greater<>());
  // The spilled payloads were small allocations scattered over the heap;
  // hand the freed pages back so that the process, not only our accounting,
  // stays within the budget.
  malloc_trim(0);
  return Status::Ok();
}

Result<ChangelogPosition> JoinState::Mark(uint64_t epoch, EventTime watermark) {
  if (log_ == nullptr) {
    return Status::Internal("join state: checkpoints need a changelog", Effect::kNoEffect);
  }
  return log_->Mark(epoch, watermark.ms);
}

void JoinState::PutRestored(uint64_t key, JoinEntry entry, std::string_view encoded) {
  if (log_ != nullptr) log_->Put(key, entry.deadline, encoded);
  AddBytes(entry, +1);
  timers_.push_back(Timer{entry.deadline, key});
  map_.insert_or_assign(key, std::move(entry));
}

void JoinState::FinishRestore() {
  std::make_heap(timers_.begin(), timers_.end(), std::greater<>());
  PublishGauges();
}

Result<EventTime> ReplayJoinChangelog(
    const std::string& dir, uint64_t epoch, const std::function<bool(uint64_t key)>& wanted,
    const std::function<Status(uint64_t key, JoinEntry entry, std::string_view encoded)>& restore) {
  // Pass 1: where each key's last put is, and its deadline (the log is read
  // one segment at a time, so a restore holds this index, not the log).
  struct Last {
    ChangelogLocation at;
    int64_t deadline;
  };
  absl::flat_hash_map<uint64_t, Last> last;
  int64_t watermark = EventTime::Min().ms;
  CTRJOIN_RETURN_IF_ERROR(ReadChangelog(dir, epoch, [&](const ChangelogRecord& r) {
    if (r.type == 'm') {
      watermark = r.horizon_or_watermark;
      return Status::Ok();
    }
    if (!wanted(r.key_or_epoch)) return Status::Ok();
    int64_t deadline = 0;
    if (!EntryDeadline(r.entry, deadline)) {
      return Status::Corruption("undecodable join state entry in " + dir);
    }
    last.insert_or_assign(r.key_or_epoch, Last{r.at, deadline});
    return Status::Ok();
  }));
  // Pass 2: the entries still alive at the marker (not expired, and perhaps
  // forgotten, before it), in log order.
  const bool final = watermark == EventTime::Max().ms;
  std::vector<std::pair<ChangelogLocation, uint64_t>> alive;
  for (const auto& [key, l] : last) {
    if (!final && l.deadline >= watermark) alive.emplace_back(l.at, key);
  }
  absl::flat_hash_map<uint64_t, Last>().swap(last);
  std::sort(alive.begin(), alive.end(), [](const auto& x, const auto& y) {
    return std::tie(x.first.segment, x.first.offset) < std::tie(y.first.segment, y.first.offset);
  });
  std::vector<ChangelogLocation> locations;
  locations.reserve(alive.size());
  for (const auto& [at, key] : alive) locations.push_back(at);
  CTRJOIN_RETURN_IF_ERROR(
      ReadChangelogEntries(dir, locations, [&](size_t i, std::string_view encoded) -> Status {
        JoinEntry entry;
        CTRJOIN_RETURN_IF_ERROR(DecodeEntry(encoded, entry).WithContext(dir));
        return restore(alive[i].second, std::move(entry), encoded);
      }));
  return EventTime{watermark};
}

Status JoinState::GrowFilter(size_t keys) {
  // Re-adds every key spilled so far: amortised, since capacity doubles.
  KeyFilter grown(keys);
  const std::string prefix = EntryKey(0).substr(0, 9);
  auto it = store_->NewIterator();
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    grown.Add(ReadBigEndian64(it->key().data() + 9));
  }
  CTRJOIN_RETURN_IF_ERROR(FromRocksDb(it->status(), "scanning spilled keys"));
  spilled_filter_ = std::move(grown);
  filter_added_ = spilled_;
  return Status::Ok();
}

void JoinState::PublishGauges() {
  const auto entries = static_cast<int64_t>(map_.size() + spilled_);
  const auto bytes = static_cast<int64_t>(memory_bytes());
  const auto spilled = static_cast<int64_t>(spilled_);
  metrics_->state_entries.Add(entries - published_entries_);
  metrics_->state_memory_bytes.Add(bytes - published_bytes_);
  metrics_->spilled_entries.Add(spilled - published_spilled_);
  published_entries_ = entries;
  published_bytes_ = bytes;
  published_spilled_ = spilled;
}

}  // namespace ctrjoin
