#pragma once
// One partition's log: the batches (stored whole, indexed by batch), the
// offsets derived from them (LEO = HWM on a single node, LSO) and the
// per-producer state that idempotence and transactions need.
//
// Design
//  * Batches are copied once into append-only chunks and never modified or
//    freed while the log lives; a Fetch response refers to chunk bytes through
//    shared_ptrs instead of copying them.
//  * Store() is the one place where a batch becomes part of the log and the
//    derived state (producer epochs/sequences, open transactions, aborted
//    index) is updated; live appends, markers and recovery all go through it.
//  * Invariants: index entries are contiguous in offset order; LSO = first
//    offset of the oldest open transaction, or LEO; aborted_ is ordered by
//    marker offset.
//
// Owned by LogManager; used only on the event-loop thread.

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tests/support/kafka_broker/kafka_error.h"
#include "tests/support/kafka_broker/record_batch.h"
#include "tests/support/kafka_broker/storage.h"

namespace ctrjoin::testbroker {

// A block of log bytes. Fetch responses keep it alive while they are sent.
struct LogChunk {
  std::unique_ptr<std::uint8_t[]> data;
  std::size_t capacity = 0;
  std::size_t used = 0;
};

// Bytes of consecutive batches inside one chunk.
struct LogSlice {
  std::shared_ptr<const LogChunk> chunk;
  const std::uint8_t* data = nullptr;
  std::size_t size = 0;
};

struct AbortedTxn {
  std::int64_t producer_id = -1;
  std::int64_t first_offset = -1;
  std::int64_t last_offset = -1;  // the ABORT marker's offset
};

enum class Isolation { kReadUncommitted, kReadCommitted };

struct AppendResult {
  KafkaError error = KafkaError::kNone;
  std::int64_t base_offset = -1;
};

struct ReadResult {
  KafkaError error = KafkaError::kNone;
  std::vector<LogSlice> slices;
  std::size_t bytes = 0;
  std::vector<AbortedTxn> aborted;  // read_committed only, sorted by first_offset
};

class PartitionLog {
 public:
  // |file| is empty for an in-memory log. |appends| is bumped on every
  // append so parked Fetches know to look again.
  PartitionLog(std::optional<AppendOnlyFile> file, std::uint64_t* appends);

  // Rebuilds the log from the content of its file. Drops a torn tail.
  Status Recover(Bytes contents);

  // Appends one validated producer batch (see ValidateProducedRecords),
  // enforcing producer epoch/sequence rules. A duplicate of one of the
  // producer's last five batches returns the original offset.
  AppendResult AppendProduced(Bytes batch, const BatchHeader& header);

  // Writes a COMMIT/ABORT marker for |producer_id| and closes its open
  // transaction here, if any. Returns the marker's offset.
  Result<std::int64_t> AppendMarker(std::int64_t producer_id, std::int16_t producer_epoch,
                                    ControlType type, std::int64_t now_ms);

  // DeleteRecords moves the log start up; the records below it can no
  // longer be read or found (their bytes stay in memory and in the file).
  std::int64_t log_start_offset() const { return log_start_; }
  // Moves the log start to |offset| (-1: the high watermark), never back;
  // OFFSET_OUT_OF_RANGE for an offset past the high watermark. Returns the
  // error and the log start after the call.
  std::pair<KafkaError, std::int64_t> DeleteBefore(std::int64_t offset);
  std::int64_t high_watermark() const { return end_offset_; }
  std::int64_t last_stable_offset() const;
  std::int64_t visible_end(Isolation isolation) const {
    return isolation == Isolation::kReadCommitted ? last_stable_offset() : high_watermark();
  }

  // Whole batches from the one containing |fetch_offset| up to the visible
  // end, within |max_bytes| unless |at_least_one| and nothing fits.
  ReadResult Read(std::int64_t fetch_offset, std::size_t max_bytes, bool at_least_one,
                  Isolation isolation) const;

  // The largest producer id that wrote here, or -1.
  std::int64_t max_producer_id() const { return max_producer_id_; }

  // The first record with timestamp >= |timestamp_ms| below the visible end,
  // with its own timestamp; nullopt if there is none. Corruption if a batch
  // that may hold it cannot be read.
  Result<std::optional<RecordTime>> OffsetForTimestamp(std::int64_t timestamp_ms,
                                                       Isolation isolation) const;

 private:
  struct BatchEntry {
    std::int64_t base_offset;
    std::int64_t last_offset;
    std::uint32_t chunk;
    std::uint32_t size;
    std::size_t position;
  };
  struct SequenceWindow {
    std::int32_t first_seq;
    std::int32_t last_seq;
    std::int64_t first_offset;
  };
  struct ProducerState {
    std::int16_t epoch = -1;
    std::deque<SequenceWindow> recent;  // the last kMaxRecent batches
    std::optional<std::int64_t> open_txn_first_offset;
  };
  static constexpr std::size_t kMaxRecent = 5;

  // Validates (pid, epoch, sequence); sets |*duplicate_of| for a retried batch.
  KafkaError CheckProducer(const BatchHeader& header,
                           std::optional<std::int64_t>* duplicate_of) const;
  // Copies |batch| to the end of the log, rewriting its BaseOffset to the
  // log end offset, writes it to the file if |persist|, and updates the
  // derived state. The single way a batch enters the log.
  Result<std::int64_t> Store(Bytes batch, BatchHeader header, bool persist);
  void UpdateProducerState(Bytes batch, const BatchHeader& header);
  std::uint8_t* Reserve(std::size_t size, std::uint32_t* chunk, std::size_t* position);
  // Index of the first batch whose last offset is >= |offset|.
  std::size_t FindBatch(std::int64_t offset) const;
  Bytes EntryBytes(const BatchEntry& e) const;

  std::optional<AppendOnlyFile> file_;
  std::uint64_t* appends_;
  std::vector<std::shared_ptr<LogChunk>> chunks_;
  std::vector<BatchEntry> index_;
  std::int64_t end_offset_ = 0;
  std::int64_t log_start_ = 0;
  std::unordered_map<std::int64_t, ProducerState> producers_;
  std::unordered_map<std::int64_t, std::int64_t> open_txns_;  // pid -> first offset
  std::vector<AbortedTxn> aborted_;
  std::int64_t max_producer_id_ = -1;
};

}  // namespace ctrjoin::testbroker
