#include "tests/support/kafka_test_util.h"

#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <set>

#include "tests/support/trace_oracle.h"

namespace ctrjoin::test_support {

Result<std::unique_ptr<MockKafkaCluster>> MockKafkaCluster::Start(
    const std::map<std::string, std::string>& properties) {
  Result<KafkaConf> conf = MakeKafkaConf(properties);
  if (!conf.ok()) return conf.status();
  Result<KafkaHandle> host = MakeKafkaHandle(RD_KAFKA_PRODUCER, std::move(conf).value());
  if (!host.ok()) return host.status();
  std::unique_ptr<MockKafkaCluster> cluster(new MockKafkaCluster());
  cluster->host_ = std::move(host).value();
  cluster->cluster_ = rd_kafka_mock_cluster_new(cluster->host_.get(), 1);
  if (cluster->cluster_ == nullptr) return Status::Internal("cannot create a mock cluster");
  cluster->bootstraps_ = rd_kafka_mock_cluster_bootstraps(cluster->cluster_);
  return cluster;
}

MockKafkaCluster::~MockKafkaCluster() {
  if (cluster_ != nullptr) rd_kafka_mock_cluster_destroy(cluster_);
}

Status MockKafkaCluster::CreateTopic(const std::string& topic, int partitions) {
  return KafkaStatus(rd_kafka_mock_topic_create(cluster_, topic.c_str(), partitions, 1),
                     "creating mock topic " + topic);
}

namespace {

// The "ts" field of a JSON line, or 0 (the producer's clock) without one.
int64_t EventTimeOf(const std::string& line) {
  const size_t at = line.find("\"ts\":");
  if (at == std::string::npos) return 0;
  const int64_t ts = std::strtoll(line.c_str() + at + 5, nullptr, 10);
  return ts > 0 ? ts : 0;
}

}  // namespace

Status ProduceLines(BulkProducer& producer, const std::string& topic, const std::string& path,
                    int partitions, bool event_time) {
  int i = 0;
  for (const std::string& line : ReadLines(path)) {
    CTRJOIN_RETURN_IF_ERROR(
        producer.Produce(topic, i++ % partitions, line, event_time ? EventTimeOf(line) : 0));
  }
  return producer.Flush(30'000).WithContext(fmt::format("producing {} to {}", path, topic));
}

Status ConsumeCommitted(const std::string& brokers, const std::string& topic,
                        const std::string& path) {
  auto conf = MakeKafkaConf({{"bootstrap.servers", brokers},
                             {"group.id", "ctrjoin-test-reader"},
                             {"isolation.level", "read_committed"},
                             {"enable.partition.eof", "true"},
                             {"enable.auto.commit", "false"}});
  if (!conf.ok()) return conf.status();
  auto consumer = MakeKafkaHandle(RD_KAFKA_CONSUMER, std::move(conf).value());
  if (!consumer.ok()) return consumer.status();
  rd_kafka_t* rk = consumer->get();
  rd_kafka_poll_set_consumer(rk);
  Result<std::vector<int32_t>> partitions = KafkaTopicPartitions(rk, topic, 10'000);
  if (!partitions.ok()) return partitions.status();
  KafkaPartitionList parts(rd_kafka_topic_partition_list_new(0));
  for (int32_t p : *partitions) {
    rd_kafka_topic_partition_list_add(parts.get(), topic.c_str(), p)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  }
  CTRJOIN_RETURN_IF_ERROR(KafkaStatus(rd_kafka_assign(rk, parts.get()), "assigning " + topic));
  std::ofstream out(path);
  std::set<int32_t> at_end;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (at_end.size() < partitions->size() && std::chrono::steady_clock::now() < deadline) {
    KafkaMessage msg(rd_kafka_consumer_poll(rk, 100));
    if (!msg) continue;
    if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      at_end.insert(msg->partition);
      continue;
    }
    CTRJOIN_RETURN_IF_ERROR(KafkaStatus(msg->err, "reading " + topic));
    at_end.erase(msg->partition);
    out << std::string_view(static_cast<const char*>(msg->payload), msg->len) << "\n";
  }
  rd_kafka_consumer_close(rk);
  if (at_end.size() < partitions->size()) {
    return Status::TimedOut(fmt::format("{} not read to its end within 60 s", topic));
  }
  return Status::Ok();
}

}  // namespace ctrjoin::test_support
