#include "tests/support/kafka_broker/partition_log.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace ctrjoin::testbroker {
namespace {

constexpr std::size_t kFirstChunkSize = 64 * 1024;
constexpr std::size_t kMaxChunkSize = 8 * 1024 * 1024;

std::int32_t NextSequence(std::int32_t seq) {
  return seq == std::numeric_limits<std::int32_t>::max() ? 0 : seq + 1;
}

}  // namespace

PartitionLog::PartitionLog(std::optional<AppendOnlyFile> file, std::uint64_t* appends)
    : file_(std::move(file)), appends_(appends) {}

Status PartitionLog::Recover(Bytes contents) {
  std::size_t pos = 0;
  while (pos < contents.size()) {
    Bytes rest = contents.subspan(pos);
    auto header = ParseBatchHeader(rest);
    if (!header || header->total_size() > rest.size() || header->base_offset != end_offset_) {
      break;
    }
    if (!Store(rest.first(header->total_size()), *header, /*persist=*/false).ok()) break;
    pos += header->total_size();
  }
  if (pos < contents.size() && file_) return file_->Truncate(pos);
  return Status::Ok();
}

KafkaError PartitionLog::CheckProducer(const BatchHeader& h,
                                       std::optional<std::int64_t>* duplicate_of) const {
  if (h.producer_id < 0) return KafkaError::kNone;
  auto it = producers_.find(h.producer_id);
  // A producer new to this partition may start at any sequence.
  if (it == producers_.end()) return KafkaError::kNone;
  const ProducerState& st = it->second;
  if (h.producer_epoch < st.epoch) return KafkaError::kInvalidProducerEpoch;
  if (h.producer_epoch > st.epoch) {
    if (h.base_sequence != 0) return KafkaError::kOutOfOrderSequenceNumber;
  } else {
    for (const SequenceWindow& w : st.recent) {
      if (w.first_seq == h.base_sequence && w.last_seq == h.last_sequence()) {
        *duplicate_of = w.first_offset;
        return KafkaError::kNone;
      }
    }
    std::int32_t expected = st.recent.empty() ? 0 : NextSequence(st.recent.back().last_seq);
    if (h.base_sequence != expected) return KafkaError::kOutOfOrderSequenceNumber;
  }
  if (!h.transactional() && st.open_txn_first_offset) return KafkaError::kInvalidTxnState;
  return KafkaError::kNone;
}

AppendResult PartitionLog::AppendProduced(Bytes batch, const BatchHeader& header) {
  std::optional<std::int64_t> duplicate_of;
  KafkaError err = CheckProducer(header, &duplicate_of);
  if (err != KafkaError::kNone) return {err, -1};
  if (duplicate_of) return {KafkaError::kNone, *duplicate_of};
  auto offset = Store(batch, header, /*persist=*/true);
  if (!offset.ok()) return {KafkaError::kKafkaStorageError, -1};
  return {KafkaError::kNone, *offset};
}

Result<std::int64_t> PartitionLog::AppendMarker(std::int64_t producer_id,
                                                std::int16_t producer_epoch, ControlType type,
                                                std::int64_t now_ms) {
  std::string batch = BuildControlBatch(end_offset_, producer_id, producer_epoch, type, now_ms);
  Bytes bytes(reinterpret_cast<const std::uint8_t*>(batch.data()), batch.size());
  return Store(bytes, *ParseBatchHeader(bytes), /*persist=*/true);
}

Result<std::int64_t> PartitionLog::Store(Bytes batch, BatchHeader header, bool persist) {
  std::uint32_t chunk = 0;
  std::size_t position = 0;
  std::uint8_t* dst = Reserve(batch.size(), &chunk, &position);
  std::memcpy(dst, batch.data(), batch.size());
  AssignBaseOffset(dst, end_offset_);
  Bytes stored(dst, batch.size());
  if (persist && file_) CTRJOIN_RETURN_IF_ERROR(file_->Append(stored));
  header.base_offset = end_offset_;
  chunks_[chunk]->used += batch.size();
  index_.push_back({header.base_offset, header.last_offset(), chunk,
                    static_cast<std::uint32_t>(batch.size()), position});
  end_offset_ = header.last_offset() + 1;
  UpdateProducerState(stored, header);
  ++*appends_;
  return header.base_offset;
}

void PartitionLog::UpdateProducerState(Bytes batch, const BatchHeader& h) {
  if (h.producer_id < 0) return;
  max_producer_id_ = std::max(max_producer_id_, h.producer_id);
  ProducerState& st = producers_[h.producer_id];
  if (st.epoch != h.producer_epoch) {
    st.epoch = h.producer_epoch;
    st.recent.clear();
  }
  if (!h.control()) {
    st.recent.push_back({h.base_sequence, h.last_sequence(), h.base_offset});
    if (st.recent.size() > kMaxRecent) st.recent.pop_front();
    if (h.transactional() && !st.open_txn_first_offset) {
      st.open_txn_first_offset = h.base_offset;
      open_txns_[h.producer_id] = h.base_offset;
    }
    return;
  }
  std::optional<ControlType> type = ReadControlType(batch);
  if (!type || !st.open_txn_first_offset) return;
  // Only non-empty transactions enter the aborted index.
  if (*type == ControlType::kAbort) {
    aborted_.push_back({h.producer_id, *st.open_txn_first_offset, h.base_offset});
  }
  open_txns_.erase(h.producer_id);
  st.open_txn_first_offset.reset();
}

std::uint8_t* PartitionLog::Reserve(std::size_t size, std::uint32_t* chunk, std::size_t* position) {
  if (chunks_.empty() || chunks_.back()->capacity - chunks_.back()->used < size) {
    std::size_t next =
        chunks_.empty() ? kFirstChunkSize : std::min(chunks_.back()->capacity * 2, kMaxChunkSize);
    auto c = std::make_shared<LogChunk>();
    c->capacity = std::max(next, size);
    c->data = std::make_unique_for_overwrite<std::uint8_t[]>(c->capacity);
    chunks_.push_back(std::move(c));
  }
  *chunk = static_cast<std::uint32_t>(chunks_.size() - 1);
  *position = chunks_.back()->used;
  return chunks_.back()->data.get() + *position;
}

std::int64_t PartitionLog::last_stable_offset() const {
  std::int64_t lso = end_offset_;
  for (const auto& [pid, first] : open_txns_) lso = std::min(lso, first);
  return lso;
}

std::size_t PartitionLog::FindBatch(std::int64_t offset) const {
  auto it = std::lower_bound(index_.begin(), index_.end(), offset,
                             [](const BatchEntry& e, std::int64_t o) { return e.last_offset < o; });
  return static_cast<std::size_t>(it - index_.begin());
}

Bytes PartitionLog::EntryBytes(const BatchEntry& e) const {
  return Bytes(chunks_[e.chunk]->data.get() + e.position, e.size);
}

ReadResult PartitionLog::Read(std::int64_t fetch_offset, std::size_t max_bytes, bool at_least_one,
                              Isolation isolation) const {
  ReadResult out;
  if (fetch_offset < log_start_offset() || fetch_offset > end_offset_) {
    out.error = KafkaError::kOffsetOutOfRange;
    return out;
  }
  const std::int64_t limit = visible_end(isolation);
  std::int64_t upper = fetch_offset;
  for (std::size_t i = FindBatch(fetch_offset); i < index_.size(); ++i) {
    const BatchEntry& e = index_[i];
    if (e.base_offset >= limit) break;
    if (out.bytes + e.size > max_bytes && !(at_least_one && out.bytes == 0)) break;
    const std::uint8_t* data = chunks_[e.chunk]->data.get() + e.position;
    if (!out.slices.empty() && out.slices.back().chunk.get() == chunks_[e.chunk].get() &&
        out.slices.back().data + out.slices.back().size == data) {
      out.slices.back().size += e.size;
    } else {
      out.slices.push_back({chunks_[e.chunk], data, e.size});
    }
    out.bytes += e.size;
    upper = e.last_offset + 1;
  }
  if (isolation == Isolation::kReadCommitted && out.bytes > 0) {
    // Every aborted txn overlapping [fetch_offset, upper): its marker is at
    // or after fetch_offset and it started before upper.
    auto it =
        std::lower_bound(aborted_.begin(), aborted_.end(), fetch_offset,
                         [](const AbortedTxn& a, std::int64_t o) { return a.last_offset < o; });
    for (; it != aborted_.end(); ++it) {
      if (it->first_offset < upper) out.aborted.push_back(*it);
    }
    std::sort(out.aborted.begin(), out.aborted.end(), [](const AbortedTxn& a, const AbortedTxn& b) {
      return a.first_offset < b.first_offset;
    });
  }
  return out;
}

Result<std::optional<RecordTime>> PartitionLog::OffsetForTimestamp(std::int64_t timestamp_ms,
                                                                   Isolation isolation) const {
  const std::int64_t limit = visible_end(isolation);
  for (std::size_t i = FindBatch(log_start_); i < index_.size(); ++i) {
    const BatchEntry& e = index_[i];
    if (e.base_offset >= limit) break;
    Bytes bytes = EntryBytes(e);
    auto header = ParseBatchHeader(bytes);
    if (!header) continue;
    // Kafka's search too goes on past a batch whose MaxTimestamp promised
    // more than its records hold.
    auto found = FindRecordAtOrAfter(bytes, *header, timestamp_ms, log_start_);
    if (!found.ok()) return found;
    if (!found.value()) continue;
    if (found.value()->offset >= limit) break;
    return found;
  }
  return std::optional<RecordTime>();
}

std::pair<KafkaError, std::int64_t> PartitionLog::DeleteBefore(std::int64_t offset) {
  if (offset == -1) offset = end_offset_;
  if (offset < 0 || offset > end_offset_) return {KafkaError::kOffsetOutOfRange, log_start_};
  log_start_ = std::max(log_start_, offset);
  return {KafkaError::kNone, log_start_};
}

}  // namespace ctrjoin::testbroker
