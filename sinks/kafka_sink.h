#pragma once
// Plain (non-transactional, idempotent) Kafka sinks for samples and for dead
// letters. Keys are the impression id, partitioned with murmur2 as Java
// clients do (partitioner=murmur2_random), so a sample always lands on the
// same partition. The transactional sink is sinks/kafka_txn_sink.h.
//
// Called only from the pipeline's serial sink/router node. Owns its
// KafkaProducer; delivery reports are served by poll() calls made from
// Write/Flush (no background thread of ours).

#include <map>
#include <memory>
#include <string>

#include "sinks/kafka_producer.h"
#include "sinks/sample_format.h"
#include "src/pipeline/sink.h"

namespace ctrjoin {

struct KafkaSinkOptions {
  std::string brokers;                            // required
  std::string topic;                              // required
  std::map<std::string, std::string> properties;  // extra librdkafka settings
  int flush_timeout_ms = 30'000;
  // Not a config key: the published schema's id, sent with every sample as
  // the header ctrjoin-schema-id (beside content-type); empty: not sent.
  std::string schema_id;
  // Not a config key: where the producer counts its errors; null: nowhere.
  ProducerMetrics* metrics = nullptr;

  // prefix names the config section in errors, e.g. "sink.kafka".
  Status Validate(const std::string& prefix) const;
};

// The headers of every sample value: content-type (SampleContentType) and,
// if schema_id is not empty, ctrjoin-schema-id.
MessageHeaders SampleHeaders(SampleFormat format, const std::string& schema_id);

class KafkaSampleSink : public SampleSink {
 public:
  static Result<std::unique_ptr<KafkaSampleSink>> Open(const KafkaSinkOptions& options,
                                                       SampleFormat format = SampleFormat::kJson);
  ~KafkaSampleSink() override;
  Status Write(std::span<const Sample> samples) override;
  Status Flush() override;
  std::string Describe() const override;

 private:
  KafkaSampleSink(std::unique_ptr<KafkaProducer> producer, const KafkaSinkOptions& options,
                  SampleFormat format);
  std::unique_ptr<KafkaProducer> producer_;
  std::string topic_;
  SampleFormat format_;
  int timeout_ms_;          // flush_timeout_ms: bounds a full queue and Flush
  MessageHeaders headers_;  // every sample's
  std::string description_;
  std::string buffer_;  // reused encoding buffer
};

class KafkaDeadLetterSink : public DeadLetterSink {
 public:
  static Result<std::unique_ptr<KafkaDeadLetterSink>> Open(const KafkaSinkOptions& options);
  ~KafkaDeadLetterSink() override;
  Status Write(const DeadLetter& letter) override;
  Status Flush() override;

 private:
  KafkaDeadLetterSink(std::unique_ptr<KafkaProducer> producer, std::string topic, int timeout_ms);
  std::unique_ptr<KafkaProducer> producer_;
  std::string topic_;
  int timeout_ms_;
};

}  // namespace ctrjoin
