// Idempotence and transaction handlers of BrokerCore (see broker_core.h):
// InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn and
// TxnOffsetCommit. The advertised versions share one layout per API apart
// from TxnOffsetCommit's leader epoch (v2) and its flexible v3 (KIP-447),
// which carries the consumer's generation and member id.

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
  // v3 (KIP-447) is flexible: request header v2 (its tagged fields come
  // first), compact strings and arrays, tagged fields at every level, and
  // the consumer's group identity, so that a zombie member is fenced.
  const std::int16_t version = header.api_version;
  const bool flexible = version >= 3;
  if (flexible) r.SkipTaggedFields();
  auto string = [&r, flexible] {
    return flexible ? r.CompactNullableString().value_or(std::string()) : r.String();
  };
  std::string transactional_id = string();
  std::string group_id = string();
  std::int64_t producer_id = r.Int64();
  std::int16_t producer_epoch = r.Int16();
  std::int32_t generation = -1;
  std::string member_id;
  if (flexible) {
    generation = r.Int32();
    member_id = string();
    r.CompactNullableString();  // GroupInstanceId: static membership is not supported
  }
  using PartitionIn = std::pair<std::int32_t, OffsetEntry>;
  using TopicIn = TopicEntries<PartitionIn>;
  auto read_partition = [version, flexible](WireReader& r) {
    const std::int32_t index = r.Int32();
    OffsetEntry entry;
    entry.offset = r.Int64();
    if (version >= 2) entry.leader_epoch = r.Int32();
    entry.metadata = flexible ? r.CompactNullableString() : r.NullableString();
    if (flexible) r.SkipTaggedFields();
    return PartitionIn{index, std::move(entry)};
  };
  std::vector<TopicIn> topics;
  if (flexible) {
    for (std::uint64_t t = r.UVarint(); t > 1 && r.ok(); --t) {
      TopicIn topic;
      topic.name = string();
      for (std::uint64_t p = r.UVarint(); p > 1 && r.ok(); --p) {
        topic.partitions.push_back(read_partition(r));
      }
      r.SkipTaggedFields();
      topics.push_back(std::move(topic));
    }
    r.SkipTaggedFields();
  } else {
    topics = ReadTopicArray<PartitionIn>(r, read_partition);
  }
  if (!r.ok()) return HandlerOutcome::Close();

  KafkaError error =
      txns_.CheckTxnOffsetCommit(transactional_id, producer_id, producer_epoch, group_id);
  if (error == KafkaError::kNone) {
    error = groups_.CheckTxnOffsetCommit(group_id, generation, member_id);
  }
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
  } else if (flexible) {
    logger_->Info("TxnOffsetCommit of {} for group {} (generation {}, member '{}') refused: {}",
                  transactional_id, group_id, generation, member_id, Code(error));
  }

  OutFrame frame(header.correlation_id);
  WireWriter& w = frame.w();
  if (flexible) w.NoTaggedFields();  // response header v1
  w.Int32(0);                        // ThrottleTimeMs
  auto write_count = [&w, flexible](std::size_t n) {
    if (flexible) {
      w.CompactArrayCount(n);
    } else {
      w.ArrayCount(n);
    }
  };
  write_count(topics.size());
  for (const TopicIn& topic : topics) {
    if (flexible) {
      w.UVarint(topic.name.size() + 1);  // compact string
      w.Raw(topic.name.data(), topic.name.size());
    } else {
      w.String(topic.name);
    }
    write_count(topic.partitions.size());
    for (const auto& [index, entry] : topic.partitions) {
      w.Int32(index);
      w.Int16(Code(error));
      if (flexible) w.NoTaggedFields();
    }
    if (flexible) w.NoTaggedFields();
  }
  if (flexible) w.NoTaggedFields();
  return HandlerOutcome::Respond(std::move(frame));
}

}  // namespace ctrjoin::testbroker
