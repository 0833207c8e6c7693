#include "tests/support/kafka_broker/record_batch.h"

#include <limits>

#include "src/core/crc32c.h"
#include "tests/support/kafka_broker/compression.h"

namespace ctrjoin::testbroker {
namespace {

// Byte positions of the batch header fields.
constexpr std::size_t kPosLength = 8;
constexpr std::size_t kPosLeaderEpoch = 12;
constexpr std::size_t kPosMagic = 16;
constexpr std::size_t kPosCrc = 17;
constexpr std::size_t kPosAttributes = 21;
constexpr std::size_t kPosLastOffsetDelta = 23;
constexpr std::size_t kPosBaseTimestamp = 27;
constexpr std::size_t kPosMaxTimestamp = 35;
constexpr std::size_t kPosProducerId = 43;
constexpr std::size_t kPosProducerEpoch = 51;
constexpr std::size_t kPosBaseSequence = 53;
constexpr std::size_t kPosRecordsCount = 57;

constexpr std::int16_t kAttrTransactional = 0x10;
constexpr std::int16_t kAttrControl = 0x20;

}  // namespace

std::int32_t BatchHeader::last_sequence() const {
  std::int64_t last = std::int64_t{base_sequence} + last_offset_delta;
  constexpr std::int64_t kMax = std::numeric_limits<std::int32_t>::max();
  if (last > kMax) last -= kMax + 1;
  return static_cast<std::int32_t>(last);
}

std::optional<BatchHeader> ParseBatchHeader(Bytes data) {
  if (data.size() < kBatchHeaderSize) return std::nullopt;
  const std::uint8_t* p = data.data();
  BatchHeader h;
  h.base_offset = LoadBe64(p);
  h.batch_length = LoadBe32(p + kPosLength);
  if (h.batch_length < static_cast<std::int32_t>(kBatchHeaderSize - kBatchLogOverhead)) {
    return std::nullopt;
  }
  h.magic = static_cast<std::int8_t>(p[kPosMagic]);
  h.crc = static_cast<std::uint32_t>(LoadBe32(p + kPosCrc));
  h.attributes = LoadBe16(p + kPosAttributes);
  h.last_offset_delta = LoadBe32(p + kPosLastOffsetDelta);
  h.base_timestamp = LoadBe64(p + kPosBaseTimestamp);
  h.max_timestamp = LoadBe64(p + kPosMaxTimestamp);
  h.producer_id = LoadBe64(p + kPosProducerId);
  h.producer_epoch = LoadBe16(p + kPosProducerEpoch);
  h.base_sequence = LoadBe32(p + kPosBaseSequence);
  h.records_count = LoadBe32(p + kPosRecordsCount);
  return h;
}

KafkaError ValidateProducedRecords(Bytes records, BatchHeader* header) {
  auto parsed = ParseBatchHeader(records);
  if (!parsed) return KafkaError::kCorruptMessage;
  const BatchHeader& h = *parsed;
  if (h.magic != 2) return KafkaError::kInvalidRecord;
  if (h.total_size() > records.size()) return KafkaError::kCorruptMessage;
  // Produce v3+ carries exactly one batch per partition.
  if (h.total_size() != records.size()) return KafkaError::kInvalidRecord;
  std::uint32_t crc = Crc32c(records.data() + kPosAttributes, records.size() - kPosAttributes);
  if (crc != h.crc) return KafkaError::kCorruptMessage;
  if (h.records_count <= 0 || std::int64_t{h.last_offset_delta} + 1 != h.records_count) {
    return KafkaError::kInvalidRecord;
  }
  if (h.control()) return KafkaError::kInvalidRecord;
  if (h.producer_id >= 0 && (h.base_sequence < 0 || h.producer_epoch < 0)) {
    return KafkaError::kInvalidRecord;
  }
  if (h.transactional() && h.producer_id < 0) return KafkaError::kInvalidRecord;
  *header = h;
  return KafkaError::kNone;
}

void AssignBaseOffset(std::uint8_t* batch, std::int64_t base_offset) {
  StoreBe64(batch, base_offset);
  StoreBe32(batch + kPosLeaderEpoch, 0);
}

std::string BuildControlBatch(std::int64_t offset, std::int64_t producer_id,
                              std::int16_t producer_epoch, ControlType type,
                              std::int64_t timestamp_ms) {
  std::string record_body;
  WireWriter r(&record_body);
  r.Int8(0);          // record attributes
  r.ZigzagVarint(0);  // timestamp delta
  r.ZigzagVarint(0);  // offset delta
  r.ZigzagVarint(4);  // key: version i16, type i16
  r.Int16(0);
  r.Int16(static_cast<std::int16_t>(type));
  r.ZigzagVarint(6);  // value: version i16, coordinator epoch i32
  r.Int16(0);
  r.Int32(0);
  r.ZigzagVarint(0);  // no headers

  std::string batch;
  WireWriter w(&batch);
  w.Int64(offset);
  w.Int32(0);  // BatchLength, patched below
  w.Int32(0);  // PartitionLeaderEpoch
  w.Int8(2);   // magic
  w.Int32(0);  // CRC, patched below
  w.Int16(kAttrTransactional | kAttrControl);
  w.Int32(0);  // LastOffsetDelta
  w.Int64(timestamp_ms);
  w.Int64(timestamp_ms);
  w.Int64(producer_id);
  w.Int16(producer_epoch);
  w.Int32(-1);  // BaseSequence
  w.Int32(1);   // RecordsCount
  w.ZigzagVarint(static_cast<std::int64_t>(record_body.size()));
  w.Raw(record_body.data(), record_body.size());
  w.PatchInt32(kPosLength, static_cast<std::int32_t>(batch.size() - kBatchLogOverhead));
  auto* bytes = reinterpret_cast<std::uint8_t*>(batch.data());
  w.PatchInt32(kPosCrc, static_cast<std::int32_t>(
                            Crc32c(bytes + kPosAttributes, batch.size() - kPosAttributes)));
  return batch;
}

std::optional<ControlType> ReadControlType(Bytes batch) {
  auto h = ParseBatchHeader(batch);
  if (!h || !h->control() || h->compression() != 0 || batch.size() < h->total_size()) {
    return std::nullopt;
  }
  WireReader r(batch.subspan(kBatchHeaderSize, h->total_size() - kBatchHeaderSize));
  r.ZigzagVarint();  // record length
  r.Int8();          // attributes
  r.ZigzagVarint();  // timestamp delta
  r.ZigzagVarint();  // offset delta
  if (r.ZigzagVarint() != 4) return std::nullopt;
  std::int16_t version = r.Int16();
  std::int16_t type = r.Int16();
  if (!r.ok() || version != 0) return std::nullopt;
  if (type == static_cast<std::int16_t>(ControlType::kAbort)) return ControlType::kAbort;
  if (type == static_cast<std::int16_t>(ControlType::kCommit)) return ControlType::kCommit;
  return std::nullopt;
}

Result<std::optional<RecordTime>> FindRecordAtOrAfter(Bytes batch, const BatchHeader& header,
                                                      std::int64_t target_ms,
                                                      std::int64_t min_offset) {
  if (header.max_timestamp < target_ms) return std::optional<RecordTime>();
  Bytes records = batch.subspan(kBatchHeaderSize, header.total_size() - kBatchHeaderSize);
  std::string decompressed;
  if (header.compression() != 0) {
    auto plain = DecompressRecords(header.compression(), records);
    if (!plain.ok()) return plain.status();
    decompressed = std::move(plain).value();
    records =
        Bytes(reinterpret_cast<const std::uint8_t*>(decompressed.data()), decompressed.size());
  }
  WireReader r(records);
  for (std::int32_t i = 0; i < header.records_count; ++i) {
    std::int64_t length = r.ZigzagVarint();
    std::size_t start = r.position();
    r.Int8();  // attributes
    std::int64_t timestamp = header.base_timestamp + r.ZigzagVarint();
    std::int64_t offset = header.base_offset + r.ZigzagVarint();
    std::size_t consumed = r.position() - start;
    if (length < 0 || static_cast<std::size_t>(length) < consumed) r.Fail();
    if (!r.ok()) break;
    if (timestamp >= target_ms && offset >= min_offset) {
      return std::optional<RecordTime>(RecordTime{offset, timestamp});
    }
    r.Raw(static_cast<std::size_t>(length) - consumed);
  }
  if (!r.ok()) {
    return Status::Corruption("batch at offset " + std::to_string(header.base_offset) +
                              ": records cut short");
  }
  return std::optional<RecordTime>();
}

}  // namespace ctrjoin::testbroker
