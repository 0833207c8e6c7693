#pragma once
// Record batch v2 (magic 2): header parsing, validation of batches sent by
// producers, offset assignment, transaction marker (control batch) building
// and the record walk that ListOffsets-by-timestamp needs (the only reader of
// compressed records, see compression.h).
//
// The broker treats a batch as opaque bytes once validated: offsets are
// assigned by rewriting BaseOffset, which lies outside the CRC, so no record
// is touched on the produce path. Pure functions; any thread.

#include <cstdint>
#include <optional>
#include <string>

#include "src/core/status.h"
#include "tests/support/kafka_broker/kafka_error.h"
#include "tests/support/kafka_broker/wire.h"

namespace ctrjoin::testbroker {

inline constexpr std::size_t kBatchHeaderSize = 61;
// Bytes before BatchLength's counted region (BaseOffset + BatchLength).
inline constexpr std::size_t kBatchLogOverhead = 12;

enum class ControlType : std::int16_t { kAbort = 0, kCommit = 1 };

struct BatchHeader {
  std::int64_t base_offset = 0;
  std::int32_t batch_length = 0;
  std::int8_t magic = 0;
  std::uint32_t crc = 0;
  std::int16_t attributes = 0;
  std::int32_t last_offset_delta = 0;
  std::int64_t base_timestamp = 0;
  std::int64_t max_timestamp = 0;
  std::int64_t producer_id = -1;
  std::int16_t producer_epoch = -1;
  std::int32_t base_sequence = -1;
  std::int32_t records_count = 0;

  bool transactional() const { return (attributes & 0x10) != 0; }
  bool control() const { return (attributes & 0x20) != 0; }
  int compression() const { return attributes & 0x7; }
  std::size_t total_size() const {
    return static_cast<std::size_t>(batch_length) + kBatchLogOverhead;
  }
  std::int64_t last_offset() const { return base_offset + last_offset_delta; }
  // The sequence of the batch's last record; sequences wrap at INT32_MAX to 0.
  std::int32_t last_sequence() const;
};

// Parses the fixed 61-byte header at the front of |data|; no CRC check.
// nullopt if |data| is shorter than a header or BatchLength is impossible.
std::optional<BatchHeader> ParseBatchHeader(Bytes data);

// Checks the Records field a producer sent for one partition: exactly one
// magic-2 batch, correct CRC, consistent counts, no control batch, and a
// sequence whenever there is a producer id. On success fills |*header|.
KafkaError ValidateProducedRecords(Bytes records, BatchHeader* header);

// Writes the assigned BaseOffset and a PartitionLeaderEpoch of 0 into a
// batch in place. Neither field is covered by the CRC.
void AssignBaseOffset(std::uint8_t* batch, std::int64_t base_offset);

// The 78-byte COMMIT/ABORT control batch for (pid, epoch) at |offset|.
std::string BuildControlBatch(std::int64_t offset, std::int64_t producer_id,
                              std::int16_t producer_epoch, ControlType type,
                              std::int64_t timestamp_ms);

// The marker type of a control batch (key version 0), or nullopt if the
// batch does not hold one that this broker wrote.
std::optional<ControlType> ReadControlType(Bytes batch);

struct RecordTime {
  std::int64_t offset = -1;
  std::int64_t timestamp = -1;
};

// The offset and own timestamp of the first record of |batch| at or after
// |min_offset| with timestamp >= |target_ms| (decompressing a compressed
// batch), or nullopt if it has none. Corruption if the records cannot be
// read.
Result<std::optional<RecordTime>> FindRecordAtOrAfter(Bytes batch, const BatchHeader& header,
                                                      std::int64_t target_ms,
                                                      std::int64_t min_offset = 0);

}  // namespace ctrjoin::testbroker
