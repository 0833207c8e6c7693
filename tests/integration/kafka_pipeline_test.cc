// End to end through Kafka: a generated trace produced into librdkafka's mock
// cluster (2 partitions per topic), read back by `ctrjoin run`'s pipeline in
// a bounded run (stop_at_end), compared with the brute-force oracle.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <filesystem>

#include "src/app/app.h"
#include "src/io/kafka_client.h"
#include "tests/support/kafka_test_util.h"
#include "tests/support/temp_dir.h"
#include "tests/support/trace_oracle.h"

namespace ctrjoin {
namespace {

constexpr int64_t kWindowMs = 30'000;

TEST(KafkaPipelineTest, BoundedRunMatchesOracle) {
  test_support::TempDir dir;
  const auto path = [&](const char* name) { return dir.File(name); };
  GenerateOptions gen{path("imp.jsonl"), path("clk.jsonl"), "", 10'000};
  ASSERT_TRUE(GenerateTrace(gen, test_support::OracleWorkload(11, kWindowMs)).ok());

  auto producer = BulkProducer::Open({{"test.mock.num.brokers", "1"}});
  ASSERT_TRUE(producer.ok());
  rd_kafka_mock_cluster_t* cluster = rd_kafka_handle_mock_cluster((*producer)->get());
  ASSERT_NE(cluster, nullptr);
  for (const char* topic : {"impressions", "clicks"}) {
    ASSERT_EQ(rd_kafka_mock_topic_create(cluster, topic, 2, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  for (auto [topic, file] :
       {std::pair{"impressions", path("imp.jsonl")}, std::pair{"clicks", path("clk.jsonl")}}) {
    ASSERT_TRUE(test_support::ProduceLines(**producer, topic, file, 2).ok());
  }

  Config c;
  c.source.type = SourceType::kKafka;
  c.source.kafka.brokers = rd_kafka_mock_cluster_bootstraps(cluster);
  c.source.kafka.stop_at_end = true;
  c.watermark.out_of_orderness_ms = 5'000;
  c.watermark.idle_timeout_ms = 0;  // partitions are consumed at different speeds
  c.join.window_ms = kWindowMs;
  c.state.dir = path("state");
  c.sink.type = SinkType::kFile;
  c.sink.path = path("samples.jsonl");
  c.dead_letter.path = path("dead.jsonl");
  c.pipeline.shards = 2;
  ASSERT_TRUE(c.Validate().ok());
  Metrics metrics;
  Status st = RunPipeline(c, metrics);
  ASSERT_TRUE(st.ok()) << st.ToString();

  const test_support::Oracle oracle =
      test_support::ComputeOracle(path("imp.jsonl"), path("clk.jsonl"), kWindowMs);
  const size_t positives =
      test_support::ExpectMatchesOracle(oracle, test_support::ReadSamples(path("samples.jsonl")));
  EXPECT_GT(positives, 100u);
  EXPECT_EQ(metrics.pipeline.dead_letters.Get(), oracle.rejected);
  EXPECT_EQ(test_support::ReadLines(path("dead.jsonl")).size(), oracle.rejected);
}

}  // namespace
}  // namespace ctrjoin
