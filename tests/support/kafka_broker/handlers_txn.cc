// Idempotence and transaction handlers of BrokerCore (see broker_core.h):
// InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn and
// TxnOffsetCommit. The advertised versions (all < 2) share one layout per
// API apart from TxnOffsetCommit's leader epoch (v2).

#include "tests/support/kafka_broker/broker_core.h"

namespace ctrjoin::testbroker {
namespace {

OutFrame EncodeErrorOnly(std::int32_t correlation_id, KafkaError error) {
  OutFrame frame(correlation_id);
  frame.w().Int32(0);  // ThrottleTimeMs
  frame.w().Int16(Code(error));
  return frame;
}

}  // namespace

HandlerOutcome BrokerCore::HandleInitProducerId(const RequestHeader& header, WireReader& r) {
  std::optional<std::string> transactional_id = r.NullableString();
  std::int32_t timeout_ms = r.Int32();
  if (!r.ok()) return HandlerOutcome::Close();
  ProducerIdResult result = txns_.InitProducerId(transactional_id, timeout_ms, WallNowMs());
  OutFrame frame(header.correlation_id);
  WireWriter& w = frame.w();
  w.Int32(0);  // ThrottleTimeMs
  w.Int16(Code(result.error));
  w.Int64(result.producer_id);
  w.Int16(result.producer_epoch);
  return HandlerOutcome::Respond(std::move(frame));
}

HandlerOutcome BrokerCore::HandleAddPartitionsToTxn(const RequestHeader& header, WireReader& r) {
  std::string transactional_id = r.String();
  std::int64_t producer_id = r.Int64();
  std::int16_t producer_epoch = r.Int16();
  std::vector<TopicPartition> partitions;
  for (const auto& topic :
       ReadTopicArray<std::int32_t>(r, [](WireReader& r) { return r.Int32(); })) {
    for (std::int32_t p : topic.partitions) partitions.push_back({topic.name, p});
  }
  if (!r.ok()) return HandlerOutcome::Close();
  std::map<TopicPartition, KafkaError> results =
      txns_.AddPartitions(transactional_id, producer_id, producer_epoch, partitions, WallNowMs());

  // |results| is ordered by topic, so each topic's partitions are adjacent.
  std::vector<std::pair<std::string, std::vector<std::pair<std::int32_t, KafkaError>>>> by_topic;
  for (const auto& [tp, error] : results) {
    if (by_topic.empty() || by_topic.back().first != tp.topic) by_topic.push_back({tp.topic, {}});
    by_topic.back().second.emplace_back(tp.partition, error);
  }
  OutFrame frame(header.correlation_id);
  WireWriter& w = frame.w();
  w.Int32(0);  // ThrottleTimeMs
  w.ArrayCount(by_topic.size());
  for (const auto& [topic, errors] : by_topic) {
    w.String(topic);
    w.ArrayCount(errors.size());
    for (const auto& [partition, error] : errors) {
      w.Int32(partition);
      w.Int16(Code(error));
    }
  }
  return HandlerOutcome::Respond(std::move(frame));
}

HandlerOutcome BrokerCore::HandleAddOffsetsToTxn(const RequestHeader& header, WireReader& r) {
  std::string transactional_id = r.String();
  std::int64_t producer_id = r.Int64();
  std::int16_t producer_epoch = r.Int16();
  std::string group_id = r.String();
  if (!r.ok()) return HandlerOutcome::Close();
  KafkaError error =
      txns_.AddOffsets(transactional_id, producer_id, producer_epoch, group_id, WallNowMs());
  return HandlerOutcome::Respond(EncodeErrorOnly(header.correlation_id, error));
}

HandlerOutcome BrokerCore::HandleEndTxn(const RequestHeader& header, WireReader& r) {
  std::string transactional_id = r.String();
  std::int64_t producer_id = r.Int64();
  std::int16_t producer_epoch = r.Int16();
  bool commit = r.Bool();
  if (!r.ok()) return HandlerOutcome::Close();
  KafkaError error =
      txns_.EndTxn(transactional_id, producer_id, producer_epoch, commit, WallNowMs());
  return HandlerOutcome::Respond(EncodeErrorOnly(header.correlation_id, error));
}

HandlerOutcome BrokerCore::HandleTxnOffsetCommit(const RequestHeader& header, WireReader& r) {
  const std::int16_t version = header.api_version;
  std::string transactional_id = r.String();
  std::string group_id = r.String();
  std::int64_t producer_id = r.Int64();
  std::int16_t producer_epoch = r.Int16();
  using PartitionIn = std::pair<std::int32_t, OffsetEntry>;
  using TopicIn = TopicEntries<PartitionIn>;
  const std::vector<TopicIn> topics = ReadTopicArray<PartitionIn>(r, [version](WireReader& r) {
    const std::int32_t index = r.Int32();
    OffsetEntry entry;
    entry.offset = r.Int64();
    if (version >= 2) entry.leader_epoch = r.Int32();
    entry.metadata = r.NullableString();
    return PartitionIn{index, std::move(entry)};
  });
  if (!r.ok()) return HandlerOutcome::Close();

  KafkaError error =
      txns_.CheckTxnOffsetCommit(transactional_id, producer_id, producer_epoch, group_id);
  if (error == KafkaError::kNone) {
    OffsetMap pending;
    for (const TopicIn& topic : topics) {
      for (const auto& [index, entry] : topic.partitions) pending[{topic.name, index}] = entry;
    }
    Status st = offsets_.AddPending(group_id, producer_id, pending);
    if (!st.ok()) {
      logger_->Warn("staging offsets of group {}: {}", group_id, st.message());
      error = KafkaError::kKafkaStorageError;
    }
  }

  OutFrame frame(header.correlation_id);
  WireWriter& w = frame.w();
  w.Int32(0);  // ThrottleTimeMs
  w.ArrayCount(topics.size());
  for (const TopicIn& topic : topics) {
    w.String(topic.name);
    w.ArrayCount(topic.partitions.size());
    for (const auto& [index, entry] : topic.partitions) {
      w.Int32(index);
      w.Int16(Code(error));
    }
  }
  return HandlerOutcome::Respond(std::move(frame));
}

}  // namespace ctrjoin::testbroker
