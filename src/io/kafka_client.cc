#include "src/io/kafka_client.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <utility>

#include "src/ops/library_log.h"

namespace ctrjoin {

namespace {
constexpr size_t kErrstrSize = 512;
constexpr std::chrono::milliseconds kTopicRetryDelay{200};

// librdkafka's log callback (its own threads): into our logger.
void LogThroughLogger(const rd_kafka_t* rk, int level, const char* facility, const char* text) {
  // rk is null for lines logged before the client exists (plugins, debug).
  LibraryLog::Log("librdkafka", facility, LibraryLog::FromSyslog(level),
                  fmt::format("{}: {}", rk != nullptr ? rd_kafka_name(rk) : "rdkafka", text));
}
}  // namespace

Result<KafkaConf> MakeKafkaConf(const std::map<std::string, std::string>& properties) {
  KafkaConf conf(rd_kafka_conf_new());
  rd_kafka_conf_set_log_cb(conf.get(), LogThroughLogger);
  char errstr[kErrstrSize];
  for (const auto& [name, value] : properties) {
    if (rd_kafka_conf_set(conf.get(), name.c_str(), value.c_str(), errstr, sizeof errstr) !=
        RD_KAFKA_CONF_OK) {
      return Status::InvalidArgument(fmt::format("Kafka property '{}': {}", name, errstr));
    }
  }
  return conf;
}

Result<KafkaHandle> MakeKafkaHandle(rd_kafka_type_t type, KafkaConf conf) {
  char errstr[kErrstrSize];
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), errstr, sizeof errstr);
  if (rk == nullptr) {
    return Status::InvalidArgument(fmt::format(
        "creating Kafka {}: {}", type == RD_KAFKA_PRODUCER ? "producer" : "consumer", errstr));
  }
  static_cast<void>(conf.release());  // rd_kafka_new took it over
  return KafkaHandle(rk);
}

// One exhaustive switch with no default: -Wswitch flags any error code a
// librdkafka upgrade adds, so each gets a deliberate decision.
Status KafkaStatus(rd_kafka_resp_err_t err, std::string_view context, std::string_view reason) {
  std::string msg =
      fmt::format("{}: {} ({})", context, reason.empty() ? rd_kafka_err2str(err) : reason,
                  rd_kafka_err2name(err));
  switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR: return Status::Ok();

    // Another instance owns the producer id / group membership now.
    case RD_KAFKA_RESP_ERR__FENCED:
    case RD_KAFKA_RESP_ERR_PRODUCER_FENCED:
    case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH:
    case RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID: return Status::Fenced(std::move(msg));

    // A request may have reached the broker before the answer was lost.
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT: return Status::TimedOut(std::move(msg));
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__SSL:
    case RD_KAFKA_RESP_ERR__DESTROY:
    case RD_KAFKA_RESP_ERR__INTR:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
      return Status::Unavailable(std::move(msg), Effect::kEffectUnknown);

    // Transient: the request was refused or never sent; retrying is safe.
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__RESOLVE:
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
    case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:  // timed out before it was sent
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__WAIT_COORD:
    case RD_KAFKA_RESP_ERR__WAIT_CACHE:
    case RD_KAFKA_RESP_ERR__NODE_UPDATE:
    case RD_KAFKA_RESP_ERR__ISR_INSUFF:
    case RD_KAFKA_RESP_ERR__IN_PROGRESS:
    case RD_KAFKA_RESP_ERR__PREV_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR__RETRY:
    case RD_KAFKA_RESP_ERR__MAX_POLL_EXCEEDED:
    case RD_KAFKA_RESP_ERR__ASSIGNMENT_LOST:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_REPLICA_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID:
    case RD_KAFKA_RESP_ERR_MEMBER_ID_REQUIRED:
    case RD_KAFKA_RESP_ERR_GROUP_MAX_SIZE_REACHED:
    case RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS:
    case RD_KAFKA_RESP_ERR_OPERATION_NOT_ATTEMPTED:
    case RD_KAFKA_RESP_ERR_REASSIGNMENT_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_FETCH_SESSION_ID_NOT_FOUND:
    case RD_KAFKA_RESP_ERR_INVALID_FETCH_SESSION_EPOCH:
    case RD_KAFKA_RESP_ERR_FENCED_LEADER_EPOCH:  // a stale leader, not us
    case RD_KAFKA_RESP_ERR_UNKNOWN_LEADER_EPOCH:
    case RD_KAFKA_RESP_ERR_STALE_BROKER_EPOCH:
    case RD_KAFKA_RESP_ERR_STALE_CTRL_EPOCH:
    case RD_KAFKA_RESP_ERR_NOT_CONTROLLER:
    case RD_KAFKA_RESP_ERR_OFFSET_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_PREFERRED_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_ELIGIBLE_LEADERS_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_UNSTABLE_OFFSET_COMMIT:
    case RD_KAFKA_RESP_ERR_THROTTLING_QUOTA_EXCEEDED:
      return Status::Unavailable(std::move(msg), Effect::kNoEffect);

    // Rejected configuration, arguments or credentials: nothing was done.
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR__INVALID_TYPE:
    case RD_KAFKA_RESP_ERR__CONFLICT:
    case RD_KAFKA_RESP_ERR__EXISTING_SUBSCRIPTION:
    case RD_KAFKA_RESP_ERR__NOT_CONFIGURED:
    case RD_KAFKA_RESP_ERR__NOT_IMPLEMENTED:
    case RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PROTOCOL:
    case RD_KAFKA_RESP_ERR__READ_ONLY:
    case RD_KAFKA_RESP_ERR__KEY_SERIALIZATION:
    case RD_KAFKA_RESP_ERR__VALUE_SERIALIZATION:
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_REQUIRED_ACKS:
    case RD_KAFKA_RESP_ERR_INCONSISTENT_GROUP_PROTOCOL:
    case RD_KAFKA_RESP_ERR_INVALID_GROUP_ID:
    case RD_KAFKA_RESP_ERR_INVALID_SESSION_TIMEOUT:
    case RD_KAFKA_RESP_ERR_INVALID_COMMIT_OFFSET_SIZE:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_SASL_MECHANISM:
    case RD_KAFKA_RESP_ERR_ILLEGAL_SASL_STATE:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
    case RD_KAFKA_RESP_ERR_SECURITY_DISABLED:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_COMPRESSION_TYPE:
    case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS:
    case RD_KAFKA_RESP_ERR_INVALID_PARTITIONS:
    case RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR:
    case RD_KAFKA_RESP_ERR_INVALID_REPLICA_ASSIGNMENT:
    case RD_KAFKA_RESP_ERR_INVALID_CONFIG:
    case RD_KAFKA_RESP_ERR_INVALID_REQUEST:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
    case RD_KAFKA_RESP_ERR_INVALID_TRANSACTION_TIMEOUT:
    case RD_KAFKA_RESP_ERR_DELEGATION_TOKEN_AUTH_DISABLED:
    case RD_KAFKA_RESP_ERR_DELEGATION_TOKEN_OWNER_MISMATCH:
    case RD_KAFKA_RESP_ERR_DELEGATION_TOKEN_REQUEST_NOT_ALLOWED:
    case RD_KAFKA_RESP_ERR_DELEGATION_TOKEN_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_DELEGATION_TOKEN_EXPIRED:
    case RD_KAFKA_RESP_ERR_INVALID_PRINCIPAL_TYPE:
    case RD_KAFKA_RESP_ERR_UNACCEPTABLE_CREDENTIAL:
    case RD_KAFKA_RESP_ERR_NON_EMPTY_GROUP:
    case RD_KAFKA_RESP_ERR_GROUP_SUBSCRIBED_TO_TOPIC:
    case RD_KAFKA_RESP_ERR_TOPIC_DELETION_DISABLED:
    case RD_KAFKA_RESP_ERR_ELECTION_NOT_NEEDED:
    case RD_KAFKA_RESP_ERR_NO_REASSIGNMENT_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_DUPLICATE_RESOURCE:
    case RD_KAFKA_RESP_ERR_INVALID_UPDATE_VERSION: return Status::InvalidArgument(std::move(msg));

    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_GROUP:
    case RD_KAFKA_RESP_ERR__UNKNOWN_BROKER:
    case RD_KAFKA_RESP_ERR__NOENT:
    case RD_KAFKA_RESP_ERR__NO_OFFSET:
    case RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET:
    case RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND:
    case RD_KAFKA_RESP_ERR_LOG_DIR_NOT_FOUND:
    case RD_KAFKA_RESP_ERR_LISTENER_NOT_FOUND:
    case RD_KAFKA_RESP_ERR_RESOURCE_NOT_FOUND:
    case RD_KAFKA_RESP_ERR_DELEGATION_TOKEN_NOT_FOUND: return Status::NotFound(std::move(msg));

    case RD_KAFKA_RESP_ERR_INVALID_MSG:  // CRC mismatch, rejected as a whole
    case RD_KAFKA_RESP_ERR__BAD_COMPRESSION:
    case RD_KAFKA_RESP_ERR__KEY_DESERIALIZATION:
    case RD_KAFKA_RESP_ERR__VALUE_DESERIALIZATION:
    case RD_KAFKA_RESP_ERR__UNDERFLOW: return Status::Corruption(std::move(msg));

    // An unparsable or partial response: the request may have been processed.
    case RD_KAFKA_RESP_ERR__BAD_MSG:
    case RD_KAFKA_RESP_ERR__PARTIAL: return Status::IoError(std::move(msg), Effect::kEffectUnknown);
    case RD_KAFKA_RESP_ERR__FS: return Status::IoError(std::move(msg), Effect::kNoEffect);

    // Broken client or producer state; earlier requests may be lost or
    // duplicated. __FATAL: use KafkaFatalStatus for the underlying error.
    case RD_KAFKA_RESP_ERR_UNKNOWN:
    case RD_KAFKA_RESP_ERR__FAIL:
    case RD_KAFKA_RESP_ERR__FATAL:
    case RD_KAFKA_RESP_ERR__INCONSISTENT:
    case RD_KAFKA_RESP_ERR__GAPLESS_GUARANTEE:
    case RD_KAFKA_RESP_ERR__APPLICATION:
    case RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER:
    case RD_KAFKA_RESP_ERR_DUPLICATE_SEQUENCE_NUMBER:
    case RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID:
    case RD_KAFKA_RESP_ERR_TRANSACTION_COORDINATOR_FENCED:  // broker-to-broker
    case RD_KAFKA_RESP_ERR_INCONSISTENT_VOTER_SET:
    case RD_KAFKA_RESP_ERR_FEATURE_UPDATE_FAILED:
    case RD_KAFKA_RESP_ERR_PRINCIPAL_DESERIALIZATION_FAILURE:
      return Status::Internal(std::move(msg), Effect::kEffectUnknown);

    // Refused in the current state: nothing was done.
    case RD_KAFKA_RESP_ERR__STATE:
    case RD_KAFKA_RESP_ERR__OUTDATED:
    case RD_KAFKA_RESP_ERR__NOOP:
    case RD_KAFKA_RESP_ERR__CRIT_SYS_RESOURCE:
    case RD_KAFKA_RESP_ERR_INVALID_TXN_STATE:
    case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_ID_MAPPING:
      return Status::Internal(std::move(msg), Effect::kNoEffect);

    // Events and range markers, not errors: reaching here is a bug.
    case RD_KAFKA_RESP_ERR__PARTITION_EOF:
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
    case RD_KAFKA_RESP_ERR__BEGIN:
    case RD_KAFKA_RESP_ERR__END:
    case RD_KAFKA_RESP_ERR_END_ALL: return Status::Internal(std::move(msg), Effect::kNoEffect);
  }
  return Status::Internal(std::move(msg), Effect::kEffectUnknown);  // not an enumerator
}

Status KafkaFatalStatus(rd_kafka_t* rk, std::string_view context) {
  char errstr[kErrstrSize];
  rd_kafka_resp_err_t err = rd_kafka_fatal_error(rk, errstr, sizeof errstr);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaStatus(RD_KAFKA_RESP_ERR__FATAL, context);
  // Keep the underlying error's effect (fenced stays fenced) but never let a
  // fatal error look transient to the caller.
  Status underlying = KafkaStatus(err, fmt::format("{}: fatal error", context), errstr);
  return Status::Internal(underlying.message(), underlying.effect());
}

Result<std::map<std::string, std::vector<int32_t>>> ParseConsumerAssignment(
    std::string_view bytes) {
  std::map<std::string, std::vector<int32_t>> out;
  if (bytes.empty()) return out;
  size_t at = 0;
  bool ok = true;
  // Big-endian fields of `n` bytes; false once the bytes run out.
  auto read = [&](size_t n) -> uint32_t {
    if (!ok || bytes.size() - at < n) {
      ok = false;
      return 0;
    }
    uint32_t v = 0;
    for (size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<uint8_t>(bytes[at + i]);
    at += n;
    return v;
  };
  read(2);  // version
  const auto topics = static_cast<int32_t>(read(4));
  for (int32_t t = 0; ok && t < topics; ++t) {
    const uint32_t length = read(2);
    if (!ok || bytes.size() - at < length) {
      ok = false;
      break;
    }
    std::vector<int32_t>& partitions = out[std::string(bytes.substr(at, length))];
    at += length;
    const auto count = static_cast<int32_t>(read(4));
    for (int32_t p = 0; ok && p < count; ++p) partitions.push_back(static_cast<int32_t>(read(4)));
  }
  if (!ok) return Status::InvalidArgument("a consumer-protocol assignment cut short");
  return out;
}

Status CreateKafkaTopics(rd_kafka_t* rk, const std::vector<std::pair<std::string, int>>& topics,
                         int timeout_ms) {
  char error[256];
  std::vector<rd_kafka_NewTopic_t*> requests;
  const auto destroy = [&] { rd_kafka_NewTopic_destroy_array(requests.data(), requests.size()); };
  for (const auto& [name, partitions] : topics) {
    rd_kafka_NewTopic_t* t =
        rd_kafka_NewTopic_new(name.c_str(), partitions, 1, error, sizeof(error));
    if (t == nullptr) {
      destroy();
      return Status::InvalidArgument(fmt::format("topic '{}': {}", name, error));
    }
    requests.push_back(t);
  }
  KafkaQueue queue(rd_kafka_queue_new(rk));
  rd_kafka_CreateTopics(rk, requests.data(), requests.size(), nullptr, queue.get());
  destroy();
  rd_kafka_event_t* event = rd_kafka_queue_poll(queue.get(), timeout_ms);
  if (event == nullptr) {
    return Status::TimedOut(fmt::format("creating topics: no answer in {} ms", timeout_ms));
  }
  Status st = KafkaStatus(rd_kafka_event_error(event), "creating topics");
  if (const rd_kafka_CreateTopics_result_t* result = rd_kafka_event_CreateTopics_result(event);
      st.ok() && result != nullptr) {
    size_t n = 0;
    const rd_kafka_topic_result_t** each = rd_kafka_CreateTopics_result_topics(result, &n);
    for (size_t i = 0; i < n && st.ok(); ++i) {
      const rd_kafka_resp_err_t err = rd_kafka_topic_result_error(each[i]);
      if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) continue;
      st = KafkaStatus(err, fmt::format("creating topic '{}'", rd_kafka_topic_result_name(each[i])),
                       rd_kafka_topic_result_error_string(each[i]) != nullptr
                           ? rd_kafka_topic_result_error_string(each[i])
                           : "");
    }
  }
  rd_kafka_event_destroy(event);
  return st;
}

Result<std::vector<int32_t>> KafkaTopicPartitionsOnce(rd_kafka_t* rk, const std::string& topic,
                                                      int timeout_ms) {
  const std::string context = fmt::format("source.kafka: topic '{}'", topic);
  KafkaTopic rkt(rd_kafka_topic_new(rk, topic.c_str(), nullptr));
  if (!rkt) return KafkaStatus(rd_kafka_last_error(), context);
  const rd_kafka_metadata_t* raw = nullptr;
  rd_kafka_resp_err_t err =
      rd_kafka_metadata(rk, /*all_topics=*/0, rkt.get(), &raw, std::max(timeout_ms, 1));
  KafkaMetadata metadata(raw);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (metadata->topic_cnt == 1 && metadata->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
        metadata->topics[0].partition_cnt > 0) {
      const rd_kafka_metadata_topic_t& t = metadata->topics[0];
      std::vector<int32_t> ids;
      for (int i = 0; i < t.partition_cnt; ++i) ids.push_back(t.partitions[i].id);
      return ids;
    }
    err = metadata->topic_cnt == 1 && metadata->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR
              ? metadata->topics[0].err
              : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
  }
  return KafkaStatus(err, context);
}

Result<std::vector<int32_t>> KafkaTopicPartitions(rd_kafka_t* rk, const std::string& topic,
                                                  int wait_ms) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(wait_ms);
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    Result<std::vector<int32_t>> ids =
        KafkaTopicPartitionsOnce(rk, topic, static_cast<int>(std::max<int64_t>(left, 1)));
    if (ids.ok()) return ids;
    const StatusCode code = ids.status().code();
    const bool may_appear = code == StatusCode::kNotFound || code == StatusCode::kUnavailable ||
                            code == StatusCode::kTimedOut;
    if (!may_appear || Clock::now() + kTopicRetryDelay >= deadline) return ids.status();
    std::this_thread::sleep_for(kTopicRetryDelay);
  }
}

int32_t KafkaDefaultPartition(std::string_view key, int32_t partitions) {
  // Reads only the key: no topic handle is needed.
  return rd_kafka_msg_partitioner_murmur2(nullptr, key.data(), key.size(), partitions, nullptr,
                                          nullptr);
}

Result<std::unique_ptr<BulkProducer>> BulkProducer::Open(
    const std::map<std::string, std::string>& properties) {
  Result<KafkaConf> conf = MakeKafkaConf(properties);
  if (!conf.ok()) return conf.status();
  std::unique_ptr<BulkProducer> p(new BulkProducer());
  rd_kafka_conf_set_opaque(conf->get(), p.get());
  rd_kafka_conf_set_dr_msg_cb(conf->get(), &BulkProducer::OnDelivery);
  Result<KafkaHandle> rk = MakeKafkaHandle(RD_KAFKA_PRODUCER, std::move(conf).value());
  if (!rk.ok()) return rk.status();
  p->rk_ = std::move(rk).value();
  return p;
}

void BulkProducer::OnDelivery(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque) {
  if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) return;
  auto* self = static_cast<BulkProducer*>(opaque);
  if (self->failed_++ == 0) self->first_error_ = msg->err;
}

Status BulkProducer::Produce(const std::string& topic, int32_t partition, std::string_view value,
                             int64_t timestamp_ms, std::string_view key) {
  rd_kafka_resp_err_t err;
  while ((err = rd_kafka_producev(
              rk_.get(), RD_KAFKA_V_TOPIC(topic.c_str()),
              RD_KAFKA_V_PARTITION(partition < 0 ? RD_KAFKA_PARTITION_UA : partition),
              RD_KAFKA_V_KEY(key.empty() ? nullptr : key.data(), key.size()),
              RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
              RD_KAFKA_V_TIMESTAMP(timestamp_ms), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
              RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
    rd_kafka_poll(rk_.get(), 10);  // delivery reports make room
  }
  return KafkaStatus(err, "producing to " + topic);
}

Status BulkProducer::Flush(int timeout_ms) {
  CTRJOIN_RETURN_IF_ERROR(KafkaStatus(rd_kafka_flush(rk_.get(), timeout_ms), "flushing"));
  if (failed_ > 0) {
    return KafkaStatus(first_error_, fmt::format("{} messages were not delivered", failed_));
  }
  return Status::Ok();
}

}  // namespace ctrjoin
