// The Kafka transactional sink against the in-process test broker: epochs are
// invisible to read_committed consumers until committed, aborted epochs never
// become visible, a new instance fences the old one and aborts its open
// transactions, input offsets commit with the output, a committer thread can
// commit one epoch while the next is written, and options are validated.
// Every test starts its own broker; every wait is bounded.
#include "sinks/kafka_txn_sink.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "sinks/kafka_sink.h"
#include "src/io/changelog_topic.h"
#include "src/io/kafka_client.h"
#include "src/io/kafka_source.h"
#include "tests/support/kafka_broker/broker.h"
#include "tests/support/temp_dir.h"
#include "tf_example.pb.h"

namespace ctrjoin {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int kPartitions = 3;
constexpr auto kWait = seconds(20);          // for anything expected to arrive
constexpr auto kQuiet = milliseconds(1500);  // to show that nothing more arrives
constexpr int kApiTimeoutMs = 15'000;

std::string UniqueName(const std::string& prefix) {
  static std::atomic<int> counter{0};
  return prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

std::vector<Sample> Samples(const std::string& prefix, int n) {
  std::vector<Sample> out(n);
  for (int i = 0; i < n; ++i) {
    out[i].impression.impression_id = prefix + std::to_string(i);
    out[i].impression.user_id = "u" + std::to_string(i);
    out[i].label = i % 2;
  }
  return out;
}

std::vector<std::string> Ids(const std::vector<Sample>& samples) {
  std::vector<std::string> ids;
  for (const Sample& s : samples) ids.push_back(s.impression.impression_id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

struct Record {
  std::string key;
  std::string value;
  std::map<std::string, std::string> headers;
};

std::vector<std::string> Keys(const std::vector<Record>& records) {
  std::vector<std::string> keys;
  for (const Record& r : records) keys.push_back(r.key);
  std::sort(keys.begin(), keys.end());
  return keys;
}

KafkaHandle MakeConsumer(const std::string& brokers, std::map<std::string, std::string> props) {
  props.insert({{"bootstrap.servers", brokers},
                {"group.id", UniqueName("group")},
                {"enable.auto.commit", "false"},
                {"fetch.wait.max.ms", "100"},
                {"log_level", "4"}});
  Result<KafkaConf> conf = MakeKafkaConf(props);
  EXPECT_TRUE(conf.ok()) << conf.status().ToString();
  Result<KafkaHandle> handle = MakeKafkaHandle(RD_KAFKA_CONSUMER, std::move(conf).value());
  EXPECT_TRUE(handle.ok()) << handle.status().ToString();
  return std::move(handle).value();
}

// Reads every partition of a topic from the beginning, at one isolation level.
class Reader {
 public:
  Reader(const std::string& brokers, const std::string& topic, const std::string& isolation)
      : consumer_(MakeConsumer(brokers, {{"isolation.level", isolation}})) {
    rd_kafka_poll_set_consumer(consumer_.get());
    KafkaPartitionList list(rd_kafka_topic_partition_list_new(kPartitions));
    for (int p = 0; p < kPartitions; ++p) {
      rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p)->offset =
          RD_KAFKA_OFFSET_BEGINNING;
    }
    EXPECT_EQ(rd_kafka_assign(consumer_.get(), list.get()), RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  ~Reader() {
    if (consumer_) rd_kafka_consumer_close(consumer_.get());
  }

  // Polls until `count` records arrived or kWait passed.
  std::vector<Record> Read(size_t count) {
    std::vector<Record> out;
    const auto deadline = Clock::now() + kWait;
    while (out.size() < count && Clock::now() < deadline) PollOnce(out);
    return out;
  }
  // Polls for kQuiet, returning whatever arrived.
  std::vector<Record> ReadRest() {
    std::vector<Record> out;
    const auto deadline = Clock::now() + kQuiet;
    while (Clock::now() < deadline) PollOnce(out);
    return out;
  }

 private:
  void PollOnce(std::vector<Record>& out) {
    KafkaMessage m(rd_kafka_consumer_poll(consumer_.get(), 100));
    if (!m) return;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      Record& r = out.emplace_back(Record{std::string(static_cast<const char*>(m->key), m->key_len),
                                          std::string(static_cast<const char*>(m->payload), m->len),
                                          {}});
      rd_kafka_headers_t* headers = nullptr;
      if (rd_kafka_message_headers(m.get(), &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char* name = nullptr;
        const void* value = nullptr;
        size_t size = 0;
        for (size_t i = 0; rd_kafka_header_get_all(headers, i, &name, &value, &size) ==
                           RD_KAFKA_RESP_ERR_NO_ERROR;
             ++i) {
          r.headers[name] = std::string(static_cast<const char*>(value), size);
        }
      }
    } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      ADD_FAILURE() << "consumer error: " << rd_kafka_message_errstr(m.get());
    }
  }

  KafkaHandle consumer_;
};

int64_t CommittedOffset(rd_kafka_t* consumer, const std::string& topic, int32_t partition) {
  KafkaPartitionList list(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition);
  EXPECT_EQ(rd_kafka_committed(consumer, list.get(), kApiTimeoutMs), RD_KAFKA_RESP_ERR_NO_ERROR);
  EXPECT_EQ(list->elems[0].err, RD_KAFKA_RESP_ERR_NO_ERROR);
  return list->elems[0].offset;
}

class KafkaTxnSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testbroker::BrokerOptions options;
    options.default_partitions = kPartitions;
    options.transaction_check_interval_ms = 100;
    auto broker = testbroker::TestBroker::Start(options);
    ASSERT_TRUE(broker.ok()) << broker.status().ToString();
    broker_ = std::move(broker).value();
    topic_ = UniqueName("samples");
    prefix_ = UniqueName("ctrjoin-txn");
  }

  KafkaTransactionalSinkOptions Options(SampleFormat format = SampleFormat::kJson) const {
    KafkaTransactionalSinkOptions options;
    options.brokers = broker_->bootstrap();
    options.topic = topic_;
    options.transactional_id_prefix = prefix_;
    options.operation_timeout_ms = kApiTimeoutMs;
    options.properties = {{"log_level", "4"}};
    options.format = format;
    return options;
  }

  std::unique_ptr<KafkaTransactionalSink> Open(SampleFormat format = SampleFormat::kJson) {
    auto sink = KafkaTransactionalSink::Open(Options(format));
    EXPECT_TRUE(sink.ok()) << sink.status().ToString();
    return sink.ok() ? std::move(sink).value() : nullptr;
  }

  Reader Committed() const { return Reader(broker_->bootstrap(), topic_, "read_committed"); }
  Reader Uncommitted() const { return Reader(broker_->bootstrap(), topic_, "read_uncommitted"); }

  // Creates an input topic with a plain producer, so that offsets can be
  // committed for it.
  void CreateInput(const std::string& input) const {
    auto source = KafkaSampleSink::Open({broker_->bootstrap(), input, {{"log_level", "4"}}});
    ASSERT_TRUE(source.ok()) << source.status().ToString();
    ASSERT_TRUE((*source)->Write(Samples("in", 10)).ok());
    ASSERT_TRUE((*source)->Flush().ok());
  }

  // Adds "input[0] consumed up to offset" of group to epoch's transaction.
  static Status SendOffsets(KafkaTransactionalSink& sink, EpochId epoch, const std::string& input,
                            const std::string& group, int64_t offset) {
    KafkaPartitionList offsets(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(offsets.get(), input.c_str(), 0)->offset = offset;
    rd_kafka_consumer_group_metadata_t* metadata =
        rd_kafka_consumer_group_metadata_new(group.c_str());
    Status status = sink.SendOffsets(epoch, offsets.get(), metadata);
    rd_kafka_consumer_group_metadata_destroy(metadata);
    return status;
  }

  std::unique_ptr<testbroker::TestBroker> broker_;
  std::string topic_;
  std::string prefix_;
};

TEST_F(KafkaTxnSinkTest, EpochVisibleOnlyAfterItsCommitWhileNextIsOpen) {
  auto sink = Open();
  ASSERT_TRUE(sink);
  const std::vector<Sample> first = Samples("a", 20);
  const std::vector<Sample> second = Samples("b", 15);
  ASSERT_TRUE(sink->Begin({1}).ok());
  ASSERT_TRUE(sink->Write(first).ok());
  ASSERT_TRUE(sink->PreCommit({1}).ok());
  Status begun = sink->Begin({2});  // the next epoch is written while 1 commits
  ASSERT_TRUE(begun.ok()) << begun.ToString();
  ASSERT_TRUE(sink->Write(second).ok());

  Reader reader = Committed();
  EXPECT_TRUE(reader.ReadRest().empty()) << "nothing is visible before a commit";
  Status committed = sink->Commit({1});
  ASSERT_TRUE(committed.ok()) << committed.ToString();
  EXPECT_EQ(Keys(reader.Read(first.size())), Ids(first));
  EXPECT_TRUE(reader.ReadRest().empty()) << "epoch 2 is still open";
  EXPECT_TRUE(sink->Commit({1}).ok()) << "idempotent";

  ASSERT_TRUE(sink->PreCommit({2}).ok());
  committed = sink->Commit({2});
  ASSERT_TRUE(committed.ok()) << committed.ToString();
  EXPECT_EQ(Keys(reader.Read(second.size())), Ids(second));
  EXPECT_TRUE(reader.ReadRest().empty()) << "each sample exactly once";
}

// Open fetches the output topics' metadata, so that no first epoch waits
// for it; a topic that does not exist (brokers that do not create topics)
// refuses the start, naming the key, instead of failing the first epoch.
TEST_F(KafkaTxnSinkTest, AnOutputTopicThatDoesNotExistRefusesTheStartNamingTheKey) {
  testbroker::BrokerOptions strict;
  strict.auto_create_topics = false;
  auto broker = testbroker::TestBroker::Start(strict);
  ASSERT_TRUE(broker.ok()) << broker.status().ToString();
  KafkaTransactionalSinkOptions options = Options();
  options.brokers = (*broker)->bootstrap();
  auto sink = KafkaTransactionalSink::Open(options);
  ASSERT_FALSE(sink.ok());
  EXPECT_EQ(sink.status().code(), StatusCode::kInvalidArgument) << sink.status().ToString();
  EXPECT_NE(sink.status().message().find("sink.kafka.topic"), std::string::npos)
      << sink.status().ToString();
  EXPECT_NE(sink.status().message().find(topic_), std::string::npos) << sink.status().ToString();
}

// As the checkpoint coordinator runs it: its committer thread sends the
// input offsets of pre-committed epoch N and commits it while the sink
// thread begins and writes N+1. N becomes visible with its offsets, N+1 only
// after its own commit.
TEST_F(KafkaTxnSinkTest, CommitterThreadCommitsWhileTheNextEpochIsWritten) {
  constexpr uint64_t kEpochs = 3;
  constexpr int kMinBatches = 10;  // written while the committer runs, and more until it is done
  constexpr int kMaxBatches = 2'000;
  constexpr int kBatch = 4;
  const std::string input = UniqueName("input");
  const std::string group = UniqueName("job");
  ASSERT_NO_FATAL_FAILURE(CreateInput(input));
  KafkaHandle observer = MakeConsumer(broker_->bootstrap(), {{"group.id", group}});
  auto sink = Open();
  ASSERT_TRUE(sink);
  std::vector<Sample> precommitted = Samples("e1-", 10);
  ASSERT_TRUE(sink->Begin({1}).ok());
  ASSERT_TRUE(sink->Write(precommitted).ok());
  ASSERT_TRUE(sink->PreCommit({1}).ok());
  Reader reader = Committed();  // the topic exists now
  for (uint64_t e = 1; e <= kEpochs; ++e) {
    const bool last = e == kEpochs;
    std::atomic<bool> committed{false};
    Status sent;
    Status commit;
    std::vector<Sample> open;
    {
      std::jthread committer([&] {
        sent = SendOffsets(*sink, {e}, input, group, static_cast<int64_t>(10 * e));
        if (sent.ok()) commit = sink->Commit({e});
        committed = true;
      });
      if (!last) {
        ASSERT_TRUE(sink->Begin({e + 1}).ok());
        for (int batch = 0; (batch < kMinBatches || !committed) && batch < kMaxBatches; ++batch) {
          const std::vector<Sample> samples =
              Samples("e" + std::to_string(e + 1) + "-" + std::to_string(batch) + "-", kBatch);
          Status written = sink->Write(samples);
          ASSERT_TRUE(written.ok()) << written.ToString();
          open.insert(open.end(), samples.begin(), samples.end());
        }
      }
    }  // joins the committer
    ASSERT_TRUE(sent.ok()) << "epoch " << e << ": " << sent.ToString();
    ASSERT_TRUE(commit.ok()) << "epoch " << e << ": " << commit.ToString();
    EXPECT_EQ(Keys(reader.Read(precommitted.size())), Ids(precommitted)) << "epoch " << e;
    EXPECT_TRUE(reader.ReadRest().empty()) << "epoch " << e + 1 << " is not committed yet";
    EXPECT_EQ(CommittedOffset(observer.get(), input, 0), static_cast<int64_t>(10 * e));
    if (!last) {
      Status pre = sink->PreCommit({e + 1});
      ASSERT_TRUE(pre.ok()) << pre.ToString();
      precommitted = std::move(open);
    }
  }
  rd_kafka_consumer_close(observer.get());
}

TEST_F(KafkaTxnSinkTest, EpochsUseThePoolAndCommitInOrder) {
  auto sink = Open();
  ASSERT_TRUE(sink);
  ASSERT_TRUE(sink->Begin({1}).ok());
  ASSERT_TRUE(sink->Write(Samples("a", 2)).ok());
  ASSERT_TRUE(sink->PreCommit({1}).ok());
  ASSERT_TRUE(sink->Begin({2}).ok());
  EXPECT_FALSE(sink->Begin({3}).ok()) << "epoch 2 is open";
  ASSERT_TRUE(sink->PreCommit({2}).ok());
  Status out_of_order = sink->Commit({2});
  EXPECT_FALSE(out_of_order.ok());
  EXPECT_EQ(out_of_order.effect(), Effect::kNoEffect);
  Status busy = sink->Begin({3});  // "<prefix>-1" still holds epoch 1
  EXPECT_FALSE(busy.ok());
  EXPECT_NE(busy.message().find(prefix_ + "-1"), std::string::npos) << busy.message();
  ASSERT_TRUE(sink->Commit({1}).ok());
  ASSERT_TRUE(sink->Commit({2}).ok());
  EXPECT_TRUE(sink->Begin({3}).ok());
  EXPECT_FALSE(sink->Begin({4}).ok()) << "one open epoch at a time";
}

TEST_F(KafkaTxnSinkTest, AbortedEpochIsWrittenButNeverVisible) {
  auto sink = Open();
  ASSERT_TRUE(sink);
  const std::vector<Sample> aborted = Samples("x", 10);
  const std::vector<Sample> kept = Samples("k", 5);
  ASSERT_TRUE(sink->Begin({1}).ok());
  ASSERT_TRUE(sink->Write(aborted).ok());
  ASSERT_TRUE(sink->PreCommit({1}).ok());  // delivered to the log
  Status aborted_status = sink->Abort({1});
  ASSERT_TRUE(aborted_status.ok()) << aborted_status.ToString();
  EXPECT_TRUE(sink->Abort({1}).ok()) << "idempotent";
  ASSERT_TRUE(sink->Begin({2}).ok());
  ASSERT_TRUE(sink->Write(kept).ok());
  ASSERT_TRUE(sink->PreCommit({2}).ok());
  ASSERT_TRUE(sink->Commit({2}).ok());

  Reader committed = Committed();
  EXPECT_EQ(Keys(committed.Read(kept.size())), Ids(kept));
  EXPECT_TRUE(committed.ReadRest().empty());
  Reader uncommitted = Uncommitted();
  std::vector<std::string> all = Ids(aborted);
  for (const std::string& id : Ids(kept)) all.push_back(id);
  std::sort(all.begin(), all.end());
  EXPECT_EQ(Keys(uncommitted.Read(all.size())), all) << "the aborted epoch was in the log";
}

TEST_F(KafkaTxnSinkTest, DeadLettersCommitAndAbortWithTheirEpochsTransaction) {
  const std::string dead_topic = UniqueName("dead-letters");
  KafkaTransactionalSinkOptions options = Options();
  options.dead_letter_topic = dead_topic;
  auto opened = KafkaTransactionalSink::Open(options);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  KafkaTransactionalSink& sink = **opened;
  const std::vector<Sample> kept = Samples("k", 2);
  ASSERT_TRUE(sink.Begin({1}).ok());
  ASSERT_TRUE(sink.Write(Samples("x", 2)).ok());
  ASSERT_TRUE(
      sink.WriteDeadLetter({{StreamKind::kImpression, 0, Offset{3}}, "bad json", "{"}).ok());
  ASSERT_TRUE(sink.PreCommit({1}).ok());
  ASSERT_TRUE(sink.Abort({1}).ok());
  ASSERT_TRUE(sink.Begin({2}).ok());
  ASSERT_TRUE(sink.Write(kept).ok());
  ASSERT_TRUE(
      sink.WriteDeadLetter(
              {{StreamKind::kClick, 1, Offset{8}}, "ts: missing", "{}", RejectCode::kMissingField})
          .ok());
  ASSERT_TRUE(sink.PreCommit({2}).ok());
  Reader dead_letters(broker_->bootstrap(), dead_topic, "read_committed");
  EXPECT_TRUE(dead_letters.ReadRest().empty()) << "visible before its epoch committed";

  ASSERT_TRUE(sink.Commit({2}).ok());
  std::vector<Record> letters = dead_letters.Read(1);
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(
      letters[0].value,
      R"({"reason":"ts: missing","reason_code":"missing_field","stream":"clicks","partition":1,"offset":8,"payload":"{}"})");
  EXPECT_TRUE(letters[0].key.empty()) << "no key, as the plain dead-letter topic";
  EXPECT_TRUE(dead_letters.ReadRest().empty()) << "the aborted epoch's dead letter is visible";
  Reader committed = Committed();
  EXPECT_EQ(Keys(committed.Read(kept.size())), Ids(kept));
}

TEST_F(KafkaTxnSinkTest, WithoutADeadLetterTopicDeadLettersAreRefused) {
  auto sink = Open();
  ASSERT_TRUE(sink);
  ASSERT_TRUE(sink->Begin({1}).ok());
  Status st = sink->WriteDeadLetter({{StreamKind::kClick, 0, Offset{1}}, "bad json", "{"});
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("no dead-letter output"), std::string::npos) << st.message();
  ASSERT_TRUE(sink->Abort({1}).ok());
}

TEST_F(KafkaTxnSinkTest, NewInstanceFencesTheOldAndAbortsItsTransactions) {
  auto old_sink = Open();
  ASSERT_TRUE(old_sink);
  const std::vector<Sample> zombie = Samples("z", 8);
  ASSERT_TRUE(old_sink->Begin({1}).ok());
  ASSERT_TRUE(old_sink->Write(zombie).ok());
  ASSERT_TRUE(old_sink->PreCommit({1}).ok());
  ASSERT_TRUE(old_sink->Begin({2}).ok());  // both ids hold an open transaction
  ASSERT_TRUE(old_sink->Write(Samples("y", 4)).ok());

  auto new_sink = Open();
  ASSERT_TRUE(new_sink);
  Status fenced = old_sink->Commit({1});
  EXPECT_FALSE(fenced.ok());
  EXPECT_EQ(fenced.effect(), Effect::kFenced) << fenced.ToString();

  Result<EpochId> recovered = new_sink->Recover({0});
  ASSERT_TRUE(recovered.ok());
  const std::vector<Sample> fresh = Samples("n", 6);
  ASSERT_TRUE(new_sink->Begin({1}).ok());
  ASSERT_TRUE(new_sink->Write(fresh).ok());
  ASSERT_TRUE(new_sink->PreCommit({1}).ok());
  Status committed = new_sink->Commit({1});
  ASSERT_TRUE(committed.ok()) << committed.ToString();

  Reader reader = Committed();
  EXPECT_EQ(Keys(reader.Read(fresh.size())), Ids(fresh));
  EXPECT_TRUE(reader.ReadRest().empty()) << "the old instance's epochs were aborted";
  Reader dirty = Uncommitted();
  // The old instance's second epoch may have reached the log before it was
  // fenced, or not: read everything there is.
  std::vector<Record> everything = dirty.Read(zombie.size() + fresh.size());
  for (Record& r : dirty.ReadRest()) everything.push_back(std::move(r));
  std::vector<std::string> keys = Keys(everything);
  std::sort(keys.begin(), keys.end());
  for (const std::string& id : Ids(zombie)) {
    EXPECT_TRUE(std::binary_search(keys.begin(), keys.end(), id)) << id << " was in the log";
  }
}

// The pool shrank between runs (3 ids, then 1): the ids the new pool no
// longer uses are fenced all the same, so a zombie on one of them cannot
// commit.
TEST_F(KafkaTxnSinkTest, AShrunkPoolStillFencesEveryIdTheJobUsed) {
  KafkaTransactionalSinkOptions wide = Options(SampleFormat::kJson);
  wide.pool_size = 3;
  auto old_sink = KafkaTransactionalSink::Open(wide);
  ASSERT_TRUE(old_sink.ok()) << old_sink.status().ToString();
  const std::vector<Sample> zombie = Samples("z", 5);
  ASSERT_TRUE((*old_sink)->Recover({1}).ok());
  ASSERT_TRUE((*old_sink)->Begin({2}).ok());  // on <prefix>-2
  ASSERT_TRUE((*old_sink)->Write(zombie).ok());
  ASSERT_TRUE((*old_sink)->PreCommit({2}).ok());

  KafkaTransactionalSinkOptions narrow = Options(SampleFormat::kJson);
  narrow.pool_size = 1;
  narrow.fence_pool_size = 3;  // what the job's checkpoint directory recorded
  auto new_sink = KafkaTransactionalSink::Open(narrow);
  ASSERT_TRUE(new_sink.ok()) << new_sink.status().ToString();
  Status fenced = (*old_sink)->Commit({2});
  EXPECT_EQ(fenced.effect(), Effect::kFenced) << fenced.ToString();
  EXPECT_TRUE(Committed().ReadRest().empty()) << "the zombie's epoch never became visible";
}

TEST_F(KafkaTxnSinkTest, SentOffsetsCommitWithTheEpoch) {
  const std::string input = UniqueName("input");
  const std::string group = UniqueName("job");
  ASSERT_NO_FATAL_FAILURE(CreateInput(input));
  // read_uncommitted: a read_committed consumer asks for stable offsets and
  // gets no answer while the epoch's offsets are pending (KIP-447).
  KafkaHandle observer = MakeConsumer(
      broker_->bootstrap(), {{"group.id", group}, {"isolation.level", "read_uncommitted"}});
  auto send = [&](KafkaTransactionalSink& sink, EpochId epoch, int64_t offset) {
    return SendOffsets(sink, epoch, input, group, offset);
  };

  auto sink = Open();
  ASSERT_TRUE(sink);
  ASSERT_TRUE(sink->Begin({1}).ok());
  ASSERT_TRUE(sink->Write(Samples("a", 3)).ok());
  ASSERT_TRUE(sink->PreCommit({1}).ok());
  Status sent = send(*sink, {1}, 5);
  ASSERT_TRUE(sent.ok()) << sent.ToString();
  EXPECT_EQ(CommittedOffset(observer.get(), input, 0), RD_KAFKA_OFFSET_INVALID);
  ASSERT_TRUE(sink->Commit({1}).ok());
  EXPECT_EQ(CommittedOffset(observer.get(), input, 0), 5);

  ASSERT_TRUE(sink->Begin({2}).ok());
  ASSERT_TRUE(sink->Write(Samples("b", 3)).ok());
  ASSERT_TRUE(send(*sink, {2}, 9).ok());
  ASSERT_TRUE(sink->Abort({2}).ok());
  EXPECT_EQ(CommittedOffset(observer.get(), input, 0), 5) << "aborted with epoch 2";
  EXPECT_FALSE(send(*sink, {2}, 9).ok()) << "epoch 2 is gone";
  rd_kafka_consumer_close(observer.get());
}

// Mode group: changelog chunks go to their task's partition with the
// epoch, and once committed markers' watermarks pass every deadline in a
// head of the partition, the trimmer deletes that head (DeleteRecords),
// keeping the last marker.
TEST_F(KafkaTxnSinkTest, CommittedChangelogHeadsThatNoRestoreNeedsAreDeleted) {
  ChangelogTopicOptions topic{broker_->bootstrap(), UniqueName("job-changelog"), "job", {}};
  ASSERT_TRUE(EnsureChangelogTopic(topic, 2).ok());
  auto trimmer = ChangelogTrimmer::Open(broker_->bootstrap(), {}, topic.topic);
  ASSERT_TRUE(trimmer.ok()) << trimmer.status().ToString();
  KafkaTransactionalSinkOptions options = Options();
  options.changelog_topic = topic.topic;
  options.changelog_trimmer = trimmer->get();
  auto opened = KafkaTransactionalSink::Open(options);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  KafkaTransactionalSink& sink = **opened;
  constexpr int64_t kNoPut = std::numeric_limits<int64_t>::min();
  const std::vector<std::vector<ChangelogChunk>> epochs = {
      {{1, "a", 100, std::nullopt}, {1, "b", 200, 50}, {0, "t0", 10, 50}},
      {{1, "c", kNoPut, 150}},
      {{1, "d", kNoPut, 250}},
  };
  for (size_t i = 0; i < epochs.size(); ++i) {
    const EpochId epoch{i + 1};
    ASSERT_TRUE(sink.Begin(epoch).ok());
    for (const ChangelogChunk& chunk : epochs[i]) ASSERT_TRUE(sink.WriteChangelog(chunk).ok());
    ASSERT_TRUE(sink.PreCommit(epoch).ok());
    ASSERT_TRUE(sink.Commit(epoch).ok());
  }
  // a goes at 150 (100 < 150), b and c at 250; d, the last marker, stays.
  // Offsets in partition 1: a 0, b 1, commit 2, c 3, commit 4, d 5.
  std::map<int32_t, int64_t> deleted;
  for (auto deadline = Clock::now() + kWait; deleted[1] < 5 && Clock::now() < deadline;) {
    std::this_thread::sleep_for(milliseconds(20));
    deleted = (*trimmer)->Deleted();
  }
  EXPECT_EQ(deleted[1], 5);
  EXPECT_FALSE(deleted.contains(0)) << "task 0's only record is its last marker";
  // What a restore of task 1 reads now: d only, from the partition's new
  // log start to its end (d 5, its commit marker 6), progress reported as it goes.
  test_support::TempDir dir;
  std::vector<std::array<int64_t, 3>> progress;
  Result<TaskChangelogRead> read = ReadTaskChangelog(
      topic, 1, dir.File("task-1.log"), [&](int64_t position, int64_t end, uint64_t bytes) {
        progress.push_back({position, end, static_cast<int64_t>(bytes)});
      });
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->records, 1u);
  EXPECT_EQ(read->end, 7);
  std::ifstream chunks(dir.File("task-1.log"), std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(chunks), {}), "d");
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back(), (std::array<int64_t, 3>{7, 7, 1}));
  for (const auto& [position, end, bytes] : progress) {
    EXPECT_GE(position, 5) << "never before the log start";
    EXPECT_LE(position, end);
  }
}

// KIP-447: while an epoch's offsets are pending, a read_committed consumer
// gets no committed offsets. A source starting in mode assign must not wait
// for them (only its own earlier run can have left them, and opening the sink
// aborts them); the committed epoch waits until they commit or abort.
TEST_F(KafkaTxnSinkTest, ASourceStartsPastPendingOffsetsAndItsCommittedEpochWaitsForThem) {
  KafkaSourceOptions options;
  options.brokers = broker_->bootstrap();
  options.impressions_topic = UniqueName("impressions");
  options.clicks_topic = UniqueName("clicks");
  options.group_id = UniqueName("job");
  options.properties = {{"log_level", "4"}};
  ASSERT_NO_FATAL_FAILURE(CreateInput(options.impressions_topic));
  ASSERT_NO_FATAL_FAILURE(CreateInput(options.clicks_topic));
  const PartitionId imp0{StreamKind::kImpression, 0};
  auto first = KafkaSource::Open(options);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto sink = Open();
  ASSERT_TRUE(sink);
  auto send = [&](EpochId epoch, int64_t offset) {
    KafkaPartitionList offsets = (*first)->OffsetsFor({{imp0, offset}}, epoch.value);
    rd_kafka_consumer_group_metadata_t* metadata = (*first)->NewGroupMetadata();
    Status sent = sink->SendOffsets(epoch, offsets.get(), metadata);
    rd_kafka_consumer_group_metadata_destroy(metadata);
    return sent;
  };
  ASSERT_TRUE(sink->Begin({1}).ok());
  ASSERT_TRUE(sink->PreCommit({1}).ok());
  ASSERT_TRUE(send({1}, 5).ok());
  ASSERT_TRUE(sink->Commit({1}).ok());
  ASSERT_TRUE(sink->Begin({2}).ok());
  ASSERT_TRUE(sink->PreCommit({2}).ok());
  ASSERT_TRUE(send({2}, 9).ok());

  // A process that stops while it waits ends the wait.
  std::atomic<bool> stop{false};
  KafkaSourceOptions stopping = options;
  stopping.stop_requested = [&] { return stop.load(); };
  auto third = KafkaSource::Open(stopping);
  ASSERT_TRUE(third.ok()) << third.status().ToString();
  std::jthread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    stop = true;
  });
  Result<uint64_t> stopped = (*third)->CommittedEpoch();
  EXPECT_EQ(stopped.status().code(), StatusCode::kStopped) << stopped.status().ToString();
  EXPECT_NE(stopped.status().message().find("stopped while waiting"), std::string::npos)
      << stopped.status().ToString();

  auto second = KafkaSource::Open(options);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ((*second)->StartPositions().at(imp0), 5) << "committed, the pending 9 left out";
  // Past a few tries (1 s each), so that the wait is asked again.
  std::jthread committer([&] {
    std::this_thread::sleep_for(std::chrono::seconds(3));
    EXPECT_TRUE(sink->Commit({2}).ok());
  });
  Result<uint64_t> epoch = (*second)->CommittedEpoch();
  ASSERT_TRUE(epoch.ok()) << epoch.status().ToString();
  EXPECT_EQ(*epoch, 2u);
}

TEST(KafkaTxnSinkOptionsTest, ValidateNamesTheBadKey) {
  KafkaTransactionalSinkOptions options;
  options.brokers = "127.0.0.1:9";
  options.topic = "samples";
  Status missing = options.Validate();
  EXPECT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("sink.kafka.transactional_id_prefix"), std::string::npos)
      << missing.message();
  auto opened = KafkaTransactionalSink::Open(options);
  EXPECT_FALSE(opened.ok()) << "Open validates";

  options.transactional_id_prefix = "job";
  EXPECT_TRUE(options.Validate().ok()) << options.Validate().ToString();

  options.commit_interval_ms = 20'000;  // needs >= 70 s, has the default 60 s
  Status too_short = options.Validate();
  EXPECT_FALSE(too_short.ok());
  EXPECT_NE(too_short.message().find("sink.kafka.transaction_timeout_ms"), std::string::npos)
      << too_short.message();
  EXPECT_NE(too_short.message().find("70000"), std::string::npos) << too_short.message();
  options.transaction_timeout_ms = 70'000;
  EXPECT_TRUE(options.Validate().ok());

  options.transaction_timeout_ms = 900'001;
  Status too_long = options.Validate();
  EXPECT_FALSE(too_long.ok());
  EXPECT_NE(too_long.message().find("sink.kafka.transaction_timeout_ms"), std::string::npos);

  options.transaction_timeout_ms = 70'000;
  options.dead_letter_topic = options.topic;
  Status same_topic = options.Validate();
  EXPECT_FALSE(same_topic.ok());
  EXPECT_NE(same_topic.message().find("dead_letter.kafka.topic"), std::string::npos);
  options.dead_letter_topic = "dead-letters";
  EXPECT_TRUE(options.Validate().ok());

  options.properties["transactional.id"] = "mine";
  Status reserved = options.Validate();
  EXPECT_FALSE(reserved.ok());
  EXPECT_NE(reserved.message().find("sink.kafka.properties.transactional.id"), std::string::npos);
}

// Every value says what it is: content-type and the published schema's id.
TEST_F(KafkaTxnSinkTest, TfExampleValuesAreTheEncodedSamples) {
  KafkaTransactionalSinkOptions options = Options(SampleFormat::kTfExample);
  options.schema_id = "62932981249d6d55";
  auto opened = KafkaTransactionalSink::Open(options);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto sink = std::move(opened).value();
  std::vector<Sample> samples = Samples("tf", 4);
  samples[1].impression.features = {{"position", 2.0}, {"device", std::string("ios")}};
  ASSERT_TRUE(sink->Begin({1}).ok());
  ASSERT_TRUE(sink->Write(samples).ok());
  ASSERT_TRUE(sink->PreCommit({1}).ok());
  ASSERT_TRUE(sink->Commit({1}).ok());

  Reader reader = Committed();
  std::vector<Record> records = reader.Read(samples.size());
  ASSERT_EQ(records.size(), samples.size());
  for (const Sample& sample : samples) {
    auto it = std::find_if(records.begin(), records.end(), [&](const Record& r) {
      return r.key == sample.impression.impression_id;
    });
    ASSERT_NE(it, records.end()) << sample.impression.impression_id;
    std::string expected;
    AppendSampleValue(SampleFormat::kTfExample, sample, expected);
    EXPECT_EQ(it->value, expected);
    tensorflow::Example example;
    ASSERT_TRUE(example.ParseFromString(it->value));
    EXPECT_EQ(example.features().feature().at("impression_id").bytes_list().value(0),
              sample.impression.impression_id);
    EXPECT_EQ(it->headers["content-type"],
              "application/x-protobuf; messageType=tensorflow.Example");
    EXPECT_EQ(it->headers["ctrjoin-schema-id"], "62932981249d6d55");
  }
}

}  // namespace
}  // namespace ctrjoin
