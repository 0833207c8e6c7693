// KafkaTransactionalSink against librdkafka's in-process mock cluster with
// broker errors injected into each request of a transaction: Produce,
// AddPartitionsToTxn, TxnOffsetCommit (SendOffsets) and EndTxn (commit and
// abort). Retriable errors are ridden out; abortable ones fail the epoch with
// Effect::kNoEffect, leave nothing to undo but an Abort, and the next epochs
// on the same transactional id work; fatal ones (fencing) are
// Effect::kFenced. Also: a commit held up at the broker does not hold up the
// next epoch.
//
// Only the Status of each call is checked here, and that the injected errors
// were used up. The mock cluster does not hide aborted records from
// read_committed consumers (no transaction markers, no aborted-transaction
// lists: its last stable offset is the log end), so what becomes visible is
// checked against the test broker in kafka_txn_sink_test.cc.

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "sinks/kafka_txn_sink.h"
#include "src/io/kafka_client.h"
#include "tests/support/kafka_test_util.h"

namespace ctrjoin {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kTopic = "samples";
constexpr const char* kInput = "input";
constexpr const char* kGroup = "job";
constexpr int32_t kBroker = 1;  // the mock cluster's only broker
constexpr int kOperationTimeoutMs = 5'000;
constexpr auto kWait = std::chrono::seconds(10);  // bound for polling the mock

// Kafka protocol request types (ApiKey), for the error injection.
enum class Api : int16_t {
  kProduce = 0,
  kAddPartitionsToTxn = 24,
  kEndTxn = 26,
  kTxnOffsetCommit = 28,
};

const char* ApiName(Api api) {
  switch (api) {
    case Api::kProduce: return "Produce";
    case Api::kAddPartitionsToTxn: return "AddPartitionsToTxn";
    case Api::kEndTxn: return "EndTxn";
    case Api::kTxnOffsetCommit: return "TxnOffsetCommit";
  }
  return "?";
}

// Which call of an epoch reports the injected error.
enum class Step { kNone, kBegin, kDelivery /* Write or PreCommit */, kSendOffsets, kEnd };

void PrintTo(Step step, std::ostream* os) {
  switch (step) {
    case Step::kNone: *os << "none"; return;
    case Step::kBegin: *os << "Begin"; return;
    case Step::kDelivery: *os << "Write/PreCommit"; return;
    case Step::kSendOffsets: *os << "SendOffsets"; return;
    case Step::kEnd: *os << "Commit/Abort"; return;
  }
}

enum class End { kCommit, kAbort };

// The first call of an epoch that failed, if any.
struct Failure {
  Step step = Step::kNone;
  Status status;
};

// One mock cluster per test (destroying one takes librdkafka about a
// second, so the cases of a kind share it); one sink per case.
class KafkaTxnMockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cluster = test_support::MockKafkaCluster::Start({{"log_level", "3"}});
    ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
    cluster_ = std::move(cluster).value();
    ASSERT_EQ(rd_kafka_mock_topic_create(cluster_->get(), kTopic, 3, 1),
              RD_KAFKA_RESP_ERR_NO_ERROR);
    ASSERT_EQ(rd_kafka_mock_topic_create(cluster_->get(), kInput, 1, 1),
              RD_KAFKA_RESP_ERR_NO_ERROR);
  }

  void TearDown() override {
    sink_.reset();  // before the cluster it talks to
    cluster_.reset();
  }

  // Replaces the sink by a new one on transactional ids "<prefix>-0".. .
  void OpenSink(const std::string& prefix, int pool_size) {
    sink_.reset();
    KafkaTransactionalSinkOptions options;
    options.brokers = cluster_->bootstraps();
    options.topic = kTopic;
    options.transactional_id_prefix = prefix;
    options.pool_size = pool_size;
    options.operation_timeout_ms = kOperationTimeoutMs;
    // librdkafka 2.0 looks up a new topic's partitions only on its next
    // periodic metadata refresh (1 s by default): make that quick. Quick
    // retries too. Quiet: the injected errors would be logged as errors.
    options.properties = {{"log_level", "2"},
                          {"topic.metadata.refresh.interval.ms", "50"},
                          {"retry.backoff.ms", "10"}};
    auto sink = KafkaTransactionalSink::Open(options);
    ASSERT_TRUE(sink.ok()) << sink.status().ToString();
    sink_ = std::move(sink).value();
  }

  // The next errors.size() requests of type api to the broker fail with
  // errors[0], errors[1], ..., each answered after rtt_ms.
  void Inject(Api api, const std::vector<rd_kafka_resp_err_t>& errors, int rtt_ms = 0) {
    for (rd_kafka_resp_err_t error : errors) {
      ASSERT_EQ(rd_kafka_mock_broker_push_request_error_rtts(
                    cluster_->get(), kBroker, static_cast<int16_t>(api), 1, error, rtt_ms),
                RD_KAFKA_RESP_ERR_NO_ERROR);
    }
  }

  // Injected errors of type api not used up yet.
  size_t Pending(Api api) const {
    size_t count = 0;
    EXPECT_EQ(rd_kafka_mock_broker_error_stack_cnt(cluster_->get(), kBroker,
                                                   static_cast<int16_t>(api), &count),
              RD_KAFKA_RESP_ERR_NO_ERROR);
    return count;
  }

  Status SendOffsets(EpochId epoch) {
    KafkaPartitionList offsets(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(offsets.get(), kInput, 0)->offset =
        static_cast<int64_t>(10 * epoch.value);
    rd_kafka_consumer_group_metadata_t* group = rd_kafka_consumer_group_metadata_new(kGroup);
    Status status = sink_->SendOffsets(epoch, offsets.get(), group);
    rd_kafka_consumer_group_metadata_destroy(group);
    return status;
  }

  static std::vector<Sample> Samples(EpochId epoch) {
    std::vector<Sample> out(12);
    for (size_t i = 0; i < out.size(); ++i) {
      out[i].impression.impression_id = "e" + std::to_string(epoch.value) + "-" + std::to_string(i);
    }
    return out;
  }

  // Begin(epoch), Write, PreCommit, SendOffsets, then Commit or Abort, as
  // the pipeline and the checkpoint coordinator call them; stops at the
  // first failure.
  Failure RunEpoch(EpochId epoch, End end = End::kCommit) {
    Status status = sink_->Begin(epoch);
    if (!status.ok()) return {Step::kBegin, status};
    status = sink_->Write(Samples(epoch));
    if (status.ok()) status = sink_->PreCommit(epoch);
    if (!status.ok()) return {Step::kDelivery, status};
    status = SendOffsets(epoch);
    if (!status.ok()) return {Step::kSendOffsets, status};
    status = end == End::kCommit ? sink_->Commit(epoch) : sink_->Abort(epoch);
    if (!status.ok()) return {Step::kEnd, status};
    return {};
  }

  // One injection and what the sink must make of it.
  struct Case {
    const char* name;
    Api api;
    std::vector<rd_kafka_resp_err_t> errors;
    End end;        // how the epoch ends when nothing fails
    Step fails_at;  // kNone: ridden out
    Effect effect;  // of the failure
  };

  // On a fresh sink with one transactional id, so that the epochs after the
  // failed one run on its producer: injects the case's errors, runs epoch 1,
  // checks where it failed and how, aborts it as the coordinator would,
  // and runs epochs 2 and 3 (after a restart where messages were lost).
  void Run(const Case& c) {
    SCOPED_TRACE(c.name);
    ASSERT_NO_FATAL_FAILURE(OpenSink(std::string("mock-txn-") + c.name, 1));
    ASSERT_NO_FATAL_FAILURE(Inject(c.api, c.errors));
    const EpochId epoch{1};
    const Failure failure = RunEpoch(epoch, c.end);
    EXPECT_EQ(Pending(c.api), 0u) << "every injected " << ApiName(c.api) << " error was hit";
    ASSERT_EQ(failure.step, c.fails_at) << failure.status.ToString();
    if (c.fails_at == Step::kNone) {
      RunNext();
      return;
    }
    EXPECT_EQ(failure.status.effect(), c.effect) << failure.status.ToString();
    if (c.effect == Effect::kFenced) {
      Status again = sink_->Abort(epoch);
      EXPECT_EQ(again.effect(), Effect::kFenced) << "still unusable: " << again.ToString();
      return;
    }
    if (failure.step == Step::kSendOffsets) {
      // The transaction can only be aborted: Commit does so, and says it
      // had no effect.
      Status commit = sink_->Commit(epoch);
      EXPECT_FALSE(commit.ok());
      EXPECT_EQ(commit.effect(), Effect::kNoEffect) << commit.ToString();
      EXPECT_NE(commit.message().find("aborted"), std::string::npos) << commit.message();
    }
    Status aborted = sink_->Abort(epoch);
    EXPECT_TRUE(aborted.ok()) << aborted.ToString();
    if (failure.step == Step::kDelivery) {
      // Messages were lost: the producer is spent, and this process never
      // initializes the id again (that could fence a newer instance). The
      // run ends; the restart's Open initializes it.
      Status next = sink_->Begin(EpochId{2});
      EXPECT_EQ(next.effect(), Effect::kNoEffect) << next.ToString();
      EXPECT_NE(next.message().find("a restart initializes it again"), std::string::npos)
          << next.ToString();
      ASSERT_NO_FATAL_FAILURE(OpenSink(std::string("mock-txn-") + c.name, 1));
    }
    RunNext();
  }

  void RunNext() {
    for (EpochId next : {EpochId{2}, EpochId{3}}) {
      const Failure later = RunEpoch(next);
      EXPECT_EQ(later.step, Step::kNone)
          << "epoch " << next.value << ": " << later.status.ToString();
    }
  }

  std::unique_ptr<test_support::MockKafkaCluster> cluster_;
  std::unique_ptr<KafkaTransactionalSink> sink_;
};

using enum Api;
using enum Effect;
using enum Step;

// Errors librdkafka retries, or has the caller retry: the epoch commits (or
// aborts) as if nothing happened. (Each coordinator error costs librdkafka a
// 0.5 s coordinator lookup, hence few of them.)
TEST_F(KafkaTxnMockTest, RetriableErrorsAreRiddenOut) {
  // clang-format off
  const Case cases[] = {
      {"Produce", kProduce,
       {RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION},
       End::kCommit, kNone, kNoEffect},
      {"AddPartitionsToTxn", kAddPartitionsToTxn,
       {RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS, RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS},
       End::kCommit, kNone, kNoEffect},
      {"TxnOffsetCommit", kTxnOffsetCommit, {RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE},
       End::kCommit, kNone, kNoEffect},
      {"EndTxnCommit", kEndTxn,
       {RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE, RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS},
       End::kCommit, kNone, kNoEffect},
      {"EndTxnAbort", kEndTxn,
       {RD_KAFKA_RESP_ERR_NOT_COORDINATOR, RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS},
       End::kAbort, kNone, kNoEffect},
      // librdkafka hands an abort that EndTxn refused back as "abortable";
      // the sink aborts again.
      {"EndTxnAbortRefused", kEndTxn, {RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE}, End::kAbort, kNone,
       kNoEffect},
  };
  // clang-format on
  for (const Case& c : cases) Run(c);
}

// Errors after which the transaction can only be aborted (librdkafka's
// txn_requires_abort): the epoch fails with no effect, and the next ones
// work.
TEST_F(KafkaTxnMockTest, AbortableErrorsFailTheEpochWithNoEffect) {
  // clang-format off
  const Case cases[] = {
      {"Produce", kProduce, {RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED}, End::kCommit,
       kDelivery, kNoEffect},
      {"AddPartitionsToTxn", kAddPartitionsToTxn, {RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED},
       End::kCommit, kDelivery, kNoEffect},
      {"TxnOffsetCommit", kTxnOffsetCommit, {RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED},
       End::kCommit, kSendOffsets, kNoEffect},
      {"EndTxnCommit", kEndTxn, {RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED}, End::kCommit,
       kEnd, kNoEffect},
  };
  // clang-format on
  for (const Case& c : cases) Run(c);
}

// A newer producer took the transactional id over: the sink must stop.
TEST_F(KafkaTxnMockTest, FencingErrorsAreFenced) {
  // clang-format off
  const Case cases[] = {
      {"Produce", kProduce, {RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH}, End::kCommit, kDelivery,
       kFenced},
      {"AddPartitionsToTxn", kAddPartitionsToTxn, {RD_KAFKA_RESP_ERR_PRODUCER_FENCED},
       End::kCommit, kDelivery, kFenced},
      {"TxnOffsetCommit", kTxnOffsetCommit, {RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH},
       End::kCommit, kSendOffsets, kFenced},
      {"EndTxnCommit", kEndTxn, {RD_KAFKA_RESP_ERR_PRODUCER_FENCED}, End::kCommit, kEnd, kFenced},
      {"EndTxnAbort", kEndTxn, {RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH}, End::kAbort, kEnd,
       kFenced},
  };
  // clang-format on
  for (const Case& c : cases) Run(c);
}

// The committer thread's commit of epoch 1 waits on a slow EndTxn answer;
// meanwhile the sink thread begins, writes and pre-commits epoch 2.
TEST_F(KafkaTxnMockTest, SlowCommitDoesNotHoldUpTheNextEpoch) {
  constexpr int kEndTxnDelayMs = 1'500;  // far longer than writing an epoch to the mock
  ASSERT_NO_FATAL_FAILURE(OpenSink("mock-txn-slow", 2));
  ASSERT_TRUE(sink_->Begin({1}).ok());
  ASSERT_TRUE(sink_->Write(Samples({1})).ok());
  ASSERT_TRUE(sink_->PreCommit({1}).ok());
  ASSERT_NO_FATAL_FAILURE(Inject(kEndTxn, {RD_KAFKA_RESP_ERR_NO_ERROR}, kEndTxnDelayMs));

  std::atomic<bool> committed{false};
  Status commit;
  {
    std::jthread committer([&] {
      commit = sink_->Commit({1});
      committed = true;
    });
    // Epoch 1's EndTxn has reached the broker: its commit is under way.
    const auto deadline = Clock::now() + kWait;
    while (Pending(kEndTxn) > 0 && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ASSERT_EQ(Pending(kEndTxn), 0u);
    Status status = sink_->Begin({2});
    ASSERT_TRUE(status.ok()) << status.ToString();
    status = sink_->Write(Samples({2}));
    ASSERT_TRUE(status.ok()) << status.ToString();
    status = sink_->PreCommit({2});
    ASSERT_TRUE(status.ok()) << status.ToString();
    EXPECT_FALSE(committed) << "epoch 2 waited for epoch 1's commit";
  }  // joins the committer
  ASSERT_TRUE(commit.ok()) << commit.ToString();
  Status status = sink_->Commit({2});
  EXPECT_TRUE(status.ok()) << status.ToString();
}

}  // namespace
}  // namespace ctrjoin
