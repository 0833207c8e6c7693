// ApiVersions, Metadata, CreateTopics and FindCoordinator handlers of
// BrokerCore (see broker_core.h). Each decodes the whole request before it
// changes anything, so a malformed request has no effect.

#include <string_view>

#include "tests/support/kafka_broker/broker_core.h"

namespace ctrjoin::testbroker {
namespace {

constexpr std::string_view kHost = "127.0.0.1";
constexpr std::string_view kClusterId = "ctrjoin-testbroker";

void WriteApiRange(WireWriter& w, const ApiVersionRange& api) {
  w.Int16(static_cast<std::int16_t>(api.key));
  w.Int16(api.min_version);
  w.Int16(api.max_version);
}

}  // namespace

HandlerOutcome BrokerCore::HandleApiVersions(const RequestHeader& header, WireReader& r) {
  const std::int16_t version = header.api_version;
  OutFrame frame(header.correlation_id);
  WireWriter& w = frame.w();
  if (version > 3) {
    // Kafka answers an unknown ApiVersions version in the v0 layout with
    // UNSUPPORTED_VERSION and its ranges; the client retries lower.
    w.Int16(Code(KafkaError::kUnsupportedVersion));
    w.ArrayCount(std::size(kSupportedApis));
    for (const ApiVersionRange& api : kSupportedApis) WriteApiRange(w, api);
    return HandlerOutcome::Respond(std::move(frame));
  }
  if (version == 3) {
    // Request header v2 ends with tagged fields; then the body:
    // ClientSoftwareName, ClientSoftwareVersion (compact strings), tags.
    r.SkipTaggedFields();
    r.CompactNullableString();
    r.CompactNullableString();
    r.SkipTaggedFields();
    if (!r.ok()) return HandlerOutcome::Close();
  }
  w.Int16(Code(KafkaError::kNone));
  if (version == 3) {
    // Flexible body, but the response header stays v0 (no tag byte).
    w.CompactArrayCount(std::size(kSupportedApis));
    for (const ApiVersionRange& api : kSupportedApis) {
      WriteApiRange(w, api);
      w.NoTaggedFields();
    }
  } else {
    w.ArrayCount(std::size(kSupportedApis));
    for (const ApiVersionRange& api : kSupportedApis) WriteApiRange(w, api);
  }
  if (version >= 1) w.Int32(0);  // ThrottleTimeMs
  if (version == 3) w.NoTaggedFields();
  return HandlerOutcome::Respond(std::move(frame));
}

HandlerOutcome BrokerCore::HandleMetadata(const RequestHeader& header, WireReader& r) {
  const std::int16_t version = header.api_version;
  std::vector<std::string> requested;
  bool all_topics = false;
  std::int32_t n = r.ArrayCount();
  if (n < 0) {
    all_topics = true;
  } else {
    for (std::int32_t i = 0; i < n && r.ok(); ++i) requested.push_back(r.String());
    all_topics = version == 0 && n == 0;  // v0 has no null array: empty means all
  }
  const bool allow_auto_create = version >= 4 ? r.Bool() : true;
  if (!r.ok()) return HandlerOutcome::Close();

  struct TopicInfo {
    KafkaError error;
    std::string name;
    std::int32_t partitions;
  };
  std::vector<TopicInfo> topics;
  if (all_topics) {
    for (std::string& name : logs_.TopicNames()) {
      std::int32_t count = logs_.PartitionCount(name);
      topics.push_back({KafkaError::kNone, std::move(name), count});
    }
  } else {
    for (std::string& name : requested) {
      std::int32_t count = logs_.PartitionCount(name);
      KafkaError error = KafkaError::kNone;
      if (count < 0) {
        if (allow_auto_create && options_.auto_create_topics) {
          error = logs_.CreateTopic(name, options_.default_partitions);
          if (error == KafkaError::kNone) {
            logger_->Info("auto-created topic {} with {} partitions", name,
                          options_.default_partitions);
          }
        } else {
          error = KafkaError::kUnknownTopicOrPartition;
        }
        count = std::max(logs_.PartitionCount(name), 0);
      }
      topics.push_back({error, std::move(name), count});
    }
  }

  OutFrame frame(header.correlation_id);
  WireWriter& w = frame.w();
  if (version >= 3) w.Int32(0);  // ThrottleTimeMs
  w.ArrayCount(1);
  w.Int32(options_.node_id);
  w.String(kHost);
  w.Int32(server_->port());
  if (version >= 1) w.NullableString(std::nullopt);  // Rack
  if (version >= 2) w.NullableString(std::string(kClusterId));
  // Admin requests go to the controller; it must be this (listed) node.
  if (version >= 1) w.Int32(options_.node_id);
  w.ArrayCount(topics.size());
  for (const TopicInfo& t : topics) {
    w.Int16(Code(t.error));
    w.String(t.name);
    if (version >= 1) w.Bool(false);  // IsInternal
    w.ArrayCount(static_cast<std::size_t>(t.partitions));
    for (std::int32_t p = 0; p < t.partitions; ++p) {
      w.Int16(Code(KafkaError::kNone));
      w.Int32(p);
      w.Int32(options_.node_id);  // Leader
      w.ArrayCount(1);
      w.Int32(options_.node_id);  // Replicas
      w.ArrayCount(1);
      w.Int32(options_.node_id);  // Isr
    }
  }
  return HandlerOutcome::Respond(std::move(frame));
}

HandlerOutcome BrokerCore::HandleCreateTopics(const RequestHeader& header, WireReader& r) {
  const std::int16_t version = header.api_version;
  struct Creatable {
    std::string name;
    std::int32_t num_partitions;
    std::int16_t replication_factor;
    std::int32_t assignments;
  };
  std::vector<Creatable> requested;
  std::int32_t n = r.ArrayCount();
  for (std::int32_t i = 0; i < n && r.ok(); ++i) {
    Creatable c;
    c.name = r.String();
    c.num_partitions = r.Int32();
    c.replication_factor = r.Int16();
    c.assignments = std::max(r.ArrayCount(), 0);
    for (std::int32_t a = 0; a < c.assignments && r.ok(); ++a) {
      r.Int32();  // PartitionIndex
      std::int32_t brokers = r.ArrayCount();
      for (std::int32_t b = 0; b < brokers && r.ok(); ++b) r.Int32();
    }
    std::int32_t configs = r.ArrayCount();
    for (std::int32_t k = 0; k < configs && r.ok(); ++k) {
      r.String();
      r.NullableString();
    }
    requested.push_back(std::move(c));
  }
  r.Int32();  // timeoutMs
  const bool validate_only = version >= 1 ? r.Bool() : false;
  if (!r.ok()) return HandlerOutcome::Close();

  OutFrame frame(header.correlation_id);
  WireWriter& w = frame.w();
  if (version >= 2) w.Int32(0);  // ThrottleTimeMs
  w.ArrayCount(requested.size());
  for (const Creatable& c : requested) {
    KafkaError error = KafkaError::kNone;
    std::optional<std::string> message;
    std::int32_t partitions = c.assignments > 0        ? c.assignments
                              : c.num_partitions == -1 ? options_.default_partitions
                                                       : c.num_partitions;
    if (c.assignments > 0 && c.num_partitions != -1) {
      error = KafkaError::kInvalidRequest;
      message = "both NumPartitions and Assignments given";
    } else if (c.replication_factor != -1 && c.replication_factor != 1) {
      error = KafkaError::kInvalidReplicationFactor;
      message = "replication factor must be 1: the test broker is a single node";
    } else {
      error = validate_only ? logs_.CheckCreate(c.name, partitions)
                            : logs_.CreateTopic(c.name, partitions);
      if (error == KafkaError::kTopicAlreadyExists) {
        message = "Topic '" + c.name + "' already exists.";
      } else if (error == KafkaError::kInvalidPartitions) {
        message = "invalid number of partitions";
      } else if (error == KafkaError::kInvalidTopic) {
        message = "invalid topic name";
      } else if (error == KafkaError::kNone && !validate_only) {
        logger_->Info("created topic {} with {} partitions", c.name, partitions);
      }
    }
    w.String(c.name);
    w.Int16(Code(error));
    if (version >= 1) w.NullableString(message);
  }
  return HandlerOutcome::Respond(std::move(frame));
}

HandlerOutcome BrokerCore::HandleFindCoordinator(const RequestHeader& header, WireReader& r) {
  const std::int16_t version = header.api_version;
  r.String();  // Key: group id or transactional id; this node coordinates all
  const std::int8_t key_type = version >= 1 ? r.Int8() : 0;
  if (!r.ok()) return HandlerOutcome::Close();
  const KafkaError error =
      key_type == 0 || key_type == 1 ? KafkaError::kNone : KafkaError::kInvalidRequest;

  OutFrame frame(header.correlation_id);
  WireWriter& w = frame.w();
  if (version >= 1) w.Int32(0);  // ThrottleTimeMs
  w.Int16(Code(error));
  if (version >= 1) w.NullableString(std::nullopt);  // ErrorMessage
  w.Int32(options_.node_id);
  w.String(kHost);
  w.Int32(server_->port());
  return HandlerOutcome::Respond(std::move(frame));
}

}  // namespace ctrjoin::testbroker
