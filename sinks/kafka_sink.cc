#include "sinks/kafka_sink.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>

#include "sinks/json_encoder.h"
#include "sinks/kafka_producer.h"

namespace ctrjoin {

Status KafkaSinkOptions::Validate(const std::string& prefix) const {
  if (brokers.empty()) return Status::InvalidArgument(prefix + ".brokers: must not be empty");
  if (topic.empty()) return Status::InvalidArgument(prefix + ".topic: must not be empty");
  if (flush_timeout_ms <= 0) {
    return Status::InvalidArgument(
        fmt::format("{}.flush_timeout_ms: must be positive, got {}", prefix, flush_timeout_ms));
  }
  return Status::Ok();
}

namespace {

// The plain sinks' producer: idempotent, murmur2 partitioning, user
// properties last.
Result<std::unique_ptr<KafkaProducer>> OpenProducer(const KafkaSinkOptions& options) {
  std::map<std::string, std::string> properties = {
      {"bootstrap.servers", options.brokers},
      {"enable.idempotence", "true"},
      {"partitioner", "murmur2_random"},  // as Java clients partition by key
      {"linger.ms", "5"},
  };
  for (const auto& [name, value] : options.properties) properties[name] = value;
  return KafkaProducer::Open(properties, "kafka sink (" + options.brokers + ")", options.metrics);
}

}  // namespace

Result<std::unique_ptr<KafkaSampleSink>> KafkaSampleSink::Open(const KafkaSinkOptions& options,
                                                               SampleFormat format) {
  CTRJOIN_RETURN_IF_ERROR(options.Validate("sink.kafka"));
  Result<std::unique_ptr<KafkaProducer>> producer = OpenProducer(options);
  if (!producer.ok()) return producer.status();
  return std::unique_ptr<KafkaSampleSink>(
      new KafkaSampleSink(std::move(producer).value(), options, format));
}

MessageHeaders SampleHeaders(SampleFormat format, const std::string& schema_id) {
  MessageHeaders headers = {{"content-type", SampleContentType(format)}};
  if (!schema_id.empty()) headers.emplace_back("ctrjoin-schema-id", schema_id);
  return headers;
}

KafkaSampleSink::KafkaSampleSink(std::unique_ptr<KafkaProducer> producer,
                                 const KafkaSinkOptions& options, SampleFormat format)
    : producer_(std::move(producer)),
      topic_(options.topic),
      format_(format),
      timeout_ms_(options.flush_timeout_ms),
      headers_(SampleHeaders(format, options.schema_id)),
      description_(fmt::format("kafka {} {}", options.brokers, topic_)) {}

KafkaSampleSink::~KafkaSampleSink() = default;

Status KafkaSampleSink::Write(std::span<const Sample> samples) {
  for (const Sample& sample : samples) {
    buffer_.clear();
    AppendSampleValue(format_, sample, buffer_);
    CTRJOIN_RETURN_IF_ERROR(
        producer_->Send(topic_, sample.impression.impression_id, buffer_, timeout_ms_, &headers_));
  }
  return Status::Ok();
}

Status KafkaSampleSink::Flush() { return producer_->Flush(timeout_ms_); }

std::string KafkaSampleSink::Describe() const { return description_; }

Result<std::unique_ptr<KafkaDeadLetterSink>> KafkaDeadLetterSink::Open(
    const KafkaSinkOptions& options) {
  CTRJOIN_RETURN_IF_ERROR(options.Validate("dead_letter.kafka"));
  Result<std::unique_ptr<KafkaProducer>> producer = OpenProducer(options);
  if (!producer.ok()) return producer.status();
  return std::unique_ptr<KafkaDeadLetterSink>(new KafkaDeadLetterSink(
      std::move(producer).value(), options.topic, options.flush_timeout_ms));
}

KafkaDeadLetterSink::KafkaDeadLetterSink(std::unique_ptr<KafkaProducer> producer, std::string topic,
                                         int timeout_ms)
    : producer_(std::move(producer)), topic_(std::move(topic)), timeout_ms_(timeout_ms) {}

KafkaDeadLetterSink::~KafkaDeadLetterSink() = default;

Status KafkaDeadLetterSink::Write(const DeadLetter& letter) {
  std::string json;
  AppendDeadLetterJson(letter, json);
  return producer_->Send(topic_, std::nullopt, json, timeout_ms_);
}

Status KafkaDeadLetterSink::Flush() { return producer_->Flush(timeout_ms_); }

}  // namespace ctrjoin
