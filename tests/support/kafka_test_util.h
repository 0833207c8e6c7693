#pragma once
// Test support for Kafka tests: librdkafka's in-process mock cluster, and
// producing a JSON-lines trace into topics. Used from the test thread.

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <map>
#include <memory>
#include <string>

#include "src/core/status.h"
#include "src/io/kafka_client.h"

namespace ctrjoin::test_support {

// A one-broker mock cluster and the handle that hosts it (librdkafka needs
// both; the cluster is destroyed first). Destroying one takes librdkafka
// about a second.
class MockKafkaCluster {
 public:
  // properties configure the hosting handle (e.g. {"log_level", "3"}).
  static Result<std::unique_ptr<MockKafkaCluster>> Start(
      const std::map<std::string, std::string>& properties = {});
  ~MockKafkaCluster();

  rd_kafka_mock_cluster_t* get() const { return cluster_; }
  const std::string& bootstraps() const { return bootstraps_; }
  Status CreateTopic(const std::string& topic, int partitions);

 private:
  MockKafkaCluster() = default;
  KafkaHandle host_;
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
  std::string bootstraps_;
};

// Produces every line of the file at path to topic, line i to partition
// i % partitions (so each partition keeps the file's order), and waits
// until all are delivered (an error if any was not).
// With event_time, each record's Kafka timestamp is the line's "ts" field
// (as a producer that stamps records with the event time does), so that
// offsets-for-times finds events by their time.
Status ProduceLines(BulkProducer& producer, const std::string& topic, const std::string& path,
                    int partitions, bool event_time = false);

// Reads every committed record of topic (read_committed, from the beginning
// of each partition to its end) into a JSON-lines file at path.
Status ConsumeCommitted(const std::string& brokers, const std::string& topic,
                        const std::string& path);

}  // namespace ctrjoin::test_support
