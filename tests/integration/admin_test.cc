// Admin commands: listing and showing checkpoints (read only, also while an
// epoch is in progress), and aborting a transaction left open by a producer
// that went away, which holds back every read_committed consumer.
#include "src/app/admin.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "src/io/changelog_topic.h"
#include "src/io/kafka_client.h"
#include "src/io/kafka_source.h"
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

// Mode group: `ctrjoin tasks` shows per task the group's committed offsets
// against the end offsets, what the changelog partition keeps, and who
// committed last (the tag's epoch and instance).
TEST(AdminTest, TasksShowOffsetsLagChangelogAndLastCommitter) {
  testbroker::BrokerOptions options;
  auto broker = testbroker::TestBroker::Start(options);
  ASSERT_TRUE(broker.ok()) << broker.status().ToString();
  const std::string brokers = (*broker)->bootstrap();
  auto producer = BulkProducer::Open({{"bootstrap.servers", brokers}});
  ASSERT_TRUE(producer.ok()) << producer.status().ToString();
  ASSERT_TRUE(CreateKafkaTopics((*producer)->get(), {{"imp", 2}, {"clk", 2}}, 10'000).ok());
  // imp[0] 5 records, imp[1] 3, clk[0] 2, clk[1] none.
  for (const auto& [topic, partition, count] : std::vector<std::tuple<std::string, int32_t, int>>{
           {"imp", 0, 5}, {"imp", 1, 3}, {"clk", 0, 2}}) {
    for (int i = 0; i < count; ++i) ASSERT_TRUE((*producer)->Produce(topic, partition, "{}").ok());
  }
  ASSERT_TRUE((*producer)->Flush(10'000).ok());

  Config config;
  config.source.type = SourceType::kKafka;
  config.source.kafka.brokers = brokers;
  config.source.kafka.impressions_topic = "imp";
  config.source.kafka.clicks_topic = "clk";
  config.source.kafka.group_id = "job";
  config.source.kafka.mode = KafkaMode::kGroup;
  Status st;
  std::string report = Capture([&](std::FILE* out) { return ShowTasks(config, out); }, st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_NE(report.find("group job: 2 tasks"), std::string::npos) << report;
  EXPECT_NE(report.find("no changelog topic job-changelog"), std::string::npos) << report;
  EXPECT_NE(report.find("\n0     -/5"), std::string::npos) << report;

  // Task 0 committed by instance 0123abcd in its epoch 7; task 1 never.
  auto conf = MakeKafkaConf({{"bootstrap.servers", brokers}, {"group.id", "job"}});
  ASSERT_TRUE(conf.ok());
  auto consumer = MakeKafkaHandle(RD_KAFKA_CONSUMER, std::move(conf).value());
  ASSERT_TRUE(consumer.ok());
  KafkaPartitionList offsets(rd_kafka_topic_partition_list_new(2));
  const std::string tag = CommitTag{7, "0123abcd"}.Format();
  for (const auto& [topic, offset] : {std::pair<const char*, int64_t>{"imp", 4}, {"clk", 1}}) {
    rd_kafka_topic_partition_t* p = rd_kafka_topic_partition_list_add(offsets.get(), topic, 0);
    p->offset = offset;
    p->metadata = std::malloc(tag.size());  // freed with the list
    std::memcpy(p->metadata, tag.data(), tag.size());
    p->metadata_size = tag.size();
  }
  ASSERT_EQ(rd_kafka_commit(consumer->get(), offsets.get(), 0), RD_KAFKA_RESP_ERR_NO_ERROR);
  // The changelog: task 1's partition holds 3 records.
  ChangelogTopicOptions changelog{brokers, "job-changelog", "job", {}};
  ASSERT_TRUE(EnsureChangelogTopic(changelog, 2).ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE((*producer)->Produce("job-changelog", 1, "c").ok());
  ASSERT_TRUE((*producer)->Flush(10'000).ok());

  report = Capture([&](std::FILE* out) { return ShowTasks(config, out); }, st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_NE(report.find("state: changelog topic job-changelog"), std::string::npos) << report;
  const std::vector<std::string> lines = [&] {
    std::vector<std::string> out;
    std::istringstream in(report);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }();
  ASSERT_EQ(lines.size(), 6u) << report;
  auto columns = [](const std::string& line) {
    std::vector<std::string> out;
    std::istringstream in(line);
    for (std::string word; in >> word;) out.push_back(word);
    return out;
  };
  // Nobody holds a task: '-'.
  EXPECT_EQ(columns(lines[4]),
            (std::vector<std::string>{"0", "4/5", "(1)", "1/2", "(1)", "0..", "(empty)", "-",
                                      "epoch", "7", "of", "instance", "0123abcd"}))
      << report;
  EXPECT_EQ(columns(lines[5]), (std::vector<std::string>{"1", "-/3", "-/0", "0..3", "-", "never"}))
      << report;

  // A member of the group, as a ctrjoin process of instance feedbeef joins
  // it, holds both tasks (the group's description, DescribeGroups).
  auto member_conf = MakeKafkaConf({{"bootstrap.servers", brokers},
                                    {"group.id", "job"},
                                    {"client.id", std::string(kInstanceClientPrefix) + "feedbeef"},
                                    {"partition.assignment.strategy", "range"}});
  ASSERT_TRUE(member_conf.ok());
  auto member = MakeKafkaHandle(RD_KAFKA_CONSUMER, std::move(member_conf).value());
  ASSERT_TRUE(member.ok());
  rd_kafka_poll_set_consumer(member->get());
  KafkaPartitionList subscription(rd_kafka_topic_partition_list_new(2));
  for (const char* topic : {"imp", "clk"}) {
    rd_kafka_topic_partition_list_add(subscription.get(), topic, RD_KAFKA_PARTITION_UA);
  }
  ASSERT_EQ(rd_kafka_subscribe(member->get(), subscription.get()), RD_KAFKA_RESP_ERR_NO_ERROR);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  int assigned = 0;
  while (assigned < 4 && std::chrono::steady_clock::now() < deadline) {
    KafkaMessage msg(rd_kafka_consumer_poll(member->get(), 100));
    rd_kafka_topic_partition_list_t* now = nullptr;
    if (rd_kafka_assignment(member->get(), &now) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      assigned = now->cnt;
      rd_kafka_topic_partition_list_destroy(now);
    }
  }
  ASSERT_EQ(assigned, 4);
  report = Capture([&](std::FILE* out) { return ShowTasks(config, out); }, st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  std::istringstream in(report);
  std::vector<std::vector<std::string>> rows;
  for (std::string line; std::getline(in, line);) rows.push_back(columns(line));
  ASSERT_EQ(rows.size(), 6u) << report;
  EXPECT_EQ(rows[4],
            (std::vector<std::string>{"0", "4/5", "(1)", "1/2", "(1)", "0..", "(empty)", "instance",
                                      "feedbeef", "epoch", "7", "of", "instance", "0123abcd"}))
      << report;
  EXPECT_EQ(rows[5],
            (std::vector<std::string>{"1", "-/3", "-/0", "0..3", "instance", "feedbeef", "never"}))
      << report;
  rd_kafka_consumer_close(member->get());

  config.source.kafka.mode = KafkaMode::kAssign;
  Capture([&](std::FILE* out) { return ShowTasks(config, out); }, st);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
  EXPECT_NE(st.message().find("source.kafka.mode"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace ctrjoin
