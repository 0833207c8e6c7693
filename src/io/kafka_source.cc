#include "src/io/kafka_source.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "src/io/kafka_client.h"
#include "src/io/read_alignment.h"
#include "src/ops/reachability.h"

namespace ctrjoin {

namespace {

using Clock = std::chrono::steady_clock;

// Bound for single blocking requests: committed offsets, watermarks.
constexpr int kRequestTimeoutMs = 10'000;
// How long "assign" mode waits for its topics to appear: a deployment may
// create them just before starting us.
constexpr std::chrono::seconds kTopicWait{10};
// During an outage, how often and for how long a metadata request may hold
// the source thread: a broker answers a connection's requests in order, so
// the answer may wait behind a fetch (fetch.wait.max.ms, 500 ms by default).
constexpr std::chrono::seconds kProbeInterval{3};
constexpr int kProbeTimeoutMs = 1'000;

int RemainingMs(Clock::time_point deadline) {
  auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

// How often the source re-decides which partitions read too far ahead.
constexpr std::chrono::milliseconds kAlignInterval{10};
constexpr int64_t kMaxReadAheadMs = 86'400'000;  // a day

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
      .count();
}

constexpr std::string_view kAssignmentStrategy = "partition.assignment.strategy";

// How long a read of stable committed offsets may wait for an open
// transaction: Kafka's default transaction.max.timeout.ms.
constexpr std::chrono::minutes kStableOffsetsWait{15};

// The committed offsets of `parts` as a read_committed consumer `rk` reads
// them: stable ones (KIP-447). While a transaction that sent offsets for one
// of them is open, the coordinator answers UNSTABLE_OFFSET_COMMIT and
// librdkafka asks again until the request times out; the transaction ends at
// once for a live writer, and for a killed one when it restarts or after its
// transaction.timeout.ms. So a timeout is retried in short tries, saying
// every 10 s what it waits for, until kStableOffsetsWait or until `stop`
// (may be empty) says the process stops (Stopped).
Status FetchStableCommitted(rd_kafka_t* rk, rd_kafka_topic_partition_list_t* parts,
                            const std::string& group, const std::function<bool()>& stop) {
  constexpr int kTryMs = 1'000;
  constexpr std::chrono::seconds kWarnEvery{10};
  const Clock::time_point start = Clock::now();
  Clock::time_point next_warn = start + kWarnEvery;
  for (;;) {
    const rd_kafka_resp_err_t err = rd_kafka_committed(rk, parts, kTryMs);
    const double waited = std::chrono::duration<double>(Clock::now() - start).count();
    if (err != RD_KAFKA_RESP_ERR__TIMED_OUT || Clock::now() - start >= kStableOffsetsWait) {
      return KafkaStatus(err, fmt::format("source.kafka: fetching the committed offsets of group "
                                          "'{}' (waited {:.0f} s)",
                                          group, waited));
    }
    if (stop && stop()) {
      return Status::Stopped(fmt::format(
          "source.kafka: stopped while waiting for stable committed offsets of group '{}' "
          "({:.0f} s)",
          group, waited));
    }
    if (Clock::now() < next_warn) continue;
    next_warn += kWarnEvery;
    spdlog::warn(
        "source.kafka: waiting for stable committed offsets of group '{}' ({:.0f} s so far): "
        "either a transaction that sent offsets for them is still open (a stopped process's "
        "transaction ends when it restarts or after its transaction.timeout.ms), or the group "
        "coordinator does not answer",
        group, waited);
  }
}

}  // namespace

Status KafkaSourceOptions::Validate() const {
  if (brokers.empty()) return Status::InvalidArgument("source.kafka.brokers: must not be empty");
  if (impressions_topic.empty()) {
    return Status::InvalidArgument("source.kafka.impressions_topic: must not be empty");
  }
  if (clicks_topic.empty()) {
    return Status::InvalidArgument("source.kafka.clicks_topic: must not be empty");
  }
  if (impressions_topic == clicks_topic) {
    return Status::InvalidArgument(
        fmt::format("source.kafka.clicks_topic: must differ from impressions_topic, both are '{}'",
                    clicks_topic));
  }
  if (group_id.empty()) return Status::InvalidArgument("source.kafka.group_id: must not be empty");
  // A group member cannot tell when the whole group has read to the end:
  // partitions move between members, and a member may get none at all.
  if (stop_at_end && mode != KafkaMode::kAssign) {
    return Status::InvalidArgument("source.kafka.stop_at_end: requires mode 'assign'");
  }
  // A task is partition p of both topics: only the range assignor gives
  // partition p of every subscribed topic to one member (round robin and
  // sticky spread them over members independently).
  if (mode == KafkaMode::kGroup) {
    if (auto s = properties.find(std::string(kAssignmentStrategy));
        s != properties.end() && s->second != "range") {
      return Status::InvalidArgument(fmt::format(
          "source.kafka.properties: {} must be 'range' in mode 'group', got '{}' (a task is "
          "partition p of both topics, and only the range assignor keeps them together)",
          kAssignmentStrategy, s->second));
    }
  }
  if (poll_timeout_ms < 1 || poll_timeout_ms > 10'000) {
    return Status::InvalidArgument(fmt::format(
        "source.kafka.poll_timeout_ms: must be in [1, 10000], got {}", poll_timeout_ms));
  }
  if (max_read_ahead_ms < 0 || max_read_ahead_ms > kMaxReadAheadMs) {
    return Status::InvalidArgument(
        fmt::format("source.kafka.max_read_ahead_ms: must be in [0, {}] (0 = off), got {}",
                    kMaxReadAheadMs, max_read_ahead_ms));
  }
  return Status::Ok();
}

// The consumer and what the next batch must report. Touched only by the
// thread calling Next (the rebalance callback runs inside
// rd_kafka_consumer_poll on that thread), except progress_ (any thread,
// under progress_mu_) and what OffsetsFor/NewGroupMetadata read (fixed after
// start-up). Owns the consumer handle and closes it (leaving the group)
// before destroying it.
struct KafkaSource::Impl {
  explicit Impl(KafkaSourceOptions options) : options_(std::move(options)) {}
  ~Impl();

  Status Start();
  Result<SourceBatch> Next(size_t max_records);

  // Where a bounded run (stop_at_end) ends, per partition.
  struct End {
    int64_t start = 0;     // first offset of the run
    int64_t offset = 0;    // end offset (LSO for read_committed) at start-up
    int64_t position = 0;  // next offset to read
    bool reached = false;
  };

  Status Subscribe();
  Status AssignAll();
  Status Seek(const SourcePositions& positions);
  Result<uint64_t> CommittedEpoch();
  Status ReleaseRevoked();
  Status TrackEnd(const rd_kafka_topic_partition_t& part);
  void OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                   const rd_kafka_topic_partition_list_t* parts);
  Status Handle(const rd_kafka_message_t& msg, SourceBatch& batch);
  // The bounded run is over; stays true (ends_ is fixed at start-up).
  bool AllFinished() const { return options_.stop_at_end && unfinished_ == 0; }
  bool PastEnd(PartitionId id, int64_t offset) const;
  void Reached(PartitionId id, int64_t position);
  // Pauses or resumes these partitions' fetching; logs a failure.
  void SetPaused(const std::vector<PartitionId>& ids, bool pause);
  // Pauses partitions that read too far ahead, resumes those caught up with.
  void Align();
  // Resumes what Align paused and forgets it (before a new assignment).
  void ResetAlignment();
  // The end offset librdkafka last saw (the run's end if bounded), or -1.
  int64_t EndOf(PartitionId id) const;
  // Tells the alignment these partitions were just assigned.
  void AlignAssigned(const rd_kafka_topic_partition_list_t* parts);
  std::optional<StreamKind> StreamOf(const char* topic) const;
  const std::string& TopicOf(StreamKind stream) const;

  static std::string DescribePartitions(const rd_kafka_topic_partition_list_t* parts);
  KafkaPartitionList ListOf(const std::vector<PartitionId>& ids) const;
  static void RebalanceCallback(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                                rd_kafka_topic_partition_list_t* parts, void* opaque) {
    static_cast<Impl*>(opaque)->OnRebalance(rk, err, parts);
  }
  // The client's own errors (brokers down, a transport failure), which
  // rd_kafka_consumer_poll does not return as messages: called from it, on
  // the source thread.
  static void ErrorCallback(rd_kafka_t*, int err, const char* reason, void* opaque) {
    static_cast<Impl*>(opaque)->OnError(static_cast<rd_kafka_resp_err_t>(err), reason);
  }
  void OnError(rd_kafka_resp_err_t err, const char* reason);

  const KafkaSourceOptions options_;
  KafkaHandle consumer_;
  Reachability brokers_{"source.kafka: brokers"};
  Clock::time_point next_probe_;  // source thread: UnreachableSinceMs
  // Changes since the previous batch, reported by the next one.
  std::vector<PartitionId> assigned_;
  std::vector<PartitionId> revoked_;
  // Mode group, between a revocation and the next assignment: each revoked
  // partition's position (-1: none yet). The eager protocol revokes every
  // partition at each rebalance; a partition given back goes on from here
  // (RD_KAFKA_OFFSET_INVALID: it had delivered nothing, and starts as a new
  // one would) and is not reported as revoked and assigned (its task keeps
  // its state).
  std::map<PartitionId, int64_t> revoked_positions_;
  // An assignment was applied during this Next: the batch ends there, so
  // that it carries one rebalance's net change (two in one batch could not
  // be told apart in order).
  bool rebalanced_ = false;
  // commit_on_revoke: partitions revoked but not given up yet (the batch
  // reports them as `revoking`), and whether ReleaseRevoked is still due.
  std::vector<PartitionId> revoking_;
  bool release_due_ = false;
  bool closing_ = false;  // in the destructor: revocations apply at once
  // Partitions given up and no assignment since: batches are `suspended`.
  bool between_assignments_ = false;
  std::vector<PartitionId> finished_;
  Status rebalance_error_;                        // first failure inside the rebalance callback
  std::map<PartitionId, End> ends_;               // stop_at_end only
  std::map<PartitionId, int64_t> start_offsets_;  // mode assign: as assigned at start-up
  size_t unfinished_ = 0;                         // entries of ends_ not yet reached
  // max_read_ahead_ms > 0: what each partition read, and which are paused.
  std::optional<ReadAlignment> alignment_;
  Clock::time_point next_align_;
  std::atomic<int64_t> paused_partitions_{0};  // for PausedPartitions (source thread)
  // Copies ends_ into progress_ for Progress(); called by the source thread.
  void PublishProgress();
  // ends_ as of the last batch, for other threads; guarded by progress_mu_.
  mutable std::mutex progress_mu_;
  std::vector<KafkaSource::PartitionProgress> progress_;
};

KafkaSource::Impl::~Impl() {
  if (!consumer_) return;
  // Closing revokes everything once more: nothing will commit any more, so
  // the revocation is applied at once (OnRebalance), also one still due.
  closing_ = true;
  if (std::exchange(release_due_, false)) rd_kafka_assign(consumer_.get(), nullptr);
  rd_kafka_resp_err_t err = rd_kafka_consumer_close(consumer_.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    spdlog::warn("{}", KafkaStatus(err, "source.kafka: closing the consumer").message());
  }
  // librdkafka 2.0.2 can hang for good in rd_kafka_destroy after assigned
  // partitions vanished (the topic deleted, or the broker back empty): a
  // broker thread never ends (librdkafka issue #3470). Everything is closed
  // by now, so the handle is destroyed on a thread of its own, and given up
  // (left to the process's exit) if that takes longer than kDestroyWait.
  constexpr auto kDestroyWait = std::chrono::seconds(5);
  auto destroyed = std::make_shared<std::promise<void>>();
  std::future<void> done = destroyed->get_future();
  std::thread([rk = consumer_.release(), destroyed] {
    rd_kafka_destroy(rk);
    destroyed->set_value();
  }).detach();
  if (done.wait_for(kDestroyWait) == std::future_status::timeout) {
    spdlog::warn(
        "source.kafka: the consumer was not destroyed within {} s (a librdkafka hang after "
        "assigned partitions vanished); leaving it to the process's exit",
        std::chrono::duration_cast<std::chrono::seconds>(kDestroyWait).count());
  }
}

Status KafkaSource::Impl::Start() {
  std::map<std::string, std::string> properties = {
      {"bootstrap.servers", options_.brokers},
      {"group.id", options_.group_id},
      {"isolation.level", "read_committed"},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"auto.offset.reset", std::string(NameOf(options_.start))},
      {"enable.partition.eof", options_.stop_at_end ? "true" : "false"},
  };
  if (options_.mode == KafkaMode::kGroup) properties[std::string(kAssignmentStrategy)] = "range";
  if (options_.mode == KafkaMode::kGroup && !options_.instance.empty()) {
    properties["client.id"] = fmt::format("{}{}", kInstanceClientPrefix, options_.instance);
  }
  if (options_.max_read_ahead_ms > 0) {
    alignment_.emplace(options_.max_read_ahead_ms, [this](PartitionId id) { return EndOf(id); });
  }
  for (const auto& [name, value] : options_.properties) properties[name] = value;
  Result<KafkaConf> conf = MakeKafkaConf(properties);
  if (!conf.ok()) return conf.status().WithContext("source.kafka.properties");
  rd_kafka_conf_set_opaque(conf->get(), this);
  rd_kafka_conf_set_error_cb(conf->get(), &Impl::ErrorCallback);
  if (options_.mode == KafkaMode::kGroup) {
    rd_kafka_conf_set_rebalance_cb(conf->get(), &Impl::RebalanceCallback);
  }
  Result<KafkaHandle> consumer = MakeKafkaHandle(RD_KAFKA_CONSUMER, std::move(conf).value());
  if (!consumer.ok()) return consumer.status().WithContext("source.kafka");
  consumer_ = std::move(consumer).value();
  // Errors and other events then come out of rd_kafka_consumer_poll instead
  // of piling up on the main queue nobody polls.
  rd_kafka_poll_set_consumer(consumer_.get());
  return options_.mode == KafkaMode::kGroup ? Subscribe() : AssignAll();
}

Status KafkaSource::Impl::Subscribe() {
  KafkaPartitionList topics(rd_kafka_topic_partition_list_new(2));
  for (const std::string* topic : {&options_.impressions_topic, &options_.clicks_topic}) {
    rd_kafka_topic_partition_list_add(topics.get(), topic->c_str(), RD_KAFKA_PARTITION_UA);
  }
  return KafkaStatus(rd_kafka_subscribe(consumer_.get(), topics.get()),
                     "source.kafka: subscribing");
}

Status KafkaSource::Impl::AssignAll() {
  rd_kafka_t* rk = consumer_.get();
  KafkaPartitionList parts(rd_kafka_topic_partition_list_new(0));
  const Clock::time_point deadline = Clock::now() + kTopicWait;
  for (const std::string* topic : {&options_.impressions_topic, &options_.clicks_topic}) {
    Result<std::vector<int32_t>> ids =
        KafkaTopicPartitions(consumer_.get(), *topic, std::max(RemainingMs(deadline), 1));
    if (!ids.ok()) return ids.status();
    for (int32_t id : *ids) rd_kafka_topic_partition_list_add(parts.get(), topic->c_str(), id);
  }

  // Only this job's earlier run can have offsets pending here, and opening
  // the transactional sink aborts them: waiting for them to be stable would
  // wait out their transaction's timeout. So they are read as a
  // read_uncommitted consumer reads them, committed ones only.
  std::map<std::string, std::string> properties = options_.properties;
  properties["bootstrap.servers"] = options_.brokers;
  properties["group.id"] = options_.group_id;
  properties["isolation.level"] = "read_uncommitted";
  Result<KafkaConf> conf = MakeKafkaConf(properties);
  if (!conf.ok()) return conf.status().WithContext("source.kafka.properties");
  Result<KafkaHandle> reader = MakeKafkaHandle(RD_KAFKA_CONSUMER, std::move(conf).value());
  if (!reader.ok()) return reader.status().WithContext("source.kafka");
  CTRJOIN_RETURN_IF_ERROR(KafkaStatus(
      rd_kafka_committed(reader->get(), parts.get(), kRequestTimeoutMs),
      fmt::format("source.kafka: fetching committed offsets of group '{}'", options_.group_id)));
  const int64_t fallback =
      options_.start == StartPosition::kEarliest ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
  for (int i = 0; i < parts->cnt; ++i) {
    rd_kafka_topic_partition_t& part = parts->elems[i];
    CTRJOIN_RETURN_IF_ERROR(KafkaStatus(
        part.err,
        fmt::format("source.kafka: committed offset of {}[{}]", part.topic, part.partition)));
    if (part.offset >= 0) continue;
    // Nothing committed.
    auto start = options_.start_offsets.find({*StreamOf(part.topic), part.partition});
    part.offset = start != options_.start_offsets.end() ? start->second : fallback;
    if (part.offset >= 0) continue;
    // `start` resolved to an offset now, once: a restart must go on from
    // here, not from wherever the log's end has moved to by then.
    int64_t low = 0;
    int64_t high = 0;
    CTRJOIN_RETURN_IF_ERROR(
        KafkaStatus(rd_kafka_query_watermark_offsets(rk, part.topic, part.partition, &low, &high,
                                                     kRequestTimeoutMs),
                    fmt::format("source.kafka: resolving start '{}' of {}[{}]",
                                NameOf(options_.start), part.topic, part.partition)));
    part.offset = part.offset == RD_KAFKA_OFFSET_BEGINNING ? low : high;
  }

  CTRJOIN_RETURN_IF_ERROR(
      KafkaStatus(rd_kafka_assign(rk, parts.get()), "source.kafka: assigning partitions"));
  AlignAssigned(parts.get());
  for (int i = 0; i < parts->cnt; ++i) {
    const PartitionId id{*StreamOf(parts->elems[i].topic), parts->elems[i].partition};
    assigned_.push_back(id);
    start_offsets_[id] = parts->elems[i].offset;
  }
  spdlog::info("source.kafka: assigned {} partitions of {} and {}", parts->cnt,
               options_.impressions_topic, options_.clicks_topic);

  if (!options_.stop_at_end) return Status::Ok();
  for (int i = 0; i < parts->cnt; ++i) CTRJOIN_RETURN_IF_ERROR(TrackEnd(parts->elems[i]));
  PublishProgress();
  return Status::Ok();
}

Status KafkaSource::Impl::Seek(const SourcePositions& positions) {
  if (options_.mode != KafkaMode::kAssign) {
    return Status::InvalidArgument(
        "source.kafka.mode: resuming from a checkpoint needs mode 'assign'");
  }
  KafkaPartitionList parts(rd_kafka_topic_partition_list_new(0));
  for (auto& [id, offset] : start_offsets_) {
    if (auto it = positions.find(id); it != positions.end()) offset = it->second;
    rd_kafka_topic_partition_list_add(parts.get(), TopicOf(id.stream).c_str(), id.partition)
        ->offset = offset;
  }
  ResetAlignment();
  CTRJOIN_RETURN_IF_ERROR(
      KafkaStatus(rd_kafka_assign(consumer_.get(), parts.get()), "source.kafka: seeking"));
  AlignAssigned(parts.get());
  for (const auto& [id, offset] : positions) {
    if (!start_offsets_.contains(id)) continue;
    if (auto e = ends_.find(id); e != ends_.end()) e->second.position = offset;
    Reached(id, offset);
  }
  if (options_.stop_at_end) PublishProgress();
  return Status::Ok();
}

namespace {
constexpr std::string_view kEpochTag = "ctrjoin-epoch=";
constexpr std::string_view kInstanceTag = " instance=";
}  // namespace

std::string CommitTag::Format() const {
  return instance.empty() ? fmt::format("{}{}", kEpochTag, epoch)
                          : fmt::format("{}{}{}{}", kEpochTag, epoch, kInstanceTag, instance);
}

std::optional<CommitTag> CommitTag::Parse(std::string_view metadata) {
  if (!metadata.starts_with(kEpochTag)) return std::nullopt;
  metadata.remove_prefix(kEpochTag.size());
  CommitTag tag;
  const auto [end, ec] =
      std::from_chars(metadata.data(), metadata.data() + metadata.size(), tag.epoch);
  if (ec != std::errc()) return std::nullopt;
  metadata.remove_prefix(static_cast<size_t>(end - metadata.data()));
  if (metadata.starts_with(kInstanceTag)) tag.instance = metadata.substr(kInstanceTag.size());
  return tag;
}

Result<uint64_t> KafkaSource::Impl::CommittedEpoch() {
  KafkaPartitionList parts(rd_kafka_topic_partition_list_new(0));
  for (const auto& [id, offset] : start_offsets_) {
    rd_kafka_topic_partition_list_add(parts.get(), TopicOf(id.stream).c_str(), id.partition);
  }
  // Mode group: each process commits its own tasks' offsets with its own
  // epochs; the newest tells a process where to number its epochs from.
  const bool group = options_.mode == KafkaMode::kGroup;
  for (int32_t p = 0; group && p < options_.co_partitions; ++p) {
    for (StreamKind stream : {StreamKind::kImpression, StreamKind::kClick}) {
      rd_kafka_topic_partition_list_add(parts.get(), TopicOf(stream).c_str(), p);
    }
  }
  CTRJOIN_RETURN_IF_ERROR(FetchStableCommitted(consumer_.get(), parts.get(), options_.group_id,
                                               options_.stop_requested));
  uint64_t epoch = 0;
  for (int i = 0; i < parts->cnt; ++i) {
    const rd_kafka_topic_partition_t& p = parts->elems[i];
    const std::optional<CommitTag> tag =
        CommitTag::Parse(std::string_view(static_cast<const char*>(p.metadata), p.metadata_size));
    if (p.offset < 0 || !tag.has_value()) continue;
    const uint64_t e = tag->epoch;
    if (group) {
      epoch = std::max(epoch, e);
      continue;
    }
    if (epoch != 0 && e != epoch) {
      return Status::Corruption(fmt::format(
          "source.kafka: group '{}' has offsets committed by epochs {} and {}; they are "
          "committed together, so this group was also written by something else",
          options_.group_id, epoch, e));
    }
    epoch = e;
  }
  return epoch;
}

Status KafkaSource::Impl::TrackEnd(const rd_kafka_topic_partition_t& part) {
  int64_t low = 0;
  int64_t high = 0;
  CTRJOIN_RETURN_IF_ERROR(
      KafkaStatus(rd_kafka_query_watermark_offsets(consumer_.get(), part.topic, part.partition,
                                                   &low, &high, kRequestTimeoutMs),
                  fmt::format("source.kafka: end offset of {}[{}]", part.topic, part.partition)));
  const int64_t start = part.offset >= 0                           ? part.offset
                        : part.offset == RD_KAFKA_OFFSET_BEGINNING ? low
                                                                   : high;
  const PartitionId id{*StreamOf(part.topic), part.partition};
  if (auto end = options_.end_offsets.find(id); end != options_.end_offsets.end()) {
    if (end->second > high) {
      return Status::InvalidArgument(
          fmt::format("replay: end offset {} of {}[{}] is beyond the end of the partition ({})",
                      end->second, part.topic, part.partition, high));
    }
    high = end->second;
  }
  ends_[id] = End{start, high, start, false};
  ++unfinished_;
  Reached(id, start);
  return Status::Ok();
}

void KafkaSource::Impl::OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                                    const rd_kafka_topic_partition_list_t* parts) {
  // Eager protocol: an assignment replaces the previous one, a revocation
  // takes every partition back. Anything else is an error: drop everything.
  const bool assign = err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
  if (!assign && err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS && rebalance_error_.ok()) {
    rebalance_error_ = KafkaStatus(err, "source.kafka: rebalance");
  }
  spdlog::info("source.kafka: {} {} partitions: {}", assign ? "assigned" : "revoked", parts->cnt,
               DescribePartitions(parts));
  ResetAlignment();
  KafkaPartitionList copy(rd_kafka_topic_partition_list_copy(parts));
  if (!assign) {
    // Where each one was, should it come back.
    rd_kafka_position(rk, copy.get());
    for (int i = 0; i < copy->cnt; ++i) {
      std::optional<StreamKind> stream = StreamOf(copy->elems[i].topic);
      if (!stream) continue;
      revoked_positions_[{*stream, copy->elems[i].partition}] = copy->elems[i].offset;
      if (options_.commit_on_revoke) revoking_.push_back({*stream, copy->elems[i].partition});
    }
    if (options_.commit_on_revoke && !closing_ && rd_kafka_assignment_lost(rk) == 0 &&
        copy->cnt > 0) {
      // Given up at ReleaseRevoked: librdkafka's rejoin waits for that
      // call, so the group moves these partitions only after their epoch
      // committed (with this generation, which is still the group's).
      release_due_ = true;
      rebalanced_ = true;
      return;
    }
    if (options_.commit_on_revoke && !closing_ && rd_kafka_assignment_lost(rk) != 0 &&
        rebalance_error_.ok()) {
      rebalance_error_ = Status::Fenced(
          "source.kafka: the group took this process's partitions away (it missed the session "
          "timeout, or was paused past it); what it read since its last commit is abandoned, "
          "and a restart rejoins");
    }
    revoking_.clear();
    between_assignments_ = true;
  } else {
    between_assignments_ = false;
    std::map<PartitionId, int64_t> gone = std::exchange(revoked_positions_, {});
    for (int i = 0; i < copy->cnt; ++i) {
      rd_kafka_topic_partition_t& part = copy->elems[i];
      std::optional<StreamKind> stream = StreamOf(part.topic);
      if (!stream) continue;
      auto back = gone.find({*stream, part.partition});
      if (back == gone.end()) {
        assigned_.push_back({*stream, part.partition});
        continue;
      }
      if (back->second >= 0) part.offset = back->second;
      gone.erase(back);
    }
    for (const auto& [id, position] : gone) revoked_.push_back(id);
    rebalanced_ = true;
  }
  Status applied = KafkaStatus(rd_kafka_assign(rk, assign ? copy.get() : nullptr),
                               "source.kafka: applying a rebalance");
  if (!applied.ok() && rebalance_error_.ok()) rebalance_error_ = applied;
  if (assign && applied.ok()) AlignAssigned(copy.get());
}

// "impressions [0, 2], clicks [0, 2]": the partitions of each topic, sorted.
std::string KafkaSource::Impl::DescribePartitions(const rd_kafka_topic_partition_list_t* parts) {
  std::map<std::string, std::vector<int32_t>> by_topic;
  for (int i = 0; i < parts->cnt; ++i) {
    by_topic[parts->elems[i].topic].push_back(parts->elems[i].partition);
  }
  std::string text;
  for (auto& [topic, ids] : by_topic) {
    std::sort(ids.begin(), ids.end());
    if (!text.empty()) text += ", ";
    text += fmt::format("{} [{}]", topic, fmt::join(ids, ", "));
  }
  return text.empty() ? "none" : text;
}

KafkaPartitionList KafkaSource::Impl::ListOf(const std::vector<PartitionId>& ids) const {
  KafkaPartitionList parts(rd_kafka_topic_partition_list_new(static_cast<int>(ids.size())));
  for (const PartitionId& id : ids) {
    rd_kafka_topic_partition_list_add(parts.get(), TopicOf(id.stream).c_str(), id.partition);
  }
  return parts;
}

Status KafkaSource::Impl::ReleaseRevoked() {
  if (!std::exchange(release_due_, false)) return Status::Ok();
  between_assignments_ = true;
  spdlog::info("source.kafka: giving up the revoked partitions; rejoining the group");
  return KafkaStatus(rd_kafka_assign(consumer_.get(), nullptr),
                     "source.kafka: giving up revoked partitions");
}

Result<SourceBatch> KafkaSource::Impl::Next(size_t max_records) {
  SourceBatch batch;
  if (release_due_) {
    return Status::Internal("source.kafka: read again before the revoked partitions were released",
                            Effect::kNoEffect);
  }
  const Clock::time_point deadline =
      Clock::now() + std::chrono::milliseconds(options_.poll_timeout_ms);
  // Wait up to the poll timeout for the first record, then take only what is
  // already fetched: a batch never waits for more data once it has some.
  while (!AllFinished() && batch.records.size() < max_records) {
    int wait_ms = batch.records.empty() ? RemainingMs(deadline) : 0;
    // With partitions paused, wait no longer than the next alignment: the
    // slowest may be among them.
    if (alignment_ && alignment_->paused() > 0)
      wait_ms = std::min(wait_ms, RemainingMs(next_align_));
    KafkaMessage msg(rd_kafka_consumer_poll(consumer_.get(), wait_ms));
    CTRJOIN_RETURN_IF_ERROR(rebalance_error_);
    if (msg) CTRJOIN_RETURN_IF_ERROR(Handle(*msg, batch));
    if (std::exchange(rebalanced_, false)) break;
    if (!msg && !batch.records.empty()) break;
    if (Clock::now() >= deadline) break;
  }
  if (options_.stop_at_end) PublishProgress();
  Align();
  batch.assigned = std::exchange(assigned_, {});
  batch.revoked = std::exchange(revoked_, {});
  batch.finished = std::exchange(finished_, {});
  batch.end_of_input = AllFinished();
  batch.revoking = std::exchange(revoking_, {});
  batch.suspended = between_assignments_ && batch.records.empty();
  // A partition paused for reading ahead has records: never idle.
  if (alignment_) {
    for (const PartitionId& id : alignment_->PausedIds())
      batch.pending.emplace_back(id, EventTime::Min());
  }
  return batch;
}

void KafkaSource::Impl::OnError(rd_kafka_resp_err_t err, const char* reason) {
  Status status = KafkaStatus(err, "source.kafka", reason != nullptr ? reason : "");
  if (status.code() == StatusCode::kUnavailable || status.code() == StatusCode::kTimedOut) {
    brokers_.Lost(status);  // logs the first of an outage; librdkafka retries
    return;
  }
  // A fatal error also ends the next poll (Handle); others are librdkafka's
  // to retry, and worth a line.
  spdlog::warn("{}", status.message());
}

Status KafkaSource::Impl::Handle(const rd_kafka_message_t& msg, SourceBatch& batch) {
  const char* topic = msg.rkt != nullptr ? rd_kafka_topic_name(msg.rkt) : nullptr;
  // Not a conditional expression: GCC 12 under -fsanitize=thread then
  // warns (wrongly) that the optional may be used uninitialised.
  std::optional<StreamKind> stream;
  if (topic != nullptr) stream = StreamOf(topic);
  if (msg.err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
    brokers_.Reached();
    if (stream) Reached({*stream, msg.partition}, msg.offset);
    return Status::Ok();
  }
  if (msg.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    const std::string context = topic != nullptr
                                    ? fmt::format("source.kafka: {}[{}]", topic, msg.partition)
                                    : std::string("source.kafka");
    if (msg.err == RD_KAFKA_RESP_ERR__FATAL) return KafkaFatalStatus(consumer_.get(), context);
    Status status = KafkaStatus(msg.err, context, rd_kafka_message_errstr(&msg));
    // Connection trouble: librdkafka reconnects and retries by itself.
    if (status.code() == StatusCode::kUnavailable || status.code() == StatusCode::kTimedOut) {
      brokers_.Lost(status);
      return Status::Ok();
    }
    return status;
  }
  if (!stream) {
    return Status::Internal(fmt::format("source.kafka: a record from unexpected topic '{}'",
                                        topic != nullptr ? topic : "(none)"));
  }
  brokers_.Reached();
  const PartitionId id{*stream, msg.partition};
  // Written after start-up: beyond the bounded run.
  if (PastEnd(id, msg.offset)) {
    Reached(id, msg.offset);
    return Status::Ok();
  }
  batch.records.push_back(
      RawRecord{SourcePosition{*stream, msg.partition, Offset{msg.offset}},
                msg.payload != nullptr ? std::string(static_cast<const char*>(msg.payload), msg.len)
                                       : std::string()});
  if (alignment_ &&
      alignment_->Read(id, rd_kafka_message_timestamp(&msg, nullptr), msg.offset + 1, SteadyMs())) {
    SetPaused({id}, true);  // what librdkafka fetched beyond this record is dropped
    paused_partitions_.store(alignment_->paused(), std::memory_order_relaxed);
  }
  // After the alignment: a partition this record finishes is forgotten.
  Reached(id, msg.offset + 1);
  return Status::Ok();
}

bool KafkaSource::Impl::PastEnd(PartitionId id, int64_t offset) const {
  auto it = ends_.find(id);
  return it != ends_.end() && offset >= it->second.offset;
}

// position is the next offset the partition would deliver. A finished
// partition is paused: nothing it could still deliver belongs to this run.
void KafkaSource::Impl::Reached(PartitionId id, int64_t position) {
  auto it = ends_.find(id);
  if (it == ends_.end() || it->second.reached) return;
  it->second.position = std::max(it->second.position, position);
  if (position < it->second.offset) return;
  it->second.reached = true;
  it->second.position = it->second.offset;
  --unfinished_;
  finished_.push_back(id);
  if (alignment_) alignment_->Forget(id);
  SetPaused({id}, true);
}

void KafkaSource::Impl::SetPaused(const std::vector<PartitionId>& ids, bool pause) {
  if (ids.empty()) return;
  KafkaPartitionList parts = ListOf(ids);
  rd_kafka_resp_err_t err = pause ? rd_kafka_pause_partitions(consumer_.get(), parts.get())
                                  : rd_kafka_resume_partitions(consumer_.get(), parts.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    spdlog::warn("{}",
                 KafkaStatus(err, fmt::format("source.kafka: {} {}", pause ? "pausing" : "resuming",
                                              DescribePartitions(parts.get())))
                     .message());
  }
}

void KafkaSource::Impl::Align() {
  if (!alignment_) return;
  const Clock::time_point now = Clock::now();
  if (now < next_align_) return;
  next_align_ = now + kAlignInterval;
  ReadAlignment::Change change = alignment_->Update(SteadyMs());
  if (!change.pause.empty()) {
    spdlog::debug("source.kafka: pausing {}: read more than {} ms ahead of the slowest partition",
                  DescribePartitions(ListOf(change.pause).get()), options_.max_read_ahead_ms);
  }
  if (!change.resume.empty())
    spdlog::debug("source.kafka: resuming {}", DescribePartitions(ListOf(change.resume).get()));
  SetPaused(change.pause, true);
  SetPaused(change.resume, false);
  paused_partitions_.store(alignment_->paused(), std::memory_order_relaxed);
}

int64_t KafkaSource::Impl::EndOf(PartitionId id) const {
  int64_t low = 0;
  int64_t high = -1;
  if (rd_kafka_get_watermark_offsets(consumer_.get(), TopicOf(id.stream).c_str(), id.partition,
                                     &low, &high) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    high = -1;
  }
  if (auto end = ends_.find(id); end != ends_.end()) {
    high = high < 0 ? end->second.offset : std::min(high, end->second.offset);
  }
  return high;
}

void KafkaSource::Impl::AlignAssigned(const rd_kafka_topic_partition_list_t* parts) {
  if (!alignment_) return;
  for (int i = 0; i < parts->cnt; ++i) {
    const std::optional<StreamKind> stream = StreamOf(parts->elems[i].topic);
    if (!stream) continue;
    const PartitionId id{*stream, parts->elems[i].partition};
    if (auto end = ends_.find(id); end != ends_.end() && end->second.reached) continue;
    alignment_->Assigned(id);
  }
}

void KafkaSource::Impl::ResetAlignment() {
  if (!alignment_) return;
  // Resumed before the next assignment: librdkafka keeps a partition's
  // pause across an unassign, and a resumed partition at a new position
  // simply reads from there.
  SetPaused(alignment_->PausedIds(), false);
  alignment_->Clear();
  paused_partitions_.store(0, std::memory_order_relaxed);
}

void KafkaSource::Impl::PublishProgress() {
  std::vector<KafkaSource::PartitionProgress> snapshot;
  snapshot.reserve(ends_.size());
  for (const auto& [id, e] : ends_) snapshot.push_back({id, e.start, e.offset, e.position});
  std::lock_guard<std::mutex> lock(progress_mu_);
  progress_ = std::move(snapshot);
}

std::optional<StreamKind> KafkaSource::Impl::StreamOf(const char* topic) const {
  if (options_.impressions_topic == topic) return StreamKind::kImpression;
  if (options_.clicks_topic == topic) return StreamKind::kClick;
  return std::nullopt;
}

const std::string& KafkaSource::Impl::TopicOf(StreamKind stream) const {
  return stream == StreamKind::kImpression ? options_.impressions_topic : options_.clicks_topic;
}

Result<std::unique_ptr<KafkaSource>> KafkaSource::Open(const KafkaSourceOptions& options) {
  CTRJOIN_RETURN_IF_ERROR(options.Validate());
  auto impl = std::make_unique<Impl>(options);
  CTRJOIN_RETURN_IF_ERROR(impl->Start());
  return std::unique_ptr<KafkaSource>(new KafkaSource(std::move(impl)));
}

KafkaSource::KafkaSource(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

KafkaSource::~KafkaSource() = default;

Result<SourceBatch> KafkaSource::Next(size_t max_records) { return impl_->Next(max_records); }

Status KafkaSource::Seek(const SourcePositions& positions) { return impl_->Seek(positions); }

SourcePositions KafkaSource::StartPositions() const {
  SourcePositions positions;
  for (const auto& [id, offset] : impl_->start_offsets_) {
    if (offset >= 0) positions[id] = offset;
  }
  return positions;
}

Result<uint64_t> KafkaSource::CommittedEpoch() { return impl_->CommittedEpoch(); }

Status KafkaSource::ReleaseRevoked() { return impl_->ReleaseRevoked(); }

KafkaPartitionList KafkaSource::OffsetsFor(const SourcePositions& positions, uint64_t epoch) const {
  KafkaPartitionList parts(rd_kafka_topic_partition_list_new(0));
  const std::string meta = CommitTag{epoch, impl_->options_.instance}.Format();
  // Mode group: the positions are those of the partitions this process held
  // at the barrier (the pipeline forgets a partition once it is given up).
  const bool group = impl_->options_.mode == KafkaMode::kGroup;
  for (const auto& [id, offset] : positions) {
    if (!group && !impl_->start_offsets_.contains(id)) continue;
    rd_kafka_topic_partition_t* p = rd_kafka_topic_partition_list_add(
        parts.get(), impl_->TopicOf(id.stream).c_str(), id.partition);
    p->offset = offset;
    p->metadata = std::malloc(meta.size());  // freed with the list
    std::memcpy(p->metadata, meta.data(), meta.size());
    p->metadata_size = meta.size();
  }
  return parts;
}

int32_t KafkaSource::co_partitions() const { return impl_->options_.co_partitions; }

rd_kafka_consumer_group_metadata_t* KafkaSource::NewGroupMetadata() const {
  return rd_kafka_consumer_group_metadata(impl_->consumer_.get());
}

std::vector<KafkaSource::PartitionProgress> KafkaSource::Progress() const {
  std::lock_guard<std::mutex> lock(impl_->progress_mu_);
  return impl_->progress_;
}

int64_t KafkaSource::PausedPartitions() {
  return impl_->paused_partitions_.load(std::memory_order_relaxed);
}

int64_t KafkaSource::UnreachableSinceMs() {
  if (impl_->brokers_.reachable()) return 0;
  const auto now = Clock::now();
  if (now < impl_->next_probe_) return impl_->brokers_.down_since_ms();
  impl_->next_probe_ = now + kProbeInterval;
  // Idle topics bring no record to show that the brokers are back: ask them
  // for the impressions topic's metadata.
  KafkaTopic rkt(rd_kafka_topic_new(impl_->consumer_.get(),
                                    impl_->options_.impressions_topic.c_str(), nullptr));
  const rd_kafka_metadata_t* raw = nullptr;
  const rd_kafka_resp_err_t err =
      rkt ? rd_kafka_metadata(impl_->consumer_.get(), 0, rkt.get(), &raw, kProbeTimeoutMs)
          : rd_kafka_last_error();
  KafkaMetadata metadata(raw);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    impl_->brokers_.Reached();
  } else {
    spdlog::debug("source.kafka: brokers still unreachable: {}", rd_kafka_err2str(err));
  }
  return impl_->brokers_.down_since_ms();
}

std::vector<PartitionLag> KafkaSource::ConsumerLag() {
  std::vector<PartitionLag> lags;
  rd_kafka_topic_partition_list_t* raw = nullptr;
  if (rd_kafka_assignment(impl_->consumer_.get(), &raw) != RD_KAFKA_RESP_ERR_NO_ERROR) return lags;
  KafkaPartitionList parts(raw);
  if (rd_kafka_position(impl_->consumer_.get(), parts.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return lags;
  }
  for (int i = 0; i < parts->cnt; ++i) {
    const rd_kafka_topic_partition_t& p = parts->elems[i];
    const std::optional<StreamKind> stream = impl_->StreamOf(p.topic);
    int64_t low = 0;
    int64_t high = 0;
    // Known once a fetch for the partition came back, and a position once a
    // record of it was read.
    if (!stream || p.offset < 0 ||
        rd_kafka_get_watermark_offsets(impl_->consumer_.get(), p.topic, p.partition, &low, &high) !=
            RD_KAFKA_RESP_ERR_NO_ERROR ||
        high < 0) {
      continue;
    }
    lags.push_back({{*stream, p.partition}, std::max<int64_t>(high - p.offset, 0)});
  }
  return lags;
}

std::string KafkaSource::Describe() const {
  const KafkaSourceOptions& o = impl_->options_;
  return fmt::format("kafka {} {}+{} ({})", o.brokers, o.impressions_topic, o.clicks_topic,
                     NameOf(o.mode));
}

}  // namespace ctrjoin
