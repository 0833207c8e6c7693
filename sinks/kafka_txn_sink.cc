#include "sinks/kafka_txn_sink.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>
#include <thread>
#include <utility>

#include "sinks/json_encoder.h"
#include "sinks/kafka_producer.h"
#include "src/io/kafka_client.h"

namespace ctrjoin {

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kMaxPoolSize = 16;
constexpr int kMaxTransactionTimeoutMs = 900'000;  // Kafka's transaction.max.timeout.ms
constexpr auto kRetryPause = std::chrono::milliseconds(100);

struct KafkaErrorDeleter {
  void operator()(rd_kafka_error_t* error) const { rd_kafka_error_destroy(error); }
};
// A transactional API call's error; null on success.
using KafkaError = std::unique_ptr<rd_kafka_error_t, KafkaErrorDeleter>;

// A fatal error leaves the producer unusable for good (see the header): the
// caller must stop, as when fenced, whatever the underlying error was.
Status FatalStatus(rd_kafka_t* rk, std::string_view context) {
  return Status::Fenced(KafkaFatalStatus(rk, context).message());
}

Status TxnStatus(rd_kafka_t* rk, const KafkaError& error, std::string_view context) {
  if (!error) return Status::Ok();
  if (rd_kafka_error_is_fatal(error.get())) return FatalStatus(rk, context);
  return KafkaStatus(rd_kafka_error_code(error.get()), context, rd_kafka_error_string(error.get()));
}

// For a commit or abort: one still retriable at the deadline goes on in the
// background, and calling it again resumes it, so its effect is unknown.
Status EndTxnStatus(rd_kafka_t* rk, const KafkaError& error, std::string_view context,
                    int timeout_ms) {
  Status cause = TxnStatus(rk, error, context);
  if (!error || rd_kafka_error_is_fatal(error.get()) || !rd_kafka_error_is_retriable(error.get())) {
    return cause;
  }
  return Status::TimedOut(fmt::format("{}: unfinished after {} ms", cause.message(), timeout_ms));
}

Clock::time_point After(int ms) { return Clock::now() + std::chrono::milliseconds(ms); }

bool Retriable(const rd_kafka_error_t* error) { return rd_kafka_error_is_retriable(error); }

// An abort that failed with an abortable error (EndTxn refused for a reason
// other than fencing) is back at its start in librdkafka and may be called
// again.
bool AbortRetriable(const rd_kafka_error_t* error) {
  return rd_kafka_error_is_retriable(error) || rd_kafka_error_txn_requires_abort(error);
}

// Calls call(timeout_ms) until it succeeds, fails with an error that
// retry(error) rejects, or the deadline passes. Init, commit and abort
// resume what a timed-out call left running in the background.
template <typename Call>
KafkaError RetryUntil(Clock::time_point deadline, Call call,
                      bool (*retry)(const rd_kafka_error_t*) = Retriable) {
  while (true) {
    const int64_t left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    KafkaError error(call(static_cast<int>(std::max<int64_t>(left, 1))));
    if (!error || !retry(error.get()) || Clock::now() >= deadline) return error;
    std::this_thread::sleep_for(kRetryPause);
  }
}

}  // namespace

Status KafkaTransactionalSinkOptions::Validate() const {
  if (brokers.empty()) return Status::InvalidArgument("sink.kafka.brokers: must not be empty");
  if (topic.empty()) return Status::InvalidArgument("sink.kafka.topic: must not be empty");
  if (dead_letter_topic == topic) {
    return Status::InvalidArgument("dead_letter.kafka.topic: must differ from sink.kafka.topic '" +
                                   topic + "'");
  }
  if (transactional_id_prefix.empty()) {
    return Status::InvalidArgument(
        "sink.kafka.transactional_id_prefix: must be set for exactly-once output");
  }
  if (pool_size < 1 || pool_size > kMaxPoolSize) {
    return Status::InvalidArgument(
        fmt::format("sink.kafka.pool_size: must be in 1..{}, got {}", kMaxPoolSize, pool_size));
  }
  if (commit_interval_ms <= 0) {
    return Status::InvalidArgument(
        fmt::format("sink.kafka.commit_interval_ms: must be positive, got {}", commit_interval_ms));
  }
  const int64_t min_timeout_ms = 3 * int64_t{commit_interval_ms} + 10'000;
  if (transaction_timeout_ms < min_timeout_ms) {
    return Status::InvalidArgument(fmt::format(
        "sink.kafka.transaction_timeout_ms: {} ms is too short for a commit interval of {} ms; "
        "it must be at least 3 x commit interval + 10 s = {} ms, or the broker aborts "
        "transactions that are still waiting to commit",
        transaction_timeout_ms, commit_interval_ms, min_timeout_ms));
  }
  if (transaction_timeout_ms > kMaxTransactionTimeoutMs) {
    return Status::InvalidArgument(
        fmt::format("sink.kafka.transaction_timeout_ms: {} ms is above {} ms, the brokers' usual "
                    "transaction.max.timeout.ms",
                    transaction_timeout_ms, kMaxTransactionTimeoutMs));
  }
  if (operation_timeout_ms <= 0) {
    return Status::InvalidArgument(fmt::format(
        "sink.kafka.operation_timeout_ms: must be positive, got {}", operation_timeout_ms));
  }
  for (const char* reserved :
       {"transactional.id", "transaction.timeout.ms", "enable.idempotence"}) {
    if (properties.contains(reserved)) {
      return Status::InvalidArgument(fmt::format(
          "sink.kafka.properties.{}: set by the transactional sink, not settable", reserved));
    }
  }
  return Status::Ok();
}

// One transactional id of the pool: its producer and the epoch whose
// transaction it holds. The producer (producer_ and every call below that
// uses it) belongs to one thread at a time, its current user (see the
// header); epoch_ and precommitted_ are read and written only under the
// sink's mu_; id_ is constant. Owns the producer.
class KafkaTransactionalSink::TxnProducer {
 public:
  // Creates a producer for id and initializes its transactions, which fences
  // and aborts what an earlier producer of id left open.
  static Result<std::unique_ptr<TxnProducer>> Open(const KafkaTransactionalSinkOptions& options,
                                                   std::string id);

  rd_kafka_t* get() const { return producer_->get(); }
  const std::string& id() const { return id_; }

  // Bookkeeping; the caller holds the sink's mu_.
  EpochId epoch() const { return epoch_; }
  bool precommitted() const { return precommitted_; }
  void Assign(EpochId epoch) {
    epoch_ = epoch;
    precommitted_ = false;
  }
  void MarkPreCommitted() { precommitted_ = true; }
  // After an abort that lost messages: see AbortOn.
  bool spent() const { return spent_; }
  void MarkSpent() { spent_ = true; }
  // The transaction ended (committed or aborted).
  void Release() { Assign(EpochId{}); }

  // The calls below may block; the caller does not hold mu_. epoch is the
  // transaction's, for messages.
  Status Begin(EpochId epoch);
  // Queues one message, polling while the queue is full, up to timeout_ms.
  Status Produce(EpochId epoch, const std::string& topic, std::optional<std::string_view> key,
                 std::string_view value, int timeout_ms, const MessageHeaders* headers = nullptr) {
    return Fatal(epoch, producer_->Send(topic, key, value, timeout_ms, headers));
  }
  // Queues a changelog chunk for partition chunk.task of topic, noting it
  // (and, once delivered, its offset) for the changelog trimmer.
  Status ProduceChangelog(EpochId epoch, const std::string& topic, const ChangelogChunk& chunk,
                          int timeout_ms) {
    const uint64_t tag = next_tag_++;
    if (changelog_.empty()) first_tag_ = tag;
    changelog_.push_back({chunk.task, {-1, chunk.max_horizon, chunk.watermark}});
    return Fatal(epoch, producer_->Send(topic, std::nullopt, chunk.bytes, timeout_ms, nullptr,
                                        chunk.task, tag));
  }
  // The changelog records of the transaction, for whoever owns it.
  std::vector<std::pair<int32_t, ChangelogTrimPlan::Record>> TakeChangelog() {
    for (const auto& [tag, offset] : producer_->TakeDelivered()) {
      // Tags are never reused: one of an aborted transaction matches nothing.
      if (tag >= first_tag_ && tag - first_tag_ < changelog_.size()) {
        changelog_[tag - first_tag_].second.offset = offset;
      }
    }
    return std::exchange(changelog_, {});
  }
  // Waits up to timeout_ms for every queued message to be delivered.
  Status Flush(EpochId epoch, int timeout_ms) { return Fatal(epoch, producer_->Flush(timeout_ms)); }
  // Fetches topic's metadata ahead of the first message (KafkaProducer::Prepare).
  Status Prepare(const std::string& topic, int wait_ms) {
    return producer_->Prepare(topic, wait_ms);
  }
  // Whether a message of the current or last transaction failed delivery.
  bool LostDeliveries() const { return !producer_->DeliveryStatus().ok(); }

 private:
  TxnProducer(std::string id, std::unique_ptr<KafkaProducer> producer)
      : id_(std::move(id)), producer_(std::move(producer)) {}
  static Result<std::unique_ptr<KafkaProducer>> NewProducer(
      const KafkaTransactionalSinkOptions& options, const std::string& id);
  // Once the producer has a fatal error it is unusable for good: the caller
  // must stop, as when fenced, whatever the failed call reported.
  Status Fatal(EpochId epoch, Status st) const {
    if (st.ok() || rd_kafka_fatal_error(get(), nullptr, 0) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      return st;
    }
    return FatalStatus(get(), fmt::format("sink.kafka: epoch {} on {}", epoch.value, id()));
  }

  const std::string id_;
  std::unique_ptr<KafkaProducer> producer_;
  // The transaction's changelog records; [i] was sent with tag first_tag_ + i
  // (its delivery report gives the offset).
  std::vector<std::pair<int32_t, ChangelogTrimPlan::Record>> changelog_;
  uint64_t first_tag_ = 0;
  uint64_t next_tag_ = 0;
  EpochId epoch_;  // whose transaction is open; 0 when idle
  bool precommitted_ = false;
  bool spent_ = false;
};

Result<std::unique_ptr<KafkaProducer>> KafkaTransactionalSink::TxnProducer::NewProducer(
    const KafkaTransactionalSinkOptions& options, const std::string& id) {
  std::map<std::string, std::string> properties = {
      {"bootstrap.servers", options.brokers},
      {"partitioner", "murmur2_random"},  // as Java clients partition by key
      {"linger.ms", "5"},
  };
  for (const auto& [name, value] : options.properties) properties[name] = value;
  properties["enable.idempotence"] = "true";
  properties["transactional.id"] = id;
  properties["transaction.timeout.ms"] = std::to_string(options.transaction_timeout_ms);
  Result<std::unique_ptr<KafkaProducer>> producer =
      KafkaProducer::Open(properties, id, options.metrics);
  if (!producer.ok()) return producer.status().WithContext("sink.kafka");
  rd_kafka_t* rk = (*producer)->get();
  KafkaError error = RetryUntil(After(options.operation_timeout_ms), [rk](int timeout_ms) {
    return rd_kafka_init_transactions(rk, timeout_ms);
  });
  CTRJOIN_RETURN_IF_ERROR(
      TxnStatus(rk, error, fmt::format("sink.kafka: initializing transactions of {}", id)));
  return producer;
}

Result<std::unique_ptr<KafkaTransactionalSink::TxnProducer>>
KafkaTransactionalSink::TxnProducer::Open(const KafkaTransactionalSinkOptions& options,
                                          std::string id) {
  Result<std::unique_ptr<KafkaProducer>> producer = NewProducer(options, id);
  if (!producer.ok()) return producer.status();
  return std::unique_ptr<TxnProducer>(new TxnProducer(std::move(id), std::move(producer).value()));
}

Status KafkaTransactionalSink::TxnProducer::Begin(EpochId epoch) {
  KafkaError error(rd_kafka_begin_transaction(get()));
  CTRJOIN_RETURN_IF_ERROR(TxnStatus(
      get(), error, fmt::format("sink.kafka: beginning epoch {} on {}", epoch.value, id())));
  producer_->ResetDeliveryStatus();
  changelog_.clear();
  producer_->TakeDelivered();  // reports of an earlier transaction
  return Status::Ok();
}

KafkaTransactionalSink::KafkaTransactionalSink(KafkaTransactionalSinkOptions options)
    : options_(std::move(options)), headers_(SampleHeaders(options_.format, options_.schema_id)) {}

KafkaTransactionalSink::~KafkaTransactionalSink() = default;

Result<std::unique_ptr<KafkaTransactionalSink>> KafkaTransactionalSink::Open(
    const KafkaTransactionalSinkOptions& options) {
  CTRJOIN_RETURN_IF_ERROR(options.Validate());
  std::unique_ptr<KafkaTransactionalSink> sink(new KafkaTransactionalSink(options));
  for (int i = 0; i < options.pool_size; ++i) {
    Result<std::unique_ptr<TxnProducer>> producer =
        TxnProducer::Open(options, fmt::format("{}-{}", options.transactional_id_prefix, i));
    if (!producer.ok()) return producer.status();
    // Without this, each producer's first epoch waited for the topics'
    // metadata while the pipeline waited at the barrier (bench/README.md).
    constexpr int kMetadataWaitMs = 5'000;
    CTRJOIN_RETURN_IF_ERROR(
        (*producer)->Prepare(options.topic, kMetadataWaitMs).WithContext("sink.kafka.topic"));
    if (!options.dead_letter_topic.empty()) {
      CTRJOIN_RETURN_IF_ERROR((*producer)
                                  ->Prepare(options.dead_letter_topic, kMetadataWaitMs)
                                  .WithContext("dead_letter.kafka.topic"));
    }
    sink->producers_.push_back(std::move(producer).value());
  }
  for (int i = options.pool_size; i < options.fence_pool_size; ++i) {
    const std::string id = fmt::format("{}-{}", options.transactional_id_prefix, i);
    Result<std::unique_ptr<TxnProducer>> fencer = TxnProducer::Open(options, id);
    if (!fencer.ok()) return fencer.status().WithContext("fencing " + id + ", no longer pooled");
  }
  return sink;
}

std::string KafkaTransactionalSink::Describe() const {
  return fmt::format("kafka {} {} (transactional ids {}-0..{})", options_.brokers, options_.topic,
                     options_.transactional_id_prefix, options_.pool_size - 1);
}

KafkaTransactionalSink::TxnProducer* KafkaTransactionalSink::Holding(EpochId epoch) const {
  if (epoch.value == 0) return nullptr;
  TxnProducer* producer = producers_[epoch.value % producers_.size()].get();
  return producer->epoch() == epoch ? producer : nullptr;
}

Status KafkaTransactionalSink::Begin(EpochId epoch) {
  TxnProducer* producer = producers_[epoch.value % producers_.size()].get();
  {
    std::lock_guard lock(mu_);
    if (open_.value != 0) {
      return Status::InvalidArgument(
          fmt::format("epoch {} begun while {} is open", epoch.value, open_.value));
    }
    if (epoch <= last_begun_) {
      return Status::InvalidArgument(
          fmt::format("epoch {} begun after epoch {}", epoch.value, last_begun_.value));
    }
    if (producer->epoch().value != 0) {
      return Status::InvalidArgument(
          fmt::format("epoch {} needs {}, whose epoch {} is not committed or aborted yet",
                      epoch.value, producer->id(), producer->epoch().value));
    }
    if (producer->spent()) {
      return Status::Internal(
          fmt::format("sink.kafka: epoch {} needs {}, whose producer lost messages of an aborted "
                      "transaction; a restart initializes it again",
                      epoch.value, producer->id()),
          Effect::kNoEffect);
    }
  }
  // The producer is idle, and only this thread begins epochs.
  CTRJOIN_RETURN_IF_ERROR(producer->Begin(epoch));
  std::lock_guard lock(mu_);
  producer->Assign(epoch);
  open_ = epoch;
  last_begun_ = epoch;
  return Status::Ok();
}

Result<std::pair<EpochId, KafkaTransactionalSink::TxnProducer*>>
KafkaTransactionalSink::OpenProducer() {
  std::lock_guard lock(mu_);
  TxnProducer* producer = Holding(open_);
  if (producer == nullptr) return Status::InvalidArgument("write outside an open epoch");
  return std::pair{open_, producer};
}

Status KafkaTransactionalSink::Write(std::span<const Sample> samples) {
  auto open = OpenProducer();
  if (!open.ok()) return open.status();
  const auto [epoch, producer] = *open;
  for (const Sample& sample : samples) {
    buffer_.clear();
    AppendSampleValue(options_.format, sample, buffer_);
    CTRJOIN_RETURN_IF_ERROR(producer->Produce(epoch, options_.topic,
                                              sample.impression.impression_id, buffer_,
                                              options_.operation_timeout_ms, &headers_));
  }
  return Status::Ok();
}

Status KafkaTransactionalSink::WriteDeadLetter(const DeadLetter& letter) {
  if (options_.dead_letter_topic.empty()) return TransactionalSink::WriteDeadLetter(letter);
  auto open = OpenProducer();
  if (!open.ok()) return open.status();
  const auto [epoch, producer] = *open;
  buffer_.clear();
  AppendDeadLetterJson(letter, buffer_);
  return producer->Produce(epoch, options_.dead_letter_topic, std::nullopt, buffer_,
                           options_.operation_timeout_ms);
}

Status KafkaTransactionalSink::WriteChangelog(const ChangelogChunk& chunk) {
  if (options_.changelog_topic.empty()) return TransactionalSink::WriteChangelog(chunk);
  auto open = OpenProducer();
  if (!open.ok()) return open.status();
  const auto [epoch, producer] = *open;
  return producer->ProduceChangelog(epoch, options_.changelog_topic, chunk,
                                    options_.operation_timeout_ms);
}

Status KafkaTransactionalSink::PreCommit(EpochId epoch) {
  TxnProducer* producer;
  {
    std::lock_guard lock(mu_);
    producer = Holding(open_);
    if (epoch != open_ || producer == nullptr) {
      return Status::InvalidArgument(
          fmt::format("pre-commit of epoch {}, which is not open", epoch.value));
    }
  }
  CTRJOIN_RETURN_IF_ERROR(producer->Flush(epoch, options_.operation_timeout_ms));
  std::lock_guard lock(mu_);
  producer->MarkPreCommitted();  // from here on the committer's
  open_ = EpochId{};
  return Status::Ok();
}

Status KafkaTransactionalSink::SendOffsets(EpochId epoch,
                                           const rd_kafka_topic_partition_list_t* offsets,
                                           const rd_kafka_consumer_group_metadata_t* group) {
  TxnProducer* producer;
  {
    std::lock_guard lock(mu_);
    producer = Holding(epoch);
  }
  if (producer == nullptr) {
    return Status::InvalidArgument(
        fmt::format("offsets sent for epoch {}, which is not open or pre-committed", epoch.value));
  }
  rd_kafka_t* rk = producer->get();
  // Retried with the same offsets and group, as librdkafka asks.
  KafkaError error = RetryUntil(After(options_.operation_timeout_ms), [&](int timeout_ms) {
    return rd_kafka_send_offsets_to_transaction(rk, offsets, group, timeout_ms);
  });
  Status st = TxnStatus(
      rk, error,
      fmt::format("sink.kafka: sending offsets with epoch {} on {}", epoch.value, producer->id()));
  // KIP-447: the group refused this consumer's generation or member id. It
  // missed a rebalance (paused past the session timeout): its partitions
  // belong to another process now, which is fencing.
  const rd_kafka_resp_err_t code =
      error ? rd_kafka_error_code(error.get()) : RD_KAFKA_RESP_ERR_NO_ERROR;
  if (code == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION || code == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID) {
    return Status::Fenced(st.message() +
                          "; the consumer group gave this process's partitions to another "
                          "(it missed a rebalance)");
  }
  return st;
}

Status KafkaTransactionalSink::Commit(EpochId epoch) {
  TxnProducer* producer;
  {
    std::lock_guard lock(mu_);
    producer = Holding(epoch);
    if (producer == nullptr) {
      if (epoch.value != 0 && epoch <= last_committed_) return Status::Ok();  // a retry
      return Status::InvalidArgument(
          fmt::format("commit of epoch {}, which is not pre-committed", epoch.value));
    }
    if (!producer->precommitted()) {
      return Status::InvalidArgument(
          fmt::format("commit of epoch {}, which is still open", epoch.value));
    }
    for (const auto& other : producers_) {
      if (other->epoch().value != 0 && other->epoch() < epoch) {
        return Status::InvalidArgument(
            fmt::format("commit of epoch {} before epoch {}: epochs commit in order", epoch.value,
                        other->epoch().value));
      }
    }
  }
  rd_kafka_t* rk = producer->get();
  KafkaError error = RetryUntil(After(options_.operation_timeout_ms), [rk](int timeout_ms) {
    return rd_kafka_commit_transaction(rk, timeout_ms);
  });
  if (!error) {
    auto changelog = producer->TakeChangelog();  // before Release hands the producer on
    {
      std::lock_guard lock(mu_);
      producer->Release();
      last_committed_ = std::max(last_committed_, epoch);
    }
    if (options_.changelog_trimmer != nullptr && !changelog.empty()) {
      options_.changelog_trimmer->Committed(changelog);
    }
    return Status::Ok();
  }
  const Status cause = EndTxnStatus(
      rk, error, fmt::format("sink.kafka: committing epoch {} on {}", epoch.value, producer->id()),
      options_.operation_timeout_ms);
  if (!rd_kafka_error_is_fatal(error.get()) && rd_kafka_error_txn_requires_abort(error.get())) {
    CTRJOIN_RETURN_IF_ERROR(AbortOn(*producer, epoch));
    return Status::Internal(cause.message() + "; the epoch was aborted", Effect::kNoEffect);
  }
  return cause;
}

Status KafkaTransactionalSink::Abort(EpochId epoch) {
  TxnProducer* producer;
  {
    std::lock_guard lock(mu_);
    producer = Holding(epoch);
  }
  if (producer == nullptr) return Status::Ok();  // never begun here, or already aborted
  return AbortOn(*producer, epoch);
}

Status KafkaTransactionalSink::AbortOn(TxnProducer& producer, EpochId epoch) {
  rd_kafka_t* rk = producer.get();
  KafkaError error = RetryUntil(
      After(options_.operation_timeout_ms),
      [rk](int timeout_ms) { return rd_kafka_abort_transaction(rk, timeout_ms); }, AbortRetriable);
  if (error) {
    return EndTxnStatus(
        rk, error, fmt::format("sink.kafka: aborting epoch {} on {}", epoch.value, producer.id()),
        options_.operation_timeout_ms);
  }
  // A message the broker refused leaves a gap in the producer's sequence
  // numbers, and librdkafka 2.0 does not bump the producer epoch when
  // aborting for it, so the broker would refuse the next transaction too
  // (OUT_OF_ORDER_SEQUENCE_NUMBER). Only init_transactions gives the id a
  // new epoch, and it fences whoever holds the id now: after a pause, that
  // may be a newer instance of this job. So this process never initializes
  // an id again: after any lost message (refused, or purged by the abort:
  // the delivery status does not tell which) the producer is spent, its next
  // Begin fails, the run ends, and the restart's Open initializes the id.
  std::lock_guard lock(mu_);
  if (producer.LostDeliveries()) producer.MarkSpent();
  if (epoch == open_) open_ = EpochId{};
  producer.Release();
  return Status::Ok();
}

Result<EpochId> KafkaTransactionalSink::Recover(EpochId last_checkpoint) {
  // Open's init_transactions already aborted whatever was left open; a
  // committed Kafka transaction needs nothing more.
  std::lock_guard lock(mu_);
  last_begun_ = std::max(last_begun_, last_checkpoint);
  last_committed_ = std::max(last_committed_, last_checkpoint);
  return last_checkpoint;
}

}  // namespace ctrjoin
