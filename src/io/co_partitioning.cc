#include "src/io/co_partitioning.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "src/core/clock.h"
#include "src/io/kafka_client.h"

namespace ctrjoin {

namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr std::string_view kWhatToFix =
    "a task is partition p of both topics, so produce both with key = impression_id under "
    "Kafka's default partitioner (murmur2) and the same partition count, or use "
    "source.kafka.mode 'assign'";

int LeftMs(SteadyClock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
  return static_cast<int>(std::max<int64_t>(1, left.count()));
}

struct Misplaced {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  std::string impression_id;
  int32_t expected = 0;
};

// Reads the sample and checks it. Owns nothing beyond the call.
class SampleReader {
 public:
  SampleReader(rd_kafka_t* rk, const KafkaSourceOptions& source, const SchemaOptions& schema,
               int32_t partitions)
      : rk_(rk), source_(source), parser_(schema), partitions_(partitions) {}

  // Assigns every non-empty partition of both topics from its newest
  // `per_partition` records.
  Status Assign(const std::vector<std::string>& topics, int per_partition,
                SteadyClock::time_point deadline) {
    KafkaPartitionList parts(rd_kafka_topic_partition_list_new(0));
    for (const std::string& topic : topics) {
      for (int32_t p = 0; p < partitions_; ++p) {
        int64_t low = 0;
        int64_t high = 0;
        CTRJOIN_RETURN_IF_ERROR(KafkaStatus(
            rd_kafka_query_watermark_offsets(rk_, topic.c_str(), p, &low, &high, LeftMs(deadline)),
            fmt::format("source.kafka: end offset of {}[{}]", topic, p)));
        if (high <= low) continue;
        rd_kafka_topic_partition_list_add(parts.get(), topic.c_str(), p)->offset =
            std::max(low, high - per_partition);
        unread_.emplace(topic, p);
      }
    }
    if (unread_.empty()) return Status::Ok();
    return KafkaStatus(rd_kafka_assign(rk_, parts.get()),
                       "source.kafka: assigning the co-partitioning sample");
  }

  // Reads until every assigned partition reached its end or the deadline.
  void Read(SteadyClock::time_point deadline) {
    while (!unread_.empty() && SteadyClock::now() < deadline) {
      KafkaMessage msg(rd_kafka_consumer_poll(rk_, std::min(100, LeftMs(deadline))));
      if (!msg) continue;
      const std::string topic = msg->rkt != nullptr ? rd_kafka_topic_name(msg->rkt) : "";
      if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        unread_.erase({topic, msg->partition});
        continue;
      }
      if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        // Retried by librdkafka until the deadline; said once.
        if (!error_logged_) {
          spdlog::warn("source.kafka: reading the co-partitioning sample: {}",
                       KafkaStatus(msg->err, topic).ToString());
          error_logged_ = true;
        }
        continue;
      }
      Check(topic, *msg);
    }
  }

  size_t unread() const { return unread_.size(); }
  uint64_t checked() const { return checked_; }
  uint64_t misplaced() const { return misplaced_; }
  const std::optional<Misplaced>& first_misplaced() const { return first_; }

 private:
  void Check(const std::string& topic, const rd_kafka_message_t& msg) {
    const StreamKind stream =
        topic == source_.impressions_topic ? StreamKind::kImpression : StreamKind::kClick;
    const std::string_view payload(static_cast<const char*>(msg.payload), msg.len);
    const ParseResult parsed = parser_.Parse(stream, payload, WallClockMs());
    const std::string* id = ImpressionIdOf(parsed);
    if (id == nullptr) return;  // the pipeline dead-letters it
    const int32_t expected = KafkaDefaultPartition(*id, partitions_);
    if (expected == msg.partition) {
      ++checked_;
      return;
    }
    ++misplaced_;
    if (!first_) first_ = Misplaced{topic, msg.partition, msg.offset, *id, expected};
  }

  rd_kafka_t* const rk_;
  const KafkaSourceOptions& source_;
  EventParser parser_;
  const int32_t partitions_;
  std::set<std::pair<std::string, int32_t>> unread_;
  uint64_t checked_ = 0;
  uint64_t misplaced_ = 0;
  std::optional<Misplaced> first_;
  bool error_logged_ = false;
};

}  // namespace

Result<CoPartitionReport> CheckCoPartitioned(const KafkaSourceOptions& source,
                                             const SchemaOptions& schema,
                                             CoPartitionCheckOptions options) {
  std::map<std::string, std::string> properties = source.properties;
  properties["bootstrap.servers"] = source.brokers;
  // librdkafka's consumer needs a group even to assign; this one is never
  // joined and commits nothing.
  properties["group.id"] = source.group_id + ".co-partitioning-check";
  properties["isolation.level"] = "read_committed";
  properties["enable.auto.commit"] = "false";
  properties["enable.partition.eof"] = "true";
  Result<KafkaConf> conf = MakeKafkaConf(properties);
  if (!conf.ok()) return conf.status().WithContext("source.kafka.properties");
  Result<KafkaHandle> consumer = MakeKafkaHandle(RD_KAFKA_CONSUMER, std::move(conf).value());
  if (!consumer.ok()) return consumer.status().WithContext("source.kafka");
  rd_kafka_t* rk = consumer->get();
  const SteadyClock::time_point deadline =
      SteadyClock::now() + std::chrono::milliseconds(options.wait_ms);

  const std::vector<std::string> topics = {source.impressions_topic, source.clicks_topic};
  std::vector<size_t> counts;
  for (const std::string& topic : topics) {
    Result<std::vector<int32_t>> ids = KafkaTopicPartitions(rk, topic, LeftMs(deadline));
    if (!ids.ok()) return ids.status();
    counts.push_back(ids->size());
  }
  if (counts[0] != counts[1]) {
    return Status::InvalidArgument(
        fmt::format("source.kafka.mode: 'group' needs co-partitioned inputs, but topic '{}' has {} "
                    "partitions and '{}' has {}; {}",
                    topics[0], counts[0], topics[1], counts[1], kWhatToFix));
  }
  CoPartitionReport report;
  report.partitions = static_cast<int32_t>(counts[0]);
  spdlog::info(
      "source.kafka: checking that {} and {} are co-partitioned: {} partitions each; reading "
      "the newest {} records of every partition (at most {} ms)",
      topics[0], topics[1], report.partitions, options.sample_per_partition, options.wait_ms);

  // The sample has its own wait, however long the topics took to appear.
  const SteadyClock::time_point sample_deadline =
      SteadyClock::now() + std::chrono::milliseconds(options.wait_ms);
  SampleReader reader(rk, source, schema, report.partitions);
  CTRJOIN_RETURN_IF_ERROR(reader.Assign(topics, options.sample_per_partition, sample_deadline));
  reader.Read(sample_deadline);
  rd_kafka_consumer_close(rk);
  report.checked = reader.checked();

  if (const std::optional<Misplaced>& m = reader.first_misplaced()) {
    return Status::InvalidArgument(fmt::format(
        "source.kafka.mode: 'group' needs co-partitioned inputs, but {}[{}] offset {} holds "
        "impression_id '{}', which Kafka's default partitioner puts in partition {} of {} "
        "({} of the {} sampled records are on another partition than their impression id's); "
        "{}",
        m->topic, m->partition, m->offset, m->impression_id, m->expected, report.partitions,
        reader.misplaced(), reader.misplaced() + reader.checked(), kWhatToFix));
  }
  if (reader.unread() > 0) {
    report.complete = false;
    spdlog::warn(
        "source.kafka: the co-partitioning sample of {} partitions did not arrive within {} ms; "
        "{} records were checked, and the pipeline checks every record it reads",
        reader.unread(), options.wait_ms, report.checked);
  } else {
    spdlog::info("source.kafka: {} and {} are co-partitioned ({} sampled records checked)",
                 topics[0], topics[1], report.checked);
  }
  return report;
}

}  // namespace ctrjoin
