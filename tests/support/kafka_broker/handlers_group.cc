// Consumer group handlers of BrokerCore (see broker_core.h): JoinGroup and
// SyncGroup (answered through callbacks, possibly later), Heartbeat,
// LeaveGroup, OffsetCommit and OffsetFetch.

#include "tests/support/kafka_broker/broker_core.h"

namespace ctrjoin::testbroker {
namespace {

std::string ToString(Bytes b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

Bytes AsBytes(const std::string& s) {
  return Bytes(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

OutFrame EncodeJoinGroup(std::int16_t version, std::int32_t correlation_id,
                         const JoinGroupResult& result) {
  OutFrame frame(correlation_id);
  WireWriter& w = frame.w();
  if (version >= 2) w.Int32(0);  // ThrottleTimeMs
  w.Int16(Code(result.error));
  w.Int32(result.generation);
  w.String(result.protocol_name);
  w.String(result.leader);
  w.String(result.member_id);
  w.ArrayCount(result.members.size());
  for (const JoinGroupMember& m : result.members) {
    w.String(m.member_id);
    if (version >= 5) w.NullableString(m.group_instance_id);
    w.BytesField(AsBytes(m.metadata));
  }
  return frame;
}

OutFrame EncodeSyncGroup(std::int16_t version, std::int32_t correlation_id,
                         const SyncGroupResult& result) {
  OutFrame frame(correlation_id);
  WireWriter& w = frame.w();
  if (version >= 1) w.Int32(0);  // ThrottleTimeMs
  w.Int16(Code(result.error));
  w.BytesField(AsBytes(result.assignment));
  return frame;
}

// Heartbeat and LeaveGroup (v1+) share this layout.
OutFrame EncodeErrorOnly(std::int16_t version, std::int32_t correlation_id, KafkaError error) {
  OutFrame frame(correlation_id);
  if (version >= 1) frame.w().Int32(0);  // ThrottleTimeMs
  frame.w().Int16(Code(error));
  return frame;
}

}  // namespace

HandlerOutcome BrokerCore::HandleJoinGroup(const RequestHeader& header, const ReplyTarget& target,
                                           WireReader& r) {
  const std::int16_t version = header.api_version;
  JoinGroupRequest req;
  req.group_id = r.String();
  req.session_timeout_ms = r.Int32();
  req.rebalance_timeout_ms = version >= 1 ? r.Int32() : req.session_timeout_ms;
  req.member_id = r.String();
  if (version >= 5) req.group_instance_id = r.NullableString();
  req.protocol_type = r.String();
  std::int32_t n = r.ArrayCount();
  for (std::int32_t i = 0; i < n && r.ok(); ++i) {
    GroupProtocol p;
    p.name = r.String();
    p.metadata = ToString(r.BytesField());
    req.protocols.push_back(std::move(p));
  }
  req.client_id = header.client_id.value_or("");
  if (!r.ok()) return HandlerOutcome::Close();
  const std::int32_t correlation_id = header.correlation_id;
  groups_.Join(std::move(req), SteadyNowMs(),
               [this, target, version, correlation_id](const JoinGroupResult& result) {
                 server_->Reply(target, EncodeJoinGroup(version, correlation_id, result));
               });
  return HandlerOutcome::Deferred();
}

HandlerOutcome BrokerCore::HandleSyncGroup(const RequestHeader& header, const ReplyTarget& target,
                                           WireReader& r) {
  const std::int16_t version = header.api_version;
  std::string group_id = r.String();
  std::int32_t generation = r.Int32();
  std::string member_id = r.String();
  if (version >= 3) r.NullableString();  // GroupInstanceId
  std::vector<std::pair<std::string, std::string>> assignments;
  std::int32_t n = r.ArrayCount();
  for (std::int32_t i = 0; i < n && r.ok(); ++i) {
    std::string member = r.String();
    assignments.emplace_back(std::move(member), ToString(r.BytesField()));
  }
  if (!r.ok()) return HandlerOutcome::Close();
  const std::int32_t correlation_id = header.correlation_id;
  groups_.Sync(group_id, generation, member_id, assignments, SteadyNowMs(),
               [this, target, version, correlation_id](const SyncGroupResult& result) {
                 server_->Reply(target, EncodeSyncGroup(version, correlation_id, result));
               });
  return HandlerOutcome::Deferred();
}

HandlerOutcome BrokerCore::HandleHeartbeat(const RequestHeader& header, WireReader& r) {
  std::string group_id = r.String();
  std::int32_t generation = r.Int32();
  std::string member_id = r.String();
  if (header.api_version >= 3) r.NullableString();  // GroupInstanceId
  if (!r.ok()) return HandlerOutcome::Close();
  KafkaError error = groups_.Heartbeat(group_id, generation, member_id, SteadyNowMs());
  return HandlerOutcome::Respond(EncodeErrorOnly(header.api_version, header.correlation_id, error));
}

HandlerOutcome BrokerCore::HandleLeaveGroup(const RequestHeader& header, WireReader& r) {
  std::string group_id = r.String();
  std::string member_id = r.String();
  if (!r.ok()) return HandlerOutcome::Close();
  KafkaError error = groups_.Leave(group_id, member_id, SteadyNowMs());
  return HandlerOutcome::Respond(EncodeErrorOnly(header.api_version, header.correlation_id, error));
}

// v0 only (what rd_kafka_list_groups sends): ErrorCode, then the groups.
HandlerOutcome BrokerCore::HandleListGroups(const RequestHeader& header, WireReader& r) {
  if (!r.ok()) return HandlerOutcome::Close();
  OutFrame frame(header.correlation_id);
  WireWriter& w = frame.w();
  w.Int16(Code(KafkaError::kNone));
  const std::vector<std::pair<std::string, std::string>> groups = groups_.List();
  w.ArrayCount(groups.size());
  for (const auto& [id, protocol_type] : groups) {
    w.String(id);
    w.String(protocol_type);
  }
  return HandlerOutcome::Respond(std::move(frame));
}

// v0 only: per group its state, protocol and members with their
// subscription and assignment (client host is not tracked: empty).
HandlerOutcome BrokerCore::HandleDescribeGroups(const RequestHeader& header, WireReader& r) {
  std::vector<std::string> ids;
  const std::int32_t n = r.ArrayCount();
  for (std::int32_t i = 0; i < n && r.ok(); ++i) ids.push_back(r.String());
  if (!r.ok()) return HandlerOutcome::Close();
  OutFrame frame(header.correlation_id);
  WireWriter& w = frame.w();
  w.ArrayCount(ids.size());
  for (const std::string& id : ids) {
    const GroupDescription d = groups_.Describe(id);
    w.Int16(Code(KafkaError::kNone));
    w.String(d.group_id);
    w.String(d.state);
    w.String(d.protocol_type);
    w.String(d.protocol_name);
    w.ArrayCount(d.members.size());
    for (const GroupDescription::Member& m : d.members) {
      w.String(m.member_id);
      w.String(m.client_id);
      w.String("");  // ClientHost
      w.BytesField(AsBytes(m.metadata));
      w.BytesField(AsBytes(m.assignment));
    }
  }
  return HandlerOutcome::Respond(std::move(frame));
}

HandlerOutcome BrokerCore::HandleOffsetCommit(const RequestHeader& header, WireReader& r) {
  const std::int16_t version = header.api_version;
  struct PartitionIn {
    std::int32_t index;
    OffsetEntry entry;
  };
  using TopicIn = TopicEntries<PartitionIn>;
  std::string group_id = r.String();
  std::int32_t generation = version >= 1 ? r.Int32() : -1;
  std::string member_id = version >= 1 ? r.String() : std::string();
  if (version >= 7) r.NullableString();         // GroupInstanceId
  if (version >= 2 && version <= 4) r.Int64();  // RetentionTimeMs
  const std::vector<TopicIn> topics = ReadTopicArray<PartitionIn>(r, [version](WireReader& r) {
    PartitionIn part;
    part.index = r.Int32();
    part.entry.offset = r.Int64();
    if (version >= 6) part.entry.leader_epoch = r.Int32();
    if (version == 1) r.Int64();  // CommitTimestamp
    part.entry.metadata = r.NullableString();
    return part;
  });
  if (!r.ok()) return HandlerOutcome::Close();

  const KafkaError group_error = group_id.empty()
                                     ? KafkaError::kInvalidGroupId
                                     : groups_.CheckOffsetCommit(group_id, generation, member_id);
  OffsetMap to_commit;
  std::vector<std::vector<KafkaError>> errors;
  for (const TopicIn& topic : topics) {
    std::vector<KafkaError>& topic_errors = errors.emplace_back();
    for (const PartitionIn& p : topic.partitions) {
      KafkaError error = group_error;
      if (error == KafkaError::kNone && logs_.Find(topic.name, p.index) == nullptr) {
        error = KafkaError::kUnknownTopicOrPartition;
      }
      if (error == KafkaError::kNone) to_commit[{topic.name, p.index}] = p.entry;
      topic_errors.push_back(error);
    }
  }
  if (!to_commit.empty()) {
    Status st = offsets_.Commit(group_id, to_commit);
    if (!st.ok()) {
      logger_->Warn("committing offsets of group {}: {}", group_id, st.message());
      for (auto& topic_errors : errors) {
        for (KafkaError& e : topic_errors) {
          if (e == KafkaError::kNone) e = KafkaError::kKafkaStorageError;
        }
      }
    }
  }

  OutFrame frame(header.correlation_id);
  WireWriter& w = frame.w();
  if (version >= 3) w.Int32(0);  // ThrottleTimeMs
  w.ArrayCount(topics.size());
  for (std::size_t t = 0; t < topics.size(); ++t) {
    w.String(topics[t].name);
    w.ArrayCount(topics[t].partitions.size());
    for (std::size_t p = 0; p < topics[t].partitions.size(); ++p) {
      w.Int32(topics[t].partitions[p].index);
      w.Int16(Code(errors[t][p]));
    }
  }
  return HandlerOutcome::Respond(std::move(frame));
}

HandlerOutcome BrokerCore::HandleOffsetFetch(const RequestHeader& header, WireReader& r) {
  // v6+ is flexible (request header v2: its tagged fields come first); v7
  // adds RequireStable (KIP-447): an offset that an open transaction holds
  // is answered UNSTABLE_OFFSET_COMMIT, and the client asks again, so that a
  // new owner of a partition never starts from an offset about to change.
  const std::int16_t version = header.api_version;
  const bool flexible = version >= 6;
  if (flexible) r.SkipTaggedFields();
  auto string = [&r, flexible] {
    return flexible ? r.CompactNullableString().value_or(std::string()) : r.String();
  };
  std::string group_id = string();
  // Requested partitions by topic; nullopt = everything committed (v2+).
  std::optional<std::vector<std::pair<std::string, std::vector<std::int32_t>>>> requested;
  const std::int64_t topic_count =
      flexible ? static_cast<std::int64_t>(r.UVarint()) - 1 : r.ArrayCount();
  if (topic_count >= 0) {
    requested.emplace();
    for (std::int64_t t = 0; t < topic_count && r.ok(); ++t) {
      auto& [name, partitions] = requested->emplace_back(string(), std::vector<std::int32_t>{});
      const std::int64_t n = flexible ? static_cast<std::int64_t>(r.UVarint()) - 1 : r.ArrayCount();
      for (std::int64_t p = 0; p < n && r.ok(); ++p) partitions.push_back(r.Int32());
      if (flexible) r.SkipTaggedFields();
    }
  }
  const bool require_stable = version >= 7 && r.Bool();
  if (flexible) r.SkipTaggedFields();
  if (!r.ok()) return HandlerOutcome::Close();
  if (!requested) {
    requested.emplace();
    if (const OffsetMap* committed = offsets_.Committed(group_id)) {
      for (const auto& [tp, entry] : *committed) {
        if (requested->empty() || requested->back().first != tp.topic) {
          requested->emplace_back(tp.topic, std::vector<std::int32_t>{});
        }
        requested->back().second.push_back(tp.partition);
      }
    }
  }

  OutFrame frame(header.correlation_id);
  WireWriter& w = frame.w();
  if (flexible) w.NoTaggedFields();  // response header v1
  auto write_count = [&w, flexible](std::size_t n) {
    if (flexible) {
      w.CompactArrayCount(n);
    } else {
      w.ArrayCount(n);
    }
  };
  auto write_string = [&w, flexible](const std::optional<std::string>& s) {
    if (!flexible) return w.NullableString(s);
    if (!s) return w.UVarint(0);
    w.UVarint(s->size() + 1);
    w.Raw(s->data(), s->size());
  };
  if (version >= 3) w.Int32(0);  // ThrottleTimeMs
  write_count(requested->size());
  for (const auto& [topic, partitions] : *requested) {
    write_string(topic);
    write_count(partitions.size());
    for (std::int32_t partition : partitions) {
      // Only committed offsets are visible; pending transactional ones are not.
      const bool unstable = require_stable && offsets_.HasPending(group_id, {topic, partition});
      const OffsetEntry* entry = unstable ? nullptr : offsets_.Find(group_id, {topic, partition});
      w.Int32(partition);
      w.Int64(entry != nullptr ? entry->offset : -1);
      if (version >= 5) w.Int32(entry != nullptr ? entry->leader_epoch : -1);
      write_string(entry != nullptr ? entry->metadata : std::optional<std::string>(""));
      w.Int16(Code(unstable ? KafkaError::kUnstableOffsetCommit : KafkaError::kNone));
      if (flexible) w.NoTaggedFields();
    }
    if (flexible) w.NoTaggedFields();
  }
  if (version >= 2) w.Int16(Code(KafkaError::kNone));
  if (flexible) w.NoTaggedFields();
  return HandlerOutcome::Respond(std::move(frame));
}

}  // namespace ctrjoin::testbroker
