#include "tests/support/kafka_broker/txn_coordinator.h"

#include <algorithm>

#include "tests/support/kafka_broker/storage.h"
#include "tests/support/kafka_broker/wire.h"

namespace ctrjoin::testbroker {
namespace {

constexpr std::int32_t kFormatVersion = 1;
// Kafka moves to a new producer id before the epoch reaches Short.MAX_VALUE.
constexpr std::int16_t kMaxEpoch = 32766;

}  // namespace

Status TxnCoordinator::Load() {
  next_producer_id_ = std::max(next_producer_id_, logs_->max_recovered_producer_id() + 1);
  if (state_path_.empty()) return Status::Ok();
  auto contents = ReadWholeFile(state_path_);
  if (!contents.ok()) {
    if (contents.status().code() == StatusCode::kNotFound) return Status::Ok();
    return contents.status();
  }
  const std::string& s = contents.value();
  WireReader r(Bytes(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()));
  if (r.Int32() != kFormatVersion) return Status::Corruption("unknown format in " + state_path_);
  next_producer_id_ = std::max(next_producer_id_, r.Int64());
  std::int32_t count = r.ArrayCount();
  for (std::int32_t i = 0; i < count && r.ok(); ++i) {
    Txn& txn = txns_[r.String()];
    txn.producer_id = r.Int64();
    txn.epoch = r.Int16();
    txn.timeout_ms = r.Int32();
    std::int8_t state = r.Int8();
    if (state < 0 || state > static_cast<std::int8_t>(State::kCompleteAbort)) r.Fail();
    txn.state = static_cast<State>(state);
    txn.start_ms = r.Int64();
    std::int32_t partitions = r.ArrayCount();
    for (std::int32_t p = 0; p < partitions && r.ok(); ++p) {
      TopicPartition tp;
      tp.topic = r.String();
      tp.partition = r.Int32();
      txn.partitions.insert(std::move(tp));
    }
    std::int32_t groups = r.ArrayCount();
    for (std::int32_t g = 0; g < groups && r.ok(); ++g) txn.groups.insert(r.String());
  }
  if (!r.ok() || r.remaining() != 0) return Status::Corruption("truncated " + state_path_);
  return Status::Ok();
}

void TxnCoordinator::Save() const {
  if (state_path_.empty()) return;
  std::string out;
  WireWriter w(&out);
  w.Int32(kFormatVersion);
  w.Int64(next_producer_id_);
  w.ArrayCount(txns_.size());
  for (const auto& [id, txn] : txns_) {
    w.String(id);
    w.Int64(txn.producer_id);
    w.Int16(txn.epoch);
    w.Int32(txn.timeout_ms);
    w.Int8(static_cast<std::int8_t>(txn.state));
    w.Int64(txn.start_ms);
    w.ArrayCount(txn.partitions.size());
    for (const TopicPartition& tp : txn.partitions) {
      w.String(tp.topic);
      w.Int32(tp.partition);
    }
    w.ArrayCount(txn.groups.size());
    for (const std::string& g : txn.groups) w.String(g);
  }
  Status st = WriteFileAtomically(state_path_, out);
  if (!st.ok()) logger_->Warn("saving transaction state: {}", st.message());
}

std::int64_t TxnCoordinator::AllocateProducerId() { return next_producer_id_++; }

void TxnCoordinator::BumpEpoch(Txn& txn) {
  if (txn.epoch >= kMaxEpoch) {
    txn.producer_id = AllocateProducerId();
    txn.epoch = 0;
  } else {
    ++txn.epoch;
  }
}

void TxnCoordinator::FenceEpoch(Txn& txn) {
  // Epochs stay <= kMaxEpoch outside of a fence, so this cannot overflow;
  // the next BumpEpoch then moves to a new producer id.
  txn.epoch = static_cast<std::int16_t>(txn.epoch + 1);
}

ProducerIdResult TxnCoordinator::InitProducerId(const std::optional<std::string>& transactional_id,
                                                std::int32_t timeout_ms, std::int64_t now_ms) {
  if (!transactional_id) {
    std::int64_t pid = AllocateProducerId();
    Save();
    return {KafkaError::kNone, pid, 0};
  }
  if (transactional_id->empty()) return {KafkaError::kInvalidRequest};
  if (timeout_ms <= 0 || timeout_ms > options_.max_transaction_timeout_ms) {
    return {KafkaError::kInvalidTransactionTimeout};
  }
  auto [it, inserted] = txns_.try_emplace(*transactional_id);
  Txn& txn = it->second;
  if (inserted) {
    txn.producer_id = AllocateProducerId();
    txn.epoch = 0;
  } else {
    if (txn.state == State::kOngoing) {
      // Fence the current producer: its transaction is aborted with a newer
      // epoch, so any of its later requests fail with INVALID_PRODUCER_EPOCH.
      logger_->Info("transactional id {}: fencing epoch {} and aborting its transaction",
                    *transactional_id, txn.epoch);
      FenceEpoch(txn);
      Complete(*transactional_id, txn, /*commit=*/false, now_ms);
    }
    BumpEpoch(txn);
  }
  txn.timeout_ms = timeout_ms;
  txn.state = State::kEmpty;
  txn.partitions.clear();
  txn.groups.clear();
  Save();
  logger_->Info("transactional id {}: producer id {} epoch {}", *transactional_id, txn.producer_id,
                txn.epoch);
  return {KafkaError::kNone, txn.producer_id, txn.epoch};
}

KafkaError TxnCoordinator::CheckProducer(const Txn* txn, std::int64_t producer_id,
                                         std::int16_t producer_epoch) const {
  if (txn == nullptr || txn->producer_id != producer_id) {
    return KafkaError::kInvalidProducerIdMapping;
  }
  if (producer_epoch != txn->epoch) return KafkaError::kInvalidProducerEpoch;
  return KafkaError::kNone;
}

void TxnCoordinator::BeginIfIdle(Txn& txn, std::int64_t now_ms) {
  if (txn.state == State::kOngoing) return;
  txn.state = State::kOngoing;
  txn.partitions.clear();
  txn.groups.clear();
  txn.start_ms = now_ms;
}

std::map<TopicPartition, KafkaError> TxnCoordinator::AddPartitions(
    const std::string& transactional_id, std::int64_t producer_id, std::int16_t producer_epoch,
    const std::vector<TopicPartition>& partitions, std::int64_t now_ms) {
  std::map<TopicPartition, KafkaError> result;
  auto it = txns_.find(transactional_id);
  Txn* txn = it == txns_.end() ? nullptr : &it->second;
  KafkaError err = CheckProducer(txn, producer_id, producer_epoch);
  bool any_unknown = false;
  if (err == KafkaError::kNone) {
    for (const TopicPartition& tp : partitions) {
      if (logs_->Find(tp.topic, tp.partition) == nullptr) any_unknown = true;
    }
  }
  for (const TopicPartition& tp : partitions) {
    if (err != KafkaError::kNone) {
      result[tp] = err;
    } else if (any_unknown) {
      result[tp] = logs_->Find(tp.topic, tp.partition) == nullptr
                       ? KafkaError::kUnknownTopicOrPartition
                       : KafkaError::kOperationNotAttempted;
    } else {
      result[tp] = KafkaError::kNone;
    }
  }
  if (err != KafkaError::kNone || any_unknown) return result;
  BeginIfIdle(*txn, now_ms);
  txn->partitions.insert(partitions.begin(), partitions.end());
  Save();
  return result;
}

KafkaError TxnCoordinator::AddOffsets(const std::string& transactional_id, std::int64_t producer_id,
                                      std::int16_t producer_epoch, const std::string& group_id,
                                      std::int64_t now_ms) {
  auto it = txns_.find(transactional_id);
  Txn* txn = it == txns_.end() ? nullptr : &it->second;
  KafkaError err = CheckProducer(txn, producer_id, producer_epoch);
  if (err != KafkaError::kNone) return err;
  if (group_id.empty()) return KafkaError::kInvalidGroupId;
  BeginIfIdle(*txn, now_ms);
  txn->groups.insert(group_id);
  Save();
  return KafkaError::kNone;
}

KafkaError TxnCoordinator::EndTxn(const std::string& transactional_id, std::int64_t producer_id,
                                  std::int16_t producer_epoch, bool commit, std::int64_t now_ms) {
  auto it = txns_.find(transactional_id);
  Txn* txn = it == txns_.end() ? nullptr : &it->second;
  KafkaError err = CheckProducer(txn, producer_id, producer_epoch);
  if (err != KafkaError::kNone) return err;
  switch (txn->state) {
    case State::kOngoing: return Complete(transactional_id, *txn, commit, now_ms);
    case State::kCompleteCommit:  // a retry of a completed EndTxn
      return commit ? KafkaError::kNone : KafkaError::kInvalidTxnState;
    case State::kCompleteAbort: return commit ? KafkaError::kInvalidTxnState : KafkaError::kNone;
    case State::kEmpty: return KafkaError::kInvalidTxnState;
  }
  return KafkaError::kInvalidTxnState;
}

KafkaError TxnCoordinator::CheckTxnOffsetCommit(const std::string& transactional_id,
                                                std::int64_t producer_id,
                                                std::int16_t producer_epoch,
                                                const std::string& group_id) const {
  auto it = txns_.find(transactional_id);
  const Txn* txn = it == txns_.end() ? nullptr : &it->second;
  KafkaError err = CheckProducer(txn, producer_id, producer_epoch);
  if (err != KafkaError::kNone) return err;
  if (txn->state != State::kOngoing || !txn->groups.contains(group_id)) {
    return KafkaError::kInvalidTxnState;
  }
  return KafkaError::kNone;
}

KafkaError TxnCoordinator::Complete(const std::string& id, Txn& txn, bool commit,
                                    std::int64_t now_ms) {
  KafkaError result = KafkaError::kNone;
  ControlType type = commit ? ControlType::kCommit : ControlType::kAbort;
  for (const TopicPartition& tp : txn.partitions) {
    PartitionLog* log = logs_->Find(tp.topic, tp.partition);
    if (log == nullptr) continue;
    auto marker = log->AppendMarker(txn.producer_id, txn.epoch, type, now_ms);
    if (!marker.ok()) {
      logger_->Warn("writing marker to {}-{}: {}", tp.topic, tp.partition,
                    marker.status().message());
      result = KafkaError::kKafkaStorageError;
    }
  }
  for (const std::string& group : txn.groups) {
    Status st = offsets_->CompletePending(group, txn.producer_id, commit);
    if (!st.ok()) {
      logger_->Warn("completing offsets of group {}: {}", group, st.message());
      result = KafkaError::kKafkaStorageError;
    }
  }
  logger_->Info("transactional id {}: {} (pid {} epoch {}, {} partitions, {} groups)", id,
                commit ? "committed" : "aborted", txn.producer_id, txn.epoch, txn.partitions.size(),
                txn.groups.size());
  txn.partitions.clear();
  txn.groups.clear();
  txn.state = commit ? State::kCompleteCommit : State::kCompleteAbort;
  Save();
  return result;
}

void TxnCoordinator::AbortTimedOut(std::int64_t now_ms) {
  for (auto& [id, txn] : txns_) {
    if (txn.state != State::kOngoing || now_ms <= txn.start_ms + txn.timeout_ms) continue;
    logger_->Info("transactional id {}: timed out after {} ms; fencing epoch {}", id,
                  now_ms - txn.start_ms, txn.epoch);
    FenceEpoch(txn);
    Complete(id, txn, /*commit=*/false, now_ms);
  }
}

}  // namespace ctrjoin::testbroker
