// Produce, Fetch (with long-poll parking) and ListOffsets handlers of
// BrokerCore (see broker_core.h). Requests are decoded completely before
// anything is appended, so a malformed request has no effect.

#include <algorithm>
#include <limits>

#include "tests/support/kafka_broker/broker_core.h"

namespace ctrjoin::testbroker {
namespace {

constexpr std::int64_t kLatestTimestamp = -1;
constexpr std::int64_t kEarliestTimestamp = -2;

}  // namespace

HandlerOutcome BrokerCore::HandleProduce(const RequestHeader& header, WireReader& r) {
  const std::int16_t version = header.api_version;
  struct PartitionIn {
    std::int32_t index;
    std::optional<Bytes> records;
  };
  using TopicIn = TopicEntries<PartitionIn>;
  if (version >= 3) r.NullableString();  // TransactionalId
  const std::int16_t acks = r.Int16();
  r.Int32();  // TimeoutMs: appends complete at once on a single node
  const std::vector<TopicIn> topics = ReadTopicArray<PartitionIn>(r, [](WireReader& r) {
    PartitionIn part;
    part.index = r.Int32();
    part.records = r.NullableBytes();
    return part;
  });
  if (!r.ok()) return HandlerOutcome::Close();

  OutFrame frame(header.correlation_id);
  WireWriter& w = frame.w();
  w.ArrayCount(topics.size());
  for (const TopicIn& topic : topics) {
    w.String(topic.name);
    w.ArrayCount(topic.partitions.size());
    for (const PartitionIn& p : topic.partitions) {
      AppendResult result{KafkaError::kUnknownTopicOrPartition, -1};
      PartitionLog* log = logs_.Find(topic.name, p.index);
      if (log != nullptr) {
        BatchHeader batch;
        result.error =
            p.records ? ValidateProducedRecords(*p.records, &batch) : KafkaError::kInvalidRecord;
        if (result.error == KafkaError::kNone) result = log->AppendProduced(*p.records, batch);
      }
      if (result.error != KafkaError::kNone) {
        logger_->Info("produce to {}-{} rejected with error {}", topic.name, p.index,
                      Code(result.error));
      }
      w.Int32(p.index);
      w.Int16(Code(result.error));
      w.Int64(result.base_offset);
      if (version >= 2) w.Int64(-1);  // LogAppendTimeMs: CreateTime is used
      if (version >= 5) w.Int64(log != nullptr ? log->log_start_offset() : -1);
    }
  }
  if (version >= 1) w.Int32(0);  // ThrottleTimeMs comes last in Produce
  // acks=0 producers read no response at all.
  if (acks == 0) return HandlerOutcome::NoResponse();
  return HandlerOutcome::Respond(std::move(frame));
}

HandlerOutcome BrokerCore::HandleFetch(const RequestHeader& header, const ReplyTarget& target,
                                       WireReader& r) {
  const std::int16_t version = header.api_version;
  FetchRequest req;
  req.version = version;
  req.correlation_id = header.correlation_id;
  r.Int32();  // ReplicaId
  req.max_wait_ms = r.Int32();
  req.min_bytes = r.Int32();
  req.max_bytes = version >= 3 ? r.Int32() : std::numeric_limits<std::int32_t>::max();
  if (version >= 4 && r.Int8() == 1) req.isolation = Isolation::kReadCommitted;
  if (version >= 7) {
    r.Int32();  // SessionId: always a sessionless full fetch here
    r.Int32();  // SessionEpoch
  }
  req.topics = ReadTopicArray<FetchPartition>(r, [version](WireReader& r) {
    FetchPartition part;
    part.partition = r.Int32();
    if (version >= 9) r.Int32();  // CurrentLeaderEpoch
    part.fetch_offset = r.Int64();
    if (version >= 5) r.Int64();  // LogStartOffset (followers only)
    part.max_bytes = r.Int32();
    return part;
  });
  if (version >= 7) {
    // ForgottenTopicsData: only for fetch sessions, which we do not keep.
    ReadTopicArray<std::int32_t>(r, [](WireReader& r) { return r.Int32(); });
  }
  if (version >= 11) r.NullableString();  // RackId
  if (!r.ok()) return HandlerOutcome::Close();

  std::optional<OutFrame> frame = TryCompleteFetch(req, req.max_wait_ms <= 0);
  if (frame) return HandlerOutcome::Respond(std::move(*frame));
  std::int64_t deadline = SteadyNowMs() + req.max_wait_ms;
  parked_fetches_.push_back({target, std::move(req), deadline});
  return HandlerOutcome::Deferred();
}

std::optional<OutFrame> BrokerCore::TryCompleteFetch(const FetchRequest& req,
                                                     bool deadline_reached) {
  struct PartitionOut {
    std::int32_t partition = 0;
    std::int64_t high_watermark = -1;
    std::int64_t last_stable_offset = -1;
    std::int64_t log_start_offset = -1;
    ReadResult read;
  };
  std::vector<std::vector<PartitionOut>> results;
  const auto budget = static_cast<std::size_t>(std::max(req.max_bytes, 0));
  std::size_t total = 0;
  bool any_error = false;
  for (const FetchTopic& topic : req.topics) {
    std::vector<PartitionOut>& outs = results.emplace_back();
    for (const FetchPartition& p : topic.partitions) {
      PartitionOut out;
      out.partition = p.partition;
      PartitionLog* log = logs_.Find(topic.name, p.partition);
      if (log == nullptr) {
        out.read.error = KafkaError::kUnknownTopicOrPartition;
      } else {
        out.high_watermark = log->high_watermark();
        out.last_stable_offset = log->last_stable_offset();
        out.log_start_offset = log->log_start_offset();
        std::size_t limit = std::min(static_cast<std::size_t>(std::max(p.max_bytes, 0)),
                                     total >= budget ? 0 : budget - total);
        // KIP-74: the first partition with data returns at least one whole
        // batch even if it exceeds the limits, so clients never stall.
        out.read = log->Read(p.fetch_offset, limit, /*at_least_one=*/total == 0, req.isolation);
        total += out.read.bytes;
      }
      if (out.read.error != KafkaError::kNone) any_error = true;
      outs.push_back(std::move(out));
    }
  }
  if (!deadline_reached && !any_error &&
      total < static_cast<std::size_t>(std::max(req.min_bytes, 0))) {
    return std::nullopt;
  }

  const std::int16_t version = req.version;
  OutFrame frame(req.correlation_id);
  if (version >= 1) frame.w().Int32(0);  // ThrottleTimeMs
  if (version >= 7) {
    frame.w().Int16(Code(KafkaError::kNone));
    frame.w().Int32(0);  // SessionId
  }
  frame.w().ArrayCount(req.topics.size());
  for (std::size_t t = 0; t < req.topics.size(); ++t) {
    frame.w().String(req.topics[t].name);
    frame.w().ArrayCount(results[t].size());
    for (const PartitionOut& out : results[t]) {
      WireWriter& w = frame.w();
      w.Int32(out.partition);
      w.Int16(Code(out.read.error));
      w.Int64(out.high_watermark);
      if (version >= 4) w.Int64(out.last_stable_offset);
      if (version >= 5) w.Int64(out.log_start_offset);
      if (version >= 4) {
        if (req.isolation == Isolation::kReadCommitted) {
          w.ArrayCount(out.read.aborted.size());
          for (const AbortedTxn& a : out.read.aborted) {
            w.Int64(a.producer_id);
            w.Int64(a.first_offset);
          }
        } else {
          w.NullArray();
        }
      }
      if (version >= 11) w.Int32(-1);  // PreferredReadReplica
      w.Int32(static_cast<std::int32_t>(out.read.bytes));
      for (const LogSlice& slice : out.read.slices) {
        frame.AppendShared(slice.chunk, slice.data, slice.size);
      }
    }
  }
  return frame;
}

void BrokerCore::PollParkedFetches(std::int64_t now_ms) {
  const bool data_changed = logs_.appends() != appends_seen_;
  appends_seen_ = logs_.appends();
  if (parked_fetches_.empty()) return;
  std::vector<ParkedFetch> waiting;
  for (ParkedFetch& parked : parked_fetches_) {
    const bool due = now_ms >= parked.deadline_ms;
    std::optional<OutFrame> frame;
    if (due || data_changed) frame = TryCompleteFetch(parked.request, due);
    if (frame) {
      server_->Reply(parked.target, std::move(*frame));
    } else {
      waiting.push_back(std::move(parked));
    }
  }
  parked_fetches_ = std::move(waiting);
}

HandlerOutcome BrokerCore::HandleListOffsets(const RequestHeader& header, WireReader& r) {
  const std::int16_t version = header.api_version;
  struct PartitionIn {
    std::int32_t index;
    std::int64_t timestamp;
  };
  using TopicIn = TopicEntries<PartitionIn>;
  r.Int32();  // ReplicaId
  Isolation isolation = Isolation::kReadUncommitted;
  if (version >= 2 && r.Int8() == 1) isolation = Isolation::kReadCommitted;
  const std::vector<TopicIn> topics = ReadTopicArray<PartitionIn>(r, [version](WireReader& r) {
    PartitionIn part;
    part.index = r.Int32();
    part.timestamp = r.Int64();
    if (version == 0) r.Int32();  // MaxNumOffsets
    return part;
  });
  if (!r.ok()) return HandlerOutcome::Close();

  OutFrame frame(header.correlation_id);
  WireWriter& w = frame.w();
  if (version >= 2) w.Int32(0);  // ThrottleTimeMs
  w.ArrayCount(topics.size());
  for (const TopicIn& topic : topics) {
    w.String(topic.name);
    w.ArrayCount(topic.partitions.size());
    for (const PartitionIn& p : topic.partitions) {
      KafkaError error = KafkaError::kNone;
      RecordTime found;  // offset -1 / timestamp -1: nothing found
      const PartitionLog* log = logs_.Find(topic.name, p.index);
      if (log == nullptr) {
        error = KafkaError::kUnknownTopicOrPartition;
      } else if (p.timestamp == kLatestTimestamp) {
        found.offset = log->visible_end(isolation);
      } else if (p.timestamp == kEarliestTimestamp) {
        found.offset = log->log_start_offset();
      } else if (auto at = log->OffsetForTimestamp(p.timestamp, isolation); !at.ok()) {
        logger_->Warn("ListOffsets {}-{} at timestamp {}: {}", topic.name, p.index, p.timestamp,
                      at.status().message());
        error = KafkaError::kCorruptMessage;
      } else if (at.value()) {
        found = *at.value();
      }
      w.Int32(p.index);
      w.Int16(Code(error));
      if (version == 0) {
        w.ArrayCount(found.offset >= 0 ? 1 : 0);
        if (found.offset >= 0) w.Int64(found.offset);
      } else {
        w.Int64(found.timestamp);
        w.Int64(found.offset);
      }
    }
  }
  return HandlerOutcome::Respond(std::move(frame));
}

// DeleteRecords v0/v1 (same layout): moves each partition's log start up
// (LogManager::DeleteRecords). Request: Topics[Name, Partitions[Index,
// Offset]], TimeoutMs; response: ThrottleTimeMs, Topics[Name,
// Partitions[Index, LowWatermark, ErrorCode]].
HandlerOutcome BrokerCore::HandleDeleteRecords(const RequestHeader& header, WireReader& r) {
  using PartitionIn = std::pair<std::int32_t, std::int64_t>;
  const std::vector<TopicEntries<PartitionIn>> topics =
      ReadTopicArray<PartitionIn>(r, [](WireReader& r) {
        const std::int32_t index = r.Int32();
        return PartitionIn{index, r.Int64()};
      });
  r.Int32();  // TimeoutMs: a single node answers at once
  if (!r.ok()) return HandlerOutcome::Close();

  OutFrame frame(header.correlation_id);
  WireWriter& w = frame.w();
  w.Int32(0);  // ThrottleTimeMs
  w.ArrayCount(topics.size());
  for (const auto& topic : topics) {
    w.String(topic.name);
    w.ArrayCount(topic.partitions.size());
    for (const auto& [index, offset] : topic.partitions) {
      const auto [error, low] = logs_.DeleteRecords(topic.name, index, offset);
      if (error == KafkaError::kNone) {
        logger_->Info("DeleteRecords {}-{}: log start is now {}", topic.name, index, low);
      }
      w.Int32(index);
      w.Int64(low);
      w.Int16(Code(error));
    }
  }
  return HandlerOutcome::Respond(std::move(frame));
}

}  // namespace ctrjoin::testbroker
