#include "tests/support/kafka_test_util.h"

#include <fmt/format.h>

#include "tests/support/trace_oracle.h"

namespace ctrjoin::testing {

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

Status ProduceLines(rd_kafka_t* producer, const std::string& topic, const std::string& path,
                    int partitions) {
  int i = 0;
  for (const std::string& line : ReadLines(path)) {
    rd_kafka_resp_err_t err;
    while ((err = rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic.c_str()),
                                    RD_KAFKA_V_PARTITION(i % partitions),
                                    RD_KAFKA_V_VALUE(const_cast<char*>(line.data()), line.size()),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)) ==
           RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_poll(producer, 100);  // let deliveries make room
    }
    ++i;
    CTRJOIN_RETURN_IF_ERROR(KafkaStatus(err, fmt::format("producing {} to {}", path, topic)));
  }
  return KafkaStatus(rd_kafka_flush(producer, 30'000), "flushing " + topic);
}

}  // namespace ctrjoin::testing
