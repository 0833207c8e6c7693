#include "sinks/kafka_sink.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>

#include "sinks/json_encoder.h"
#include "src/kafka_client.h"

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

// An idempotent producer serving one sink. Called only from the sink's thread
// (the pipeline's serial sink/router node); librdkafka runs OnDelivery and
// OnError inside rd_kafka_poll / rd_kafka_flush on that same thread, so the
// failure count and first failure need no lock. Owns the producer handle;
// destroying it drops whatever Flush did not deliver.
class KafkaProducer {
 public:
  static Result<std::unique_ptr<KafkaProducer>> Open(const KafkaSinkOptions& options);
  explicit KafkaProducer(const KafkaSinkOptions& options)
      : brokers_(options.brokers), flush_timeout_ms_(options.flush_timeout_ms) {}
  ~KafkaProducer();

  // Serves delivery reports, then queues one message (a null key if none),
  // waiting up to flush_timeout_ms while the queue is full. Returns the first
  // delivery failure seen so far, if any (and queues nothing after one).
  Status Send(const std::string& topic, std::optional<std::string_view> key,
              std::string_view value);
  // Waits up to flush_timeout_ms for every queued message to be delivered.
  Status Flush();
  const std::string& brokers() const { return brokers_; }

 private:
  Status DeliveryStatus() const;
  static void OnDelivery(rd_kafka_t* rk, const rd_kafka_message_t* msg, void* opaque);
  static void OnError(rd_kafka_t* rk, int err, const char* reason, void* opaque);

  const std::string brokers_;
  const int flush_timeout_ms_;
  KafkaHandle producer_;
  uint64_t failed_deliveries_ = 0;
  Status first_failure_;
};

Result<std::unique_ptr<KafkaProducer>> KafkaProducer::Open(const KafkaSinkOptions& options) {
  auto producer = std::make_unique<KafkaProducer>(options);
  std::map<std::string, std::string> properties = {
      {"bootstrap.servers", options.brokers},
      {"enable.idempotence", "true"},
      {"partitioner", "murmur2_random"},  // as Java clients partition by key
      {"linger.ms", "5"},
  };
  for (const auto& [name, value] : options.properties) properties[name] = value;
  Result<KafkaConf> conf = MakeKafkaConf(properties);
  if (!conf.ok()) return conf.status().WithContext("kafka sink properties");
  rd_kafka_conf_set_opaque(conf->get(), producer.get());
  rd_kafka_conf_set_dr_msg_cb(conf->get(), &KafkaProducer::OnDelivery);
  rd_kafka_conf_set_error_cb(conf->get(), &KafkaProducer::OnError);
  Result<KafkaHandle> handle = MakeKafkaHandle(RD_KAFKA_PRODUCER, std::move(conf).value());
  if (!handle.ok()) return handle.status().WithContext("kafka sink");
  producer->producer_ = std::move(handle).value();
  return producer;
}

KafkaProducer::~KafkaProducer() {
  if (!producer_) return;
  int undelivered = rd_kafka_outq_len(producer_.get());
  if (undelivered > 0) {
    spdlog::warn("kafka sink ({}): dropping {} undelivered messages", brokers_, undelivered);
  }
}

Status KafkaProducer::Send(const std::string& topic, std::optional<std::string_view> key,
                           std::string_view value) {
  rd_kafka_poll(producer_.get(), 0);
  CTRJOIN_RETURN_IF_ERROR(DeliveryStatus());
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(flush_timeout_ms_);
  // The RD_KAFKA_V_* macros do not parenthesize their arguments.
  const char* key_data = key ? key->data() : nullptr;
  const size_t key_size = key ? key->size() : 0;
  char* value_data = const_cast<char*>(value.data());  // only read: RD_KAFKA_MSG_F_COPY
  auto context = [&topic] { return fmt::format("kafka sink: producing to {}", topic); };
  while (true) {
    rd_kafka_resp_err_t err = rd_kafka_producev(
        producer_.get(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY(key_data, key_size),
        RD_KAFKA_V_VALUE(value_data, value.size()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return DeliveryStatus();  // incl. reports just served
    if (err == RD_KAFKA_RESP_ERR__FATAL) return KafkaFatalStatus(producer_.get(), context());
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) return KafkaStatus(err, context());
    if (std::chrono::steady_clock::now() >= deadline) {
      // Earlier messages of the same Write may be delivered: effect unknown.
      return Status::TimedOut(fmt::format("{}: producer queue still full after {} ms",
                                          context(), flush_timeout_ms_));
    }
    rd_kafka_poll(producer_.get(), 100);  // delivery reports make room
  }
}

Status KafkaProducer::Flush() {
  rd_kafka_flush(producer_.get(), flush_timeout_ms_);
  int undelivered = rd_kafka_outq_len(producer_.get());
  if (undelivered > 0) {
    return Status::TimedOut(fmt::format("kafka sink ({}): {} messages undelivered after {} ms",
                                        brokers_, undelivered, flush_timeout_ms_));
  }
  return DeliveryStatus();
}

Status KafkaProducer::DeliveryStatus() const {
  if (failed_deliveries_ == 0) return Status::Ok();
  return first_failure_.WithContext(
      fmt::format("kafka sink: {} deliveries failed, the first", failed_deliveries_));
}

void KafkaProducer::OnDelivery(rd_kafka_t* rk, const rd_kafka_message_t* msg, void* opaque) {
  if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) return;
  auto* self = static_cast<KafkaProducer*>(opaque);
  if (self->failed_deliveries_++ > 0) return;
  const std::string context =
      fmt::format("delivering to {}[{}]", rd_kafka_topic_name(msg->rkt), msg->partition);
  self->first_failure_ = msg->err == RD_KAFKA_RESP_ERR__FATAL ? KafkaFatalStatus(rk, context)
                                                               : KafkaStatus(msg->err, context);
}

// Client-level errors (brokers down, ...): librdkafka retries by itself, and
// a fatal one also fails the next Send or the pending deliveries.
void KafkaProducer::OnError(rd_kafka_t* /*rk*/, int err, const char* reason, void* opaque) {
  auto* self = static_cast<KafkaProducer*>(opaque);
  auto level = err == RD_KAFKA_RESP_ERR__FATAL ? spdlog::level::err : spdlog::level::warn;
  spdlog::log(level, "kafka sink ({}): {} ({})", self->brokers_, reason,
              rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)));
}

Result<std::unique_ptr<KafkaSampleSink>> KafkaSampleSink::Open(const KafkaSinkOptions& options,
                                                               SampleFormat format) {
  CTRJOIN_RETURN_IF_ERROR(options.Validate("sink.kafka"));
  Result<std::unique_ptr<KafkaProducer>> producer = KafkaProducer::Open(options);
  if (!producer.ok()) return producer.status();
  return std::unique_ptr<KafkaSampleSink>(
      new KafkaSampleSink(std::move(producer).value(), options.topic, format));
}

KafkaSampleSink::KafkaSampleSink(std::unique_ptr<KafkaProducer> producer, std::string topic,
                                 SampleFormat format)
    : producer_(std::move(producer)), topic_(std::move(topic)), format_(format) {}

KafkaSampleSink::~KafkaSampleSink() = default;

Status KafkaSampleSink::Write(std::span<const Sample> samples) {
  for (const Sample& sample : samples) {
    buffer_.clear();
    AppendSampleValue(format_, sample, buffer_);
    CTRJOIN_RETURN_IF_ERROR(producer_->Send(topic_, sample.impression.impression_id, buffer_));
  }
  return Status::Ok();
}

Status KafkaSampleSink::Flush() { return producer_->Flush(); }

std::string KafkaSampleSink::Describe() const {
  return fmt::format("kafka {} {}", producer_->brokers(), topic_);
}

Result<std::unique_ptr<KafkaDeadLetterSink>> KafkaDeadLetterSink::Open(
    const KafkaSinkOptions& options) {
  CTRJOIN_RETURN_IF_ERROR(options.Validate("dead_letter.kafka"));
  Result<std::unique_ptr<KafkaProducer>> producer = KafkaProducer::Open(options);
  if (!producer.ok()) return producer.status();
  return std::unique_ptr<KafkaDeadLetterSink>(
      new KafkaDeadLetterSink(std::move(producer).value(), options.topic));
}

KafkaDeadLetterSink::KafkaDeadLetterSink(std::unique_ptr<KafkaProducer> producer,
                                         std::string topic)
    : producer_(std::move(producer)), topic_(std::move(topic)) {}

KafkaDeadLetterSink::~KafkaDeadLetterSink() = default;

Status KafkaDeadLetterSink::Write(const DeadLetter& letter) {
  std::string json;
  AppendDeadLetterJson(letter, json);
  return producer_->Send(topic_, std::nullopt, json);
}

Status KafkaDeadLetterSink::Flush() { return producer_->Flush(); }

}  // namespace ctrjoin
