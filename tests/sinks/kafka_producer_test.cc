// KafkaProducer's error counters (ProducerMetrics, on /metrics as
// ctrjoin_sink_*_errors_total): a delivery the broker refuses, a message
// that cannot be queued, and brokers that cannot be reached are each
// counted where they happen; a producer without metrics counts nowhere.

#include "sinks/kafka_producer.h"

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <chrono>
#include <memory>
#include <string>

#include "sinks/producer_metrics.h"
#include "tests/support/kafka_test_util.h"

namespace ctrjoin {
namespace {

constexpr int16_t kProduceApi = 0;
constexpr const char* kDeadBrokers = "127.0.0.1:1";  // nothing listens on port 1

TEST(KafkaProducerMetricsTest, ARefusedDeliveryIsCountedOnce) {
  auto cluster = test_support::MockKafkaCluster::Start({{"log_level", "3"}});
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  ASSERT_TRUE((*cluster)->CreateTopic("samples", 1).ok());
  // Not retriable: the message fails at once.
  rd_kafka_mock_push_request_errors((*cluster)->get(), kProduceApi, 1,
                                    RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
  ProducerMetrics metrics;
  auto producer =
      KafkaProducer::Open({{"bootstrap.servers", (*cluster)->bootstraps()}, {"log_level", "3"}},
                          "test producer", &metrics);
  ASSERT_TRUE(producer.ok()) << producer.status().ToString();
  ASSERT_TRUE((*producer)->Send("samples", "k1", "refused", 5'000).ok());
  const Status flushed = (*producer)->Flush(10'000);
  EXPECT_FALSE(flushed.ok());
  EXPECT_NE(flushed.ToString().find("MSG_SIZE_TOO_LARGE"), std::string::npos) << flushed.ToString();
  EXPECT_EQ(metrics.delivery_errors.Get(), 1u);
  EXPECT_EQ(metrics.produce_errors.Get(), 0u);

  // The next message goes through and adds nothing.
  (*producer)->ResetDeliveryStatus();
  ASSERT_TRUE((*producer)->Send("samples", "k2", "taken", 5'000).ok());
  EXPECT_TRUE((*producer)->Flush(10'000).ok());
  EXPECT_EQ(metrics.delivery_errors.Get(), 1u);
}

TEST(KafkaProducerMetricsTest, AMessageThatCannotBeQueuedIsAProduceError) {
  ProducerMetrics metrics;
  // A queue of one message that is never sent (the brokers are dead).
  auto producer = KafkaProducer::Open({{"bootstrap.servers", kDeadBrokers},
                                       {"queue.buffering.max.messages", "1"},
                                       {"log_level", "0"}},
                                      "test producer", &metrics);
  ASSERT_TRUE(producer.ok()) << producer.status().ToString();
  ASSERT_TRUE((*producer)->Send("samples", "k1", "queued", 0).ok());
  const Status full = (*producer)->Send("samples", "k2", "no room", 0);
  EXPECT_EQ(full.code(), StatusCode::kTimedOut) << full.ToString();
  EXPECT_EQ(metrics.produce_errors.Get(), 1u);
  EXPECT_EQ(metrics.delivery_errors.Get(), 0u);
}

TEST(KafkaProducerMetricsTest, UnreachableBrokersAreClientErrors) {
  ProducerMetrics metrics;
  auto producer = KafkaProducer::Open({{"bootstrap.servers", kDeadBrokers}, {"log_level", "0"}},
                                      "test producer", &metrics);
  ASSERT_TRUE(producer.ok()) << producer.status().ToString();
  ASSERT_TRUE((*producer)->Send("samples", "k1", "waits", 0).ok());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (metrics.client_errors.Get() == 0 && std::chrono::steady_clock::now() < deadline) {
    (void)(*producer)->Flush(100);  // serves the error callback
  }
  EXPECT_GT(metrics.client_errors.Get(), 0u) << "no client error within 10 s";
  EXPECT_EQ(metrics.produce_errors.Get(), 0u);
}

TEST(KafkaProducerMetricsTest, WithoutMetricsNothingIsCountedAndNothingBreaks) {
  auto producer = KafkaProducer::Open({{"bootstrap.servers", kDeadBrokers},
                                       {"queue.buffering.max.messages", "1"},
                                       {"log_level", "0"}},
                                      "test producer");
  ASSERT_TRUE(producer.ok()) << producer.status().ToString();
  ASSERT_TRUE((*producer)->Send("samples", "k1", "queued", 0).ok());
  EXPECT_EQ((*producer)->Send("samples", "k2", "no room", 0).code(), StatusCode::kTimedOut);
}

}  // namespace
}  // namespace ctrjoin
