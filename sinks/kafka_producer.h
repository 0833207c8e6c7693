#pragma once
// KafkaProducer: one librdkafka producer with delivery tracking, shared by the
// plain Kafka sinks and the transactional sink.
//
// Called only from its owner's thread; librdkafka runs the delivery and error
// callbacks inside the poll/flush/commit/abort calls made on that thread, so
// the failure fields need no lock. Owns the producer handle; destroying it
// drops (and warns about) whatever was not delivered.

#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sinks/producer_metrics.h"
#include "src/core/status.h"
#include "src/io/kafka_client.h"

namespace ctrjoin {

// A message's headers: name and value.
using MessageHeaders = std::vector<std::pair<std::string, std::string>>;

class KafkaProducer {
 public:
  // properties are complete librdkafka settings; name identifies the
  // producer in logs and errors ("kafka sink (host:9092)", a transactional id).
  // metrics (borrowed, may be null) counts produce, delivery and client errors.
  static Result<std::unique_ptr<KafkaProducer>> Open(
      const std::map<std::string, std::string>& properties, std::string name,
      ProducerMetrics* metrics = nullptr);
  ~KafkaProducer();

  rd_kafka_t* get() const { return handle_.get(); }
  const std::string& name() const { return name_; }

  // Serves delivery reports, then queues one message (a null key if none),
  // polling while the queue is full for up to timeout_ms. Returns the first
  // delivery failure seen so far, if any, and then queues nothing.
  // headers (if given) go with the message. A message with a tag has its
  // offset noted when its delivery is reported (TakeDelivered).
  Status Send(const std::string& topic, std::optional<std::string_view> key, std::string_view value,
              int timeout_ms, const MessageHeaders* headers = nullptr,
              int32_t partition = RD_KAFKA_PARTITION_UA, std::optional<uint64_t> tag = {});
  // The tagged messages delivered since the last call: (tag, offset).
  std::vector<std::pair<uint64_t, int64_t>> TakeDelivered() {
    return std::exchange(delivered_, {});
  }
  // Waits up to timeout_ms for every queued message to be delivered.
  Status Flush(int timeout_ms);
  // Fetches topic's metadata now (up to wait_ms), so that the first
  // message to it does not wait for it: a transactional sink's first epochs
  // held the pipeline for up to a second at every start. InvalidArgument
  // (a start-up refusal): the topic does not exist and the brokers did not
  // create it. Any other failure is
  // left to the first message, which waits and retries as it would have.
  Status Prepare(const std::string& topic, int wait_ms);
  // The first delivery failure since the last reset, or OK.
  Status DeliveryStatus() const;
  // Forgets past delivery failures (a transaction starts afresh).
  void ResetDeliveryStatus();

 private:
  KafkaProducer(std::string name, ProducerMetrics* metrics)
      : name_(std::move(name)), metrics_(metrics != nullptr ? metrics : &unused_metrics_) {}
  static void OnDelivery(rd_kafka_t* rk, const rd_kafka_message_t* msg, void* opaque);
  static void OnError(rd_kafka_t* rk, int err, const char* reason, void* opaque);

  const std::string name_;
  ProducerMetrics unused_metrics_;  // when the owner counts nothing
  ProducerMetrics* const metrics_;
  KafkaHandle handle_;
  uint64_t failed_deliveries_ = 0;
  std::vector<std::pair<uint64_t, int64_t>> delivered_;  // tagged messages
  Status first_failure_;
};

}  // namespace ctrjoin
