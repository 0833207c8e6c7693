#pragma once
// Small RAII helpers over the librdkafka C API, shared by KafkaSource and the
// Kafka sinks: owners for every librdkafka handle we allocate, building an
// rd_kafka_conf_t from a property map, and the one mapping from
// rd_kafka_resp_err_t to Status.
//
// Pure helpers with no state of their own: callable from any thread. Each
// owner holds exactly one librdkafka object and frees it with the matching
// librdkafka destroy call; the librdkafka objects themselves are only as
// thread-safe as librdkafka documents.

#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "src/core/status.h"

namespace ctrjoin {

struct KafkaHandleDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
struct KafkaConfDeleter {
  void operator()(rd_kafka_conf_t* conf) const { rd_kafka_conf_destroy(conf); }
};
struct KafkaPartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* list) const {
    rd_kafka_topic_partition_list_destroy(list);
  }
};
struct KafkaMessageDeleter {
  void operator()(rd_kafka_message_t* msg) const { rd_kafka_message_destroy(msg); }
};
struct KafkaQueueDeleter {
  void operator()(rd_kafka_queue_t* queue) const { rd_kafka_queue_destroy(queue); }
};
struct KafkaTopicDeleter {
  void operator()(rd_kafka_topic_t* rkt) const { rd_kafka_topic_destroy(rkt); }
};
struct KafkaMetadataDeleter {
  void operator()(const rd_kafka_metadata_t* md) const { rd_kafka_metadata_destroy(md); }
};

// A client handle (producer or consumer). Destroying it does not close a
// consumer or flush a producer first: owners that need that do it themselves.
using KafkaHandle = std::unique_ptr<rd_kafka_t, KafkaHandleDeleter>;
// A configuration not (yet) handed to rd_kafka_new.
using KafkaConf = std::unique_ptr<rd_kafka_conf_t, KafkaConfDeleter>;
using KafkaPartitionList =
    std::unique_ptr<rd_kafka_topic_partition_list_t, KafkaPartitionListDeleter>;
using KafkaMessage = std::unique_ptr<rd_kafka_message_t, KafkaMessageDeleter>;
using KafkaQueue = std::unique_ptr<rd_kafka_queue_t, KafkaQueueDeleter>;
using KafkaTopic = std::unique_ptr<rd_kafka_topic_t, KafkaTopicDeleter>;
using KafkaMetadata = std::unique_ptr<const rd_kafka_metadata_t, KafkaMetadataDeleter>;

// Builds a configuration from librdkafka property names and values. An unknown
// property or a bad value is an InvalidArgument naming the property and
// librdkafka's reason. librdkafka's log lines go to our logger (LibraryLog).
Result<KafkaConf> MakeKafkaConf(const std::map<std::string, std::string>& properties);

// Creates a client from conf. librdkafka takes conf over only on success,
// which this hides: conf is consumed either way.
Result<KafkaHandle> MakeKafkaHandle(rd_kafka_type_t type, KafkaConf conf);

// Maps a librdkafka error to a Status whose message is
// "<context>: <reason> (<error name>)"; reason defaults to rd_kafka_err2str.
// NO_ERROR maps to Ok. The Effect says what the failed call means for the
// caller: timeouts and broken connections leave the effect unknown, fencing
// is Fenced, rejected configuration or arguments had no effect.
Status KafkaStatus(rd_kafka_resp_err_t err, std::string_view context, std::string_view reason = {});

// The partition ids of topic from one metadata request of up to timeout_ms;
// NotFound when the topic does not exist.
Result<std::vector<int32_t>> KafkaTopicPartitionsOnce(rd_kafka_t* rk, const std::string& topic,
                                                      int timeout_ms);

// The partition ids of topic, waiting up to wait_ms for the topic to appear
// (a deployment may create it just before starting us).
Result<std::vector<int32_t>> KafkaTopicPartitions(rd_kafka_t* rk, const std::string& topic,
                                                  int wait_ms);

// The partition Kafka's default partitioner (murmur2 of the key bytes, as
// the Java clients and librdkafka's `murmur2_random` choose for a key) gives
// key among `partitions` (> 0). Group mode checks with it that both input
// topics are keyed by impression id (src/README.md, "Scaling out").
int32_t KafkaDefaultPartition(std::string_view key, int32_t partitions);

// The partitions, by topic, in a consumer-protocol assignment: the bytes a
// group's leader sends each member in SyncGroup and DescribeGroups shows
// (int16 version, then [topic string, [int32 partition]], then user data).
// Empty bytes are an empty assignment; InvalidArgument if they are cut short.
Result<std::map<std::string, std::vector<int32_t>>> ParseConsumerAssignment(std::string_view bytes);

// Creates topics (name, partitions; replication factor 1) through rk's
// brokers and waits up to timeout_ms for the answer. A topic that already
// exists is no error. For the demo's in-process broker and benchmarks;
// production topics are the deployment's to create.
Status CreateKafkaTopics(rd_kafka_t* rk, const std::vector<std::pair<std::string, int>>& topics,
                         int timeout_ms);

// A producer for loading data (`ctrjoin gen --brokers`, tests, benchmarks):
// Produce copies the value and waits while librdkafka's queue is full; Flush
// waits for every delivery and fails if any message was not delivered.
// Called from one thread; owns its handle (its delivery reports run inside
// Produce and Flush on that thread).
class BulkProducer {
 public:
  // properties: librdkafka settings, bootstrap.servers at least.
  static Result<std::unique_ptr<BulkProducer>> Open(
      const std::map<std::string, std::string>& properties);

  // partition < 0: librdkafka's partitioner (of the key, if one is given;
  // an empty key is none); timestamp_ms 0: now.
  Status Produce(const std::string& topic, int32_t partition, std::string_view value,
                 int64_t timestamp_ms = 0, std::string_view key = {});
  Status Flush(int timeout_ms);
  rd_kafka_t* get() const { return rk_.get(); }

 private:
  BulkProducer() = default;
  static void OnDelivery(rd_kafka_t* rk, const rd_kafka_message_t* msg, void* opaque);

  KafkaHandle rk_;
  uint64_t failed_ = 0;
  rd_kafka_resp_err_t first_error_ = RD_KAFKA_RESP_ERR_NO_ERROR;
};

// The Status for RD_KAFKA_RESP_ERR__FATAL: maps the underlying error that
// rd_kafka_fatal_error reports for rk (e.g. a fenced idempotent producer).
Status KafkaFatalStatus(rd_kafka_t* rk, std::string_view context);

}  // namespace ctrjoin
