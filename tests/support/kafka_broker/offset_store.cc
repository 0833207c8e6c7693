#include "tests/support/kafka_broker/offset_store.h"

#include "tests/support/kafka_broker/storage.h"
#include "tests/support/kafka_broker/wire.h"

namespace ctrjoin::testbroker {
namespace {

constexpr std::int32_t kFormatVersion = 1;

void EncodeOffsets(const OffsetMap& offsets, WireWriter& w) {
  w.ArrayCount(offsets.size());
  for (const auto& [tp, entry] : offsets) {
    w.String(tp.topic);
    w.Int32(tp.partition);
    w.Int64(entry.offset);
    w.Int32(entry.leader_epoch);
    w.NullableString(entry.metadata);
  }
}

OffsetMap DecodeOffsets(WireReader& r) {
  OffsetMap offsets;
  std::int32_t n = r.ArrayCount();
  for (std::int32_t i = 0; i < n && r.ok(); ++i) {
    TopicPartition tp;
    tp.topic = r.String();
    tp.partition = r.Int32();
    OffsetEntry entry;
    entry.offset = r.Int64();
    entry.leader_epoch = r.Int32();
    entry.metadata = r.NullableString();
    offsets[std::move(tp)] = std::move(entry);
  }
  return offsets;
}

}  // namespace

Status OffsetStore::Load() {
  if (path_.empty()) return Status::Ok();
  auto contents = ReadWholeFile(path_);
  if (!contents.ok()) {
    if (contents.status().code() == StatusCode::kNotFound) return Status::Ok();
    return contents.status();
  }
  const std::string& s = contents.value();
  WireReader r(Bytes(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()));
  if (r.Int32() != kFormatVersion) return Status::Corruption("unknown format in " + path_);
  std::int32_t groups = r.ArrayCount();
  for (std::int32_t g = 0; g < groups && r.ok(); ++g) {
    GroupOffsets& group = groups_[r.String()];
    group.committed = DecodeOffsets(r);
    std::int32_t pending = r.ArrayCount();
    for (std::int32_t p = 0; p < pending && r.ok(); ++p) {
      std::int64_t pid = r.Int64();
      group.pending[pid] = DecodeOffsets(r);
    }
  }
  if (!r.ok() || r.remaining() != 0) return Status::Corruption("truncated " + path_);
  return Status::Ok();
}

Status OffsetStore::Save() const {
  if (path_.empty()) return Status::Ok();
  std::string out;
  WireWriter w(&out);
  w.Int32(kFormatVersion);
  w.ArrayCount(groups_.size());
  for (const auto& [name, group] : groups_) {
    w.String(name);
    EncodeOffsets(group.committed, w);
    w.ArrayCount(group.pending.size());
    for (const auto& [pid, offsets] : group.pending) {
      w.Int64(pid);
      EncodeOffsets(offsets, w);
    }
  }
  return WriteFileAtomically(path_, out);
}

Status OffsetStore::Commit(const std::string& group, const OffsetMap& offsets) {
  OffsetMap& committed = groups_[group].committed;
  for (const auto& [tp, entry] : offsets) committed[tp] = entry;
  return Save();
}

Status OffsetStore::AddPending(const std::string& group, std::int64_t producer_id,
                               const OffsetMap& offsets) {
  OffsetMap& pending = groups_[group].pending[producer_id];
  for (const auto& [tp, entry] : offsets) pending[tp] = entry;
  return Save();
}

bool OffsetStore::HasPending(const std::string& group, const TopicPartition& tp) const {
  auto g = groups_.find(group);
  if (g == groups_.end()) return false;
  for (const auto& [producer, offsets] : g->second.pending) {
    if (offsets.contains(tp)) return true;
  }
  return false;
}

Status OffsetStore::CompletePending(const std::string& group, std::int64_t producer_id,
                                    bool commit) {
  auto g = groups_.find(group);
  if (g == groups_.end()) return Status::Ok();
  auto p = g->second.pending.find(producer_id);
  if (p == g->second.pending.end()) return Status::Ok();
  if (commit) {
    for (auto& [tp, entry] : p->second) g->second.committed[tp] = std::move(entry);
  }
  g->second.pending.erase(p);
  return Save();
}

const OffsetMap* OffsetStore::Committed(const std::string& group) const {
  auto g = groups_.find(group);
  return g == groups_.end() ? nullptr : &g->second.committed;
}

const OffsetEntry* OffsetStore::Find(const std::string& group, const TopicPartition& tp) const {
  const OffsetMap* committed = Committed(group);
  if (committed == nullptr) return nullptr;
  auto it = committed->find(tp);
  return it == committed->end() ? nullptr : &it->second;
}

}  // namespace ctrjoin::testbroker
