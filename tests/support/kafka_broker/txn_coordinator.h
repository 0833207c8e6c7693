#pragma once
// Producer ids and the transaction coordinator (Kafka's
// TransactionCoordinator, single node, markers written synchronously).
//
// Per transactional.id it keeps (pid, epoch, timeout, state, partitions,
// groups, start time). EndTxn writes COMMIT/ABORT markers to every partition
// of the transaction and commits or drops the offsets the transaction sent
// through TxnOffsetCommit before answering, so the Prepare* states of Kafka
// are never visible. InitProducerId on an id with an open transaction fences
// the old producer: the epoch is bumped, the transaction aborted with the
// bumped epoch, and the new producer gets the epoch after that. A
// transaction open longer than its timeout is fenced and aborted the same
// way by AbortTimedOut().
//
// Errors follow the versions the broker advertises (InitProducerId < 4,
// AddPartitions/AddOffsets/EndTxn < 2): a fenced producer gets
// INVALID_PRODUCER_EPOCH, never PRODUCER_FENCED.
//
// State is rewritten atomically to "<dir>/transactions" after each change
// when the broker has a data directory. Owned by BrokerCore; event-loop
// thread only. Times are wall-clock ms (they are persisted).

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "src/core/status.h"
#include "tests/support/kafka_broker/kafka_error.h"
#include "tests/support/kafka_broker/log_manager.h"
#include "tests/support/kafka_broker/logger.h"
#include "tests/support/kafka_broker/offset_store.h"
#include "tests/support/kafka_broker/options.h"
#include "tests/support/kafka_broker/topic_partition.h"

namespace ctrjoin::testbroker {

struct ProducerIdResult {
  KafkaError error = KafkaError::kNone;
  std::int64_t producer_id = -1;
  std::int16_t producer_epoch = -1;
};

class TxnCoordinator {
 public:
  // |state_path| empty: in-memory only.
  TxnCoordinator(LogManager* logs, OffsetStore* offsets, std::string state_path,
                 const BrokerOptions& options, const Logger* logger)
      : logs_(logs),
        offsets_(offsets),
        state_path_(std::move(state_path)),
        options_(options),
        logger_(logger) {}

  // Restores coordinator state; call after the logs are loaded.
  Status Load();

  // |transactional_id| nullopt: a plain idempotent producer.
  ProducerIdResult InitProducerId(const std::optional<std::string>& transactional_id,
                                  std::int32_t timeout_ms, std::int64_t now_ms);
  // One error per requested partition.
  std::map<TopicPartition, KafkaError> AddPartitions(const std::string& transactional_id,
                                                     std::int64_t producer_id,
                                                     std::int16_t producer_epoch,
                                                     const std::vector<TopicPartition>& partitions,
                                                     std::int64_t now_ms);
  KafkaError AddOffsets(const std::string& transactional_id, std::int64_t producer_id,
                        std::int16_t producer_epoch, const std::string& group_id,
                        std::int64_t now_ms);
  KafkaError EndTxn(const std::string& transactional_id, std::int64_t producer_id,
                    std::int16_t producer_epoch, bool commit, std::int64_t now_ms);
  // Whether TxnOffsetCommit from this producer may stage offsets for |group_id|.
  KafkaError CheckTxnOffsetCommit(const std::string& transactional_id, std::int64_t producer_id,
                                  std::int16_t producer_epoch, const std::string& group_id) const;

  // Fences and aborts transactions open longer than their timeout. The
  // broker calls it every transaction_check_interval_ms.
  void AbortTimedOut(std::int64_t now_ms);

 private:
  enum class State : std::int8_t {
    kEmpty = 0,
    kOngoing = 1,
    kCompleteCommit = 2,
    kCompleteAbort = 3
  };
  struct Txn {
    std::int64_t producer_id = -1;
    std::int16_t epoch = -1;
    std::int32_t timeout_ms = 0;
    State state = State::kEmpty;
    std::set<TopicPartition> partitions;
    std::set<std::string> groups;
    std::int64_t start_ms = 0;
  };

  // Errors common to AddPartitions, AddOffsets and EndTxn; nullptr txn = unknown id.
  KafkaError CheckProducer(const Txn* txn, std::int64_t producer_id,
                           std::int16_t producer_epoch) const;
  void BeginIfIdle(Txn& txn, std::int64_t now_ms);
  // Writes markers with txn.epoch to all partitions, completes offsets.
  KafkaError Complete(const std::string& id, Txn& txn, bool commit, std::int64_t now_ms);
  // Bumps the epoch, moving to a new producer id when it is exhausted.
  void BumpEpoch(Txn& txn);
  // Bumps the epoch of the current producer id so the markers of an abort
  // it forces are newer than anything the old producer can send.
  void FenceEpoch(Txn& txn);
  std::int64_t AllocateProducerId();
  void Save() const;

  LogManager* logs_;
  OffsetStore* offsets_;
  std::string state_path_;
  BrokerOptions options_;
  const Logger* logger_;
  std::map<std::string, Txn> txns_;
  std::int64_t next_producer_id_ = 1000;
};

}  // namespace ctrjoin::testbroker
