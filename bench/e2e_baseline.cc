#include "bench/e2e_baseline.h"

#include <fmt/format.h>

#include <functional>
#include <limits>
#include <optional>
#include <queue>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "sinks/kafka_producer.h"
#include "sinks/sample_format.h"
#include "src/core/clock.h"
#include "src/core/hash.h"
#include "src/io/kafka_client.h"
#include "src/pipeline/event_parser.h"

namespace ctrjoin::bench {

namespace {

constexpr int kSendTimeoutMs = 30'000;
// As KafkaSource gets it in every broker configuration (e2e_bench.cc).
constexpr const char* kQueuedMinMessages = "1000000";
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

// The hand-written join: one map entry per impression id, one timer per
// window, a watermark over every input partition.
class HandJoin {
 public:
  // emit(sample, read_ns of the record that made it, whether the end of
  // the input made it).
  using Emit = std::function<Status(const Sample&, int64_t, bool)>;

  HandJoin(const BaselineOptions& options, int32_t partitions, Emit emit)
      : options_(options),
        partitions_(partitions),
        max_ts_(2 * static_cast<size_t>(partitions), kMin),
        finished_(2 * static_cast<size_t>(partitions), false),
        parser_(SchemaOptions{}),
        emit_(std::move(emit)) {}

  Status OnRecord(StreamKind stream, int32_t partition, std::string_view payload, int64_t read_ns) {
    if ((result_.events++ & 1023) == 0) now_ms_ = WallClockMs();
    ParseResult parsed = parser_.Parse(stream, payload, now_ms_);
    if (auto* imp = std::get_if<Impression>(&parsed)) {
      Observe(stream, partition, imp->ts.ms);
      CTRJOIN_RETURN_IF_ERROR(OnImpression(std::move(*imp), read_ns));
    } else if (auto* click = std::get_if<Click>(&parsed)) {
      Observe(stream, partition, click->ts.ms);
      CTRJOIN_RETURN_IF_ERROR(OnClick(*click, read_ns));
    } else {
      ++result_.dead_letters;
    }
    // With every partition finished the watermark is +inf: the end of the
    // input closes what is left.
    const int64_t watermark = Watermark();
    return Advance(watermark, read_ns, /*at_end=*/watermark == kMax);
  }

  void FinishPartition(StreamKind stream, int32_t partition) {
    finished_[Slot(stream, partition)] = true;
  }

  // The end of the input: every window closes.
  Status Finish() { return Advance(kMax, NowNs(), /*at_end=*/true); }

  BaselineResult& result() { return result_; }

 private:
  struct Entry {
    Impression impression;
    bool has_impression = false;
    bool labelled = false;
    std::vector<int64_t> held_clicks;  // clicks that came before the impression
  };

  size_t Slot(StreamKind stream, int32_t partition) const {
    return static_cast<size_t>(stream) * static_cast<size_t>(partitions_) +
           static_cast<size_t>(partition);
  }
  void Observe(StreamKind stream, int32_t partition, int64_t ts) {
    int64_t& m = max_ts_[Slot(stream, partition)];
    m = std::max(m, ts);
  }
  int64_t Watermark() {
    int64_t low = kMax;
    for (size_t i = 0; i < max_ts_.size(); ++i) {
      if (finished_[i]) continue;
      low = std::min(low, max_ts_[i] == kMin ? kMin : max_ts_[i] - options_.out_of_orderness_ms);
    }
    watermark_ = std::max(watermark_, low);
    return watermark_;
  }
  bool InWindow(int64_t imp_ts, int64_t click_ts) const {
    return click_ts >= imp_ts && click_ts <= imp_ts + options_.window_ms;
  }

  Status OnImpression(Impression imp, int64_t read_ns) {
    const int64_t ts = imp.ts.ms;
    if (ts + options_.window_ms < watermark_) return Status::Ok();  // too late
    auto [it, inserted] = state_.try_emplace(imp.impression_id);
    Entry& e = it->second;
    if (e.has_impression) return Status::Ok();  // a duplicate: the first wins
    e.has_impression = true;
    e.impression = std::move(imp);
    timers_.emplace(ts + options_.window_ms, it->first);
    for (int64_t click_ts : e.held_clicks) {
      if (!e.labelled && InWindow(ts, click_ts))
        CTRJOIN_RETURN_IF_ERROR(Label(e, click_ts, read_ns));
    }
    e.held_clicks.clear();
    return Status::Ok();
  }

  Status OnClick(const Click& click, int64_t read_ns) {
    auto it = state_.find(click.impression_id);
    if (it == state_.end()) {
      if (click.ts.ms < watermark_) return Status::Ok();  // an orphan
      it = state_.try_emplace(click.impression_id).first;
      it->second.held_clicks.push_back(click.ts.ms);
      timers_.emplace(click.ts.ms, it->first);
      return Status::Ok();
    }
    Entry& e = it->second;
    if (!e.has_impression) {
      e.held_clicks.push_back(click.ts.ms);
      return Status::Ok();
    }
    if (e.labelled || !InWindow(e.impression.ts.ms, click.ts.ms)) return Status::Ok();
    return Label(e, click.ts.ms, read_ns);
  }

  Status Label(Entry& e, int64_t click_ts, int64_t read_ns) {
    e.labelled = true;
    ++result_.positives;
    return Emit1(e, 1, EventTime{click_ts}, read_ns, false);
  }

  Status Emit1(Entry& e, int label, EventTime click_ts, int64_t read_ns, bool at_end) {
    Sample s;
    s.sample_id = ImpressionKey(e.impression.impression_id);
    s.label = label;
    s.click_ts = click_ts;
    s.impression = std::move(e.impression);
    ++result_.samples;
    Status st = emit_(s, read_ns, at_end);
    e.impression = std::move(s.impression);  // keeps the id for the timer's erase
    return st;
  }

  Status Advance(int64_t watermark, int64_t read_ns, bool at_end) {
    while (!timers_.empty() && timers_.top().first < watermark) {
      const auto [deadline, id] = timers_.top();
      timers_.pop();
      auto it = state_.find(id);
      if (it == state_.end()) continue;
      Entry& e = it->second;
      if (e.has_impression && deadline != e.impression.ts.ms + options_.window_ms) continue;
      if (e.has_impression && !e.labelled) {
        ++result_.negatives;
        CTRJOIN_RETURN_IF_ERROR(Emit1(e, 0, EventTime::Min(), read_ns, at_end));
      }
      state_.erase(it);
    }
    return Status::Ok();
  }

  const BaselineOptions options_;
  const int32_t partitions_;
  std::vector<int64_t> max_ts_;  // per partition (impressions, then clicks)
  std::vector<bool> finished_;
  int64_t watermark_ = kMin;
  int64_t now_ms_ = 0;
  EventParser parser_;
  std::unordered_map<std::string, Entry> state_;
  using Timer = std::pair<int64_t, std::string>;  // (deadline, impression id)
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers_;
  Emit emit_;
  BaselineResult result_;
};

void RecordLatency(BaselineResult& r, const Sample& s, int64_t read_ns, bool at_end) {
  if (at_end) {
    ++r.flushed_at_end;
    return;
  }
  const int64_t latency = NowNs() - read_ns;
  r.latency.Record(latency);
  if (s.label == 0) r.negative_delay.Record(latency);
}

// A consumer of every partition of the impressions and clicks topics, from
// the beginning to the end offsets as of its start.
class BoundedConsumer {
 public:
  static Result<std::unique_ptr<BoundedConsumer>> Open(const BaselineOptions& options) {
    Result<KafkaConf> conf = MakeKafkaConf({{"bootstrap.servers", options.brokers},
                                            {"group.id", options.group_id},
                                            {"isolation.level", "read_committed"},
                                            {"enable.auto.commit", "false"},
                                            {"auto.offset.reset", "earliest"},
                                            {"enable.partition.eof", "true"},
                                            {"queued.min.messages", kQueuedMinMessages}});
    if (!conf.ok()) return conf.status();
    Result<KafkaHandle> handle = MakeKafkaHandle(RD_KAFKA_CONSUMER, std::move(conf).value());
    if (!handle.ok()) return handle.status();
    std::unique_ptr<BoundedConsumer> c(new BoundedConsumer());
    c->handle_ = std::move(handle).value();
    rd_kafka_t* rk = c->handle_.get();
    rd_kafka_poll_set_consumer(rk);
    KafkaPartitionList parts(rd_kafka_topic_partition_list_new(16));
    for (const char* topic : {"impressions", "clicks"}) {
      const rd_kafka_metadata_t* raw = nullptr;
      KafkaTopic rkt(rd_kafka_topic_new(rk, topic, nullptr));
      CTRJOIN_RETURN_IF_ERROR(
          KafkaStatus(rd_kafka_metadata(rk, 0, rkt.get(), &raw, 10'000), "metadata"));
      KafkaMetadata md(raw);
      if (md->topic_cnt != 1) return Status::NotFound(fmt::format("topic {}", topic));
      for (int i = 0; i < md->topics[0].partition_cnt; ++i) {
        const int32_t p = md->topics[0].partitions[i].id;
        int64_t low = 0, high = 0;
        CTRJOIN_RETURN_IF_ERROR(KafkaStatus(
            rd_kafka_query_watermark_offsets(rk, topic, p, &low, &high, 10'000), "end offsets"));
        rd_kafka_topic_partition_list_add(parts.get(), topic, p)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
        const StreamKind stream =
            std::string_view(topic) == "impressions" ? StreamKind::kImpression : StreamKind::kClick;
        c->ends_.push_back(End{stream, p, high, high <= low});
        c->unfinished_ += high > low ? 1 : 0;
      }
    }
    CTRJOIN_RETURN_IF_ERROR(KafkaStatus(rd_kafka_assign(rk, parts.get()), "assign"));
    return c;
  }

  ~BoundedConsumer() {
    if (handle_) rd_kafka_consumer_close(handle_.get());
  }

  bool done() const { return unfinished_ == 0; }
  const std::vector<std::pair<StreamKind, int32_t>>& newly_finished() const { return finished_; }

  // The next record, or null (none within 100 ms, or a partition's end).
  // Partitions finished by this call are in newly_finished().
  Result<KafkaMessage> Poll() {
    finished_.clear();
    KafkaMessage msg(rd_kafka_consumer_poll(handle_.get(), 100));
    if (!msg) return KafkaMessage();
    if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      Reached(msg->rkt, msg->partition, msg->offset);
      return KafkaMessage();
    }
    if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return KafkaStatus(msg->err, "consume", rd_kafka_message_errstr(msg.get()));
    }
    Reached(msg->rkt, msg->partition, msg->offset + 1);
    return msg;
  }

  static StreamKind StreamOf(const rd_kafka_message_t& msg) {
    return std::string_view(rd_kafka_topic_name(msg.rkt)) == "impressions" ? StreamKind::kImpression
                                                                           : StreamKind::kClick;
  }

 private:
  struct End {
    StreamKind stream;
    int32_t partition;
    int64_t offset;
    bool reached;
  };
  BoundedConsumer() = default;
  void Reached(rd_kafka_topic_t* rkt, int32_t partition, int64_t position) {
    const StreamKind stream = std::string_view(rd_kafka_topic_name(rkt)) == "impressions"
                                  ? StreamKind::kImpression
                                  : StreamKind::kClick;
    for (End& e : ends_) {
      if (e.stream == stream && e.partition == partition && !e.reached && position >= e.offset) {
        e.reached = true;
        --unfinished_;
        finished_.emplace_back(stream, partition);
      }
    }
  }

  KafkaHandle handle_;
  std::vector<End> ends_;
  size_t unfinished_ = 0;
  std::vector<std::pair<StreamKind, int32_t>> finished_;
};

// The producer of ctrjoin's plain Kafka sink, with the same settings.
Result<std::unique_ptr<KafkaProducer>> OpenProducer(const BaselineOptions& options) {
  return KafkaProducer::Open({{"bootstrap.servers", options.brokers},
                              {"enable.idempotence", "true"},
                              {"partitioner", "murmur2_random"},
                              {"linger.ms", "5"}},
                             "baseline producer");
}

}  // namespace

Result<BaselineResult> RunHandWrittenFromMemory(const Trace& trace,
                                                const BaselineOptions& options) {
  std::string buffer;
  BaselineResult* result = nullptr;
  HandJoin join(options, trace.partitions(), [&](const Sample& s, int64_t read_ns, bool at_end) {
    buffer.clear();
    AppendSampleValue(SampleFormat::kJson, s, buffer);
    result->output_bytes += buffer.size();
    RecordLatency(*result, s, read_ns, at_end);
    return Status::Ok();
  });
  result = &join.result();
  Placement placement(trace.partitions());
  for (size_t i = 0; i < trace.size(); ++i) {
    const SourcePosition pos = placement.Next(trace.stream(i));
    CTRJOIN_RETURN_IF_ERROR(join.OnRecord(pos.stream, pos.partition, trace.payload(i), NowNs()));
  }
  CTRJOIN_RETURN_IF_ERROR(join.Finish());
  return std::move(join.result());
}

Result<BaselineResult> RunHandWrittenThroughBroker(const BaselineOptions& options) {
  auto consumer = BoundedConsumer::Open(options);
  if (!consumer.ok()) return consumer.status();
  auto producer = OpenProducer(options);
  if (!producer.ok()) return producer.status();
  KafkaProducer& out = **producer;
  std::string buffer;
  BaselineResult* result = nullptr;
  HandJoin join(options, options.partitions, [&](const Sample& s, int64_t read_ns, bool at_end) {
    buffer.clear();
    AppendSampleValue(SampleFormat::kJson, s, buffer);
    result->output_bytes += buffer.size();
    CTRJOIN_RETURN_IF_ERROR(
        out.Send(options.output_topic, s.impression.impression_id, buffer, kSendTimeoutMs));
    RecordLatency(*result, s, read_ns, at_end);
    return Status::Ok();
  });
  result = &join.result();
  while (!(*consumer)->done()) {
    Result<KafkaMessage> msg = (*consumer)->Poll();
    if (!msg.ok()) return msg.status();
    for (const auto& [stream, p] : (*consumer)->newly_finished()) join.FinishPartition(stream, p);
    if (!*msg) continue;
    const rd_kafka_message_t& m = **msg;
    CTRJOIN_RETURN_IF_ERROR(
        join.OnRecord(BoundedConsumer::StreamOf(m), m.partition,
                      std::string_view(static_cast<const char*>(m.payload), m.len), NowNs()));
  }
  CTRJOIN_RETURN_IF_ERROR(join.Finish());
  CTRJOIN_RETURN_IF_ERROR(out.Flush(kSendTimeoutMs * 4));
  return std::move(join.result());
}

Result<BaselineResult> RunPassthrough(const BaselineOptions& options) {
  auto consumer = BoundedConsumer::Open(options);
  if (!consumer.ok()) return consumer.status();
  auto producer = OpenProducer(options);
  if (!producer.ok()) return producer.status();
  BaselineResult result;
  while (!(*consumer)->done()) {
    Result<KafkaMessage> msg = (*consumer)->Poll();
    if (!msg.ok()) return msg.status();
    if (!*msg) continue;
    const int64_t read_ns = NowNs();
    const rd_kafka_message_t& m = **msg;
    const std::string_view value(static_cast<const char*>(m.payload), m.len);
    CTRJOIN_RETURN_IF_ERROR(
        (*producer)->Send(options.output_topic, std::nullopt, value, kSendTimeoutMs));
    ++result.events;
    ++result.samples;
    result.output_bytes += m.len;
    result.latency.Record(NowNs() - read_ns);
  }
  CTRJOIN_RETURN_IF_ERROR((*producer)->Flush(kSendTimeoutMs * 4));
  return result;
}

}  // namespace ctrjoin::bench
