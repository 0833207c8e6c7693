#include "sinks/kafka_producer.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>

namespace ctrjoin {

Result<std::unique_ptr<KafkaProducer>> KafkaProducer::Open(
    const std::map<std::string, std::string>& properties, std::string name,
    ProducerMetrics* metrics) {
  std::unique_ptr<KafkaProducer> producer(new KafkaProducer(std::move(name), metrics));
  Result<KafkaConf> conf = MakeKafkaConf(properties);
  if (!conf.ok()) return conf.status().WithContext(producer->name_ + " properties");
  rd_kafka_conf_set_opaque(conf->get(), producer.get());
  rd_kafka_conf_set_dr_msg_cb(conf->get(), &KafkaProducer::OnDelivery);
  rd_kafka_conf_set_error_cb(conf->get(), &KafkaProducer::OnError);
  Result<KafkaHandle> handle = MakeKafkaHandle(RD_KAFKA_PRODUCER, std::move(conf).value());
  if (!handle.ok()) return handle.status().WithContext(producer->name_);
  producer->handle_ = std::move(handle).value();
  return producer;
}

KafkaProducer::~KafkaProducer() {
  if (!handle_) return;
  const int undelivered = rd_kafka_outq_len(handle_.get());
  if (undelivered > 0) spdlog::warn("{}: dropping {} undelivered messages", name_, undelivered);
}

Status KafkaProducer::Send(const std::string& topic, std::optional<std::string_view> key,
                           std::string_view value, int timeout_ms, const MessageHeaders* headers,
                           int32_t partition, std::optional<uint64_t> tag) {
  // The tag travels as the message's opaque, offset by one (null: none).
  void* opaque = tag ? reinterpret_cast<void*>(static_cast<uintptr_t>(*tag + 1)) : nullptr;
  rd_kafka_poll(handle_.get(), 0);
  CTRJOIN_RETURN_IF_ERROR(DeliveryStatus());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  // The RD_KAFKA_V_* macros do not parenthesize their arguments.
  const char* key_data = key ? key->data() : nullptr;
  const size_t key_size = key ? key->size() : 0;
  char* value_data = const_cast<char*>(value.data());  // only read: RD_KAFKA_MSG_F_COPY
  auto context = [&] { return fmt::format("{}: producing to {}", name_, topic); };
  while (true) {
    // producev takes the headers on success only.
    rd_kafka_headers_t* hdrs = nullptr;
    if (headers != nullptr && !headers->empty()) {
      hdrs = rd_kafka_headers_new(headers->size());
      for (const auto& [name, text] : *headers) {
        rd_kafka_header_add(hdrs, name.data(), static_cast<ssize_t>(name.size()), text.data(),
                            static_cast<ssize_t>(text.size()));
      }
    }
    rd_kafka_resp_err_t err = rd_kafka_producev(
        handle_.get(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition),
        RD_KAFKA_V_KEY(key_data, key_size), RD_KAFKA_V_VALUE(value_data, value.size()),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs),
        RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR && hdrs != nullptr) rd_kafka_headers_destroy(hdrs);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return DeliveryStatus();  // incl. reports just served
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) metrics_->produce_errors.Add(1);
    if (err == RD_KAFKA_RESP_ERR__FATAL) return KafkaFatalStatus(handle_.get(), context());
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) return KafkaStatus(err, context());
    if (std::chrono::steady_clock::now() >= deadline) {
      metrics_->produce_errors.Add(1);
      // Earlier messages may already be delivered: effect unknown.
      return Status::TimedOut(
          fmt::format("{}: producer queue still full after {} ms", context(), timeout_ms));
    }
    rd_kafka_poll(handle_.get(), 100);  // delivery reports make room
  }
}

Status KafkaProducer::Flush(int timeout_ms) {
  rd_kafka_flush(handle_.get(), timeout_ms);
  const int undelivered = rd_kafka_outq_len(handle_.get());
  if (undelivered > 0) {
    return Status::TimedOut(
        fmt::format("{}: {} messages undelivered after {} ms", name_, undelivered, timeout_ms));
  }
  return DeliveryStatus();
}

Status KafkaProducer::Prepare(const std::string& topic, int wait_ms) {
  Result<std::vector<int32_t>> partitions = KafkaTopicPartitions(handle_.get(), topic, wait_ms);
  if (partitions.ok() || partitions.status().code() != StatusCode::kNotFound) return Status::Ok();
  return Status::InvalidArgument(fmt::format(
      "{}: topic '{}' does not exist and the brokers did not create it within {} ms: create it",
      name_, topic, wait_ms));
}

Status KafkaProducer::DeliveryStatus() const {
  if (failed_deliveries_ == 0) return Status::Ok();
  return first_failure_.WithContext(
      fmt::format("{}: {} deliveries failed, the first", name_, failed_deliveries_));
}

void KafkaProducer::ResetDeliveryStatus() {
  failed_deliveries_ = 0;
  first_failure_ = Status::Ok();
}

void KafkaProducer::OnDelivery(rd_kafka_t* rk, const rd_kafka_message_t* msg, void* opaque) {
  if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (msg->_private != nullptr) {
      auto* self = static_cast<KafkaProducer*>(opaque);
      const uint64_t tag = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(msg->_private)) - 1;
      self->delivered_.emplace_back(tag, msg->offset);
    }
    return;
  }
  auto* self = static_cast<KafkaProducer*>(opaque);
  self->metrics_->delivery_errors.Add(1);
  if (self->failed_deliveries_++ > 0) return;
  const std::string context =
      fmt::format("delivering to {}[{}]", rd_kafka_topic_name(msg->rkt), msg->partition);
  self->first_failure_ = msg->err == RD_KAFKA_RESP_ERR__FATAL ? KafkaFatalStatus(rk, context)
                                                              : KafkaStatus(msg->err, context);
}

// Client-level errors (brokers down, ...): librdkafka retries by itself, and
// a fatal one also fails the next call that needs the producer.
void KafkaProducer::OnError(rd_kafka_t* /*rk*/, int err, const char* reason, void* opaque) {
  auto* self = static_cast<KafkaProducer*>(opaque);
  self->metrics_->client_errors.Add(1);
  auto level = err == RD_KAFKA_RESP_ERR__FATAL ? spdlog::level::err : spdlog::level::warn;
  spdlog::log(level, "{}: {} ({})", self->name_, reason,
              rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)));
}

}  // namespace ctrjoin
