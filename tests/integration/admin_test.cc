// Admin commands: listing and showing checkpoints (read only, also while an
// epoch is in progress), and aborting a transaction left open by a producer
// that went away, which holds back every read_committed consumer.
#include "src/app/admin.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "src/io/kafka_client.h"
#include "tests/support/kafka_broker/broker.h"
#include "tests/support/kafka_test_util.h"
#include "tests/support/temp_dir.h"
#include "tests/support/trace_oracle.h"
#include "txn/checkpoint_store.h"

namespace ctrjoin {
namespace {

std::string Capture(const std::function<Status(std::FILE*)>& command, Status& status) {
  char* buf = nullptr;
  size_t size = 0;
  std::FILE* out = open_memstream(&buf, &size);
  status = command(out);
  std::fclose(out);
  std::string text(buf, size);
  std::free(buf);
  return text;
}

TEST(AdminTest, ListsAndShowsCheckpointsWithoutTouchingThem) {
  test_support::TempDir dir;
  Config config;
  config.checkpoint.dir = dir.File("chk");
  auto store = CheckpointStore::Open(config.checkpoint.dir);
  ASSERT_TRUE(store.ok());
  for (uint64_t e = 7; e <= 8; ++e) {
    CheckpointMeta meta;
    meta.epoch = e;
    meta.shards = 1;
    meta.key_groups = 16;
    meta.changelog_generation = 2;
    meta.shard_logs = {{3, 1000 * e}};
    meta.positions = {{{StreamKind::kImpression, 0}, 100 * static_cast<int64_t>(e)},
                      {{StreamKind::kClick, 1}, 42}};
    meta.partition_max_ts = {{{StreamKind::kImpression, 0}, EventTime{1'767'225'600'000}}};
    meta.watermark = EventTime{1'767'225'595'000};
    meta.created_ms = 1'767'225'700'000;
    meta.state_bytes = 4096;
    ASSERT_TRUE((*store)->Complete(meta).ok());
  }
  // In progress: a run is writing it.
  std::ofstream(dir.File("chk/chk-00000000000000000009.inprogress")) << "ctrjoin-checkpoint 2\n";

  Status st;
  std::string list = Capture([&](std::FILE* out) { return ListCheckpoints(config, out); }, st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_NE(list.find("2 complete checkpoints"), std::string::npos) << list;
  EXPECT_NE(list.find("8        2026-01-01T00:01:40.000Z"), std::string::npos) << list;
  EXPECT_NE(list.find("2025-12-31T23:59:55.000Z"), std::string::npos) << list;
  EXPECT_EQ(list.find("mode group"), std::string::npos) << list;
  config.source.type = SourceType::kKafka;
  config.source.kafka.mode = KafkaMode::kGroup;
  list = Capture([&](std::FILE* out) { return ListCheckpoints(config, out); }, st);
  EXPECT_NE(list.find("mode group: they record only this process's epochs"), std::string::npos)
      << "in mode group, tasks restore from Kafka: " << list;
  config.source.type = SourceType::kFiles;

  std::string show = Capture([&](std::FILE* out) { return ShowCheckpoint(config, 8, out); }, st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_NE(show.find("impressions [0] 800"), std::string::npos) << show;
  EXPECT_NE(show.find("clicks      [1] 42"), std::string::npos) << show;
  EXPECT_NE(show.find("impressions [0] 2026-01-01T00:00:00.000Z"), std::string::npos) << show;
  EXPECT_NE(show.find("shard-0  marker in segment 3 at byte 8000"), std::string::npos) << show;
  EXPECT_NE(show.find("key groups 16"), std::string::npos) << show;

  Capture([&](std::FILE* out) { return ShowCheckpoint(config, 9, out); }, st);
  EXPECT_EQ(st.code(), StatusCode::kNotFound) << "an in-progress checkpoint is not shown";
  EXPECT_TRUE(std::filesystem::exists(dir.File("chk/chk-00000000000000000009.inprogress")))
      << "listing must not clean up a running job's checkpoint";
  config.checkpoint.dir = dir.File("missing");
  Capture([&](std::FILE* out) { return ListCheckpoints(config, out); }, st);
  EXPECT_NE(st.message().find("no checkpoint directory"), std::string::npos) << st.message();
}

// A transactional producer of id `id` writes to "out" and vanishes with its
// transaction open.
void LeaveOpen(const std::string& brokers, const std::string& id) {
  auto conf = MakeKafkaConf({{"bootstrap.servers", brokers},
                             {"transactional.id", id},
                             {"transaction.timeout.ms", "600000"}});
  ASSERT_TRUE(conf.ok());
  auto producer = MakeKafkaHandle(RD_KAFKA_PRODUCER, std::move(conf).value());
  ASSERT_TRUE(producer.ok());
  rd_kafka_t* rk = producer->get();
  ASSERT_EQ(rd_kafka_init_transactions(rk, 10'000), nullptr);
  ASSERT_EQ(rd_kafka_begin_transaction(rk), nullptr);
  for (const char* v : {"open-1", "open-2"}) {
    ASSERT_EQ(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("out"),
                                RD_KAFKA_V_VALUE(const_cast<char*>(v), 6), RD_KAFKA_V_END),
              RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  ASSERT_EQ(rd_kafka_flush(rk, 10'000), RD_KAFKA_RESP_ERR_NO_ERROR);
}

// A plain (not transactional) producer writes `value` to "out".
void ProducePlain(const std::string& brokers, const std::string& value) {
  auto conf = MakeKafkaConf({{"bootstrap.servers", brokers}});
  ASSERT_TRUE(conf.ok());
  auto producer = MakeKafkaHandle(RD_KAFKA_PRODUCER, std::move(conf).value());
  ASSERT_TRUE(producer.ok());
  ASSERT_EQ(rd_kafka_producev(producer->get(), RD_KAFKA_V_TOPIC("out"),
                              RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                              RD_KAFKA_V_END),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_EQ(rd_kafka_flush(producer->get(), 10'000), RD_KAFKA_RESP_ERR_NO_ERROR);
}

// A transactional producer of id job-0 writes and vanishes with its
// transaction open: read_committed readers stop before it, so a later
// committed record stays invisible until the transaction is aborted.
TEST(AdminTest, AbortTransactionsReleasesReadCommittedReaders) {
  testbroker::BrokerOptions options;
  auto broker = testbroker::TestBroker::Start(options);
  ASSERT_TRUE(broker.ok()) << broker.status().ToString();
  const std::string brokers = (*broker)->bootstrap();
  test_support::TempDir dir;
  LeaveOpen(brokers, "job-0");
  ProducePlain(brokers, "later");
  ASSERT_TRUE(test_support::ConsumeCommitted(brokers, "out", dir.File("before.txt")).ok());
  EXPECT_TRUE(test_support::ReadLines(dir.File("before.txt")).empty())
      << "the open transaction holds read_committed readers back";

  Config config;
  config.sink.type = SinkType::kKafka;
  config.sink.kafka.brokers = brokers;
  config.sink.kafka.topic = "out";
  config.sink.transactional_id_prefix = "job";
  config.sink.pool_size = 1;
  Status st;
  std::string report =
      Capture([&](std::FILE* out) { return AbortTransactions(config, "", 0, out); }, st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_NE(report.find("job-0 .. job-0"), std::string::npos) << report;
  ASSERT_TRUE(test_support::ConsumeCommitted(brokers, "out", dir.File("after.txt")).ok());
  EXPECT_EQ(test_support::ReadLines(dir.File("after.txt")), std::vector<std::string>{"later"});

  // Mode group with checkpoints: each process has ids of its own,
  // <prefix>-<instance>-<i>, its instance kept in its state.dir.
  config.source.type = SourceType::kKafka;
  config.source.kafka.mode = KafkaMode::kGroup;
  config.checkpoint.enabled = true;
  config.state.dir = dir.File("state");
  report = Capture([&](std::FILE* out) { return AbortTransactions(config, "", 0, out); }, st);
  EXPECT_EQ(st.code(), StatusCode::kNotFound) << "no instance yet: " << st.ToString();
  EXPECT_NE(st.message().find("INSTANCE"), std::string::npos) << st.message();
  std::filesystem::create_directories(config.state.dir);
  std::ofstream(dir.File("state/INSTANCE")) << "0123abcd\n";
  ASSERT_NO_FATAL_FAILURE(LeaveOpen(brokers, "job-0123abcd-0"));
  ASSERT_NO_FATAL_FAILURE(ProducePlain(brokers, "latest"));
  ASSERT_TRUE(test_support::ConsumeCommitted(brokers, "out", dir.File("held.txt")).ok());
  EXPECT_EQ(test_support::ReadLines(dir.File("held.txt")), std::vector<std::string>{"later"});
  report = Capture([&](std::FILE* out) { return AbortTransactions(config, "", 0, out); }, st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_NE(report.find("job-0123abcd-0 .. job-0123abcd-0"), std::string::npos) << report;
  ASSERT_TRUE(test_support::ConsumeCommitted(brokers, "out", dir.File("released.txt")).ok());
  EXPECT_EQ(test_support::ReadLines(dir.File("released.txt")),
            (std::vector<std::string>{"later", "latest"}));

  config.sink.type = SinkType::kFile;
  Capture([&](std::FILE* out) { return AbortTransactions(config, "", 0, out); }, st);
  EXPECT_NE(st.message().find("sink.type"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace ctrjoin
