#include "src/pipeline/sink_aligner.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace ctrjoin {
namespace {

// What the sink and the hooks were asked to do, in order: "write <ids>" and
// "barrier <epoch> <state_bytes>".
using Journal = std::vector<std::string>;

class JournalSink : public SampleSink {
 public:
  explicit JournalSink(Journal* journal) : journal_(journal) {}
  Status Write(std::span<const Sample> samples) override {
    ++writes;
    if (fail) return Status::IoError("disk full");
    std::string entry = "write";
    for (const Sample& s : samples) entry += " " + s.impression.impression_id;
    journal_->push_back(entry);
    return Status::Ok();
  }
  Status Flush() override { return Status::Ok(); }
  std::string Describe() const override { return "journal sink"; }

  bool fail = false;
  int writes = 0;

 private:
  Journal* const journal_;
};

class JournalDeadLetters : public DeadLetterSink {
 public:
  explicit JournalDeadLetters(Journal* journal) : journal_(journal) {}
  Status Write(const DeadLetter& letter) override {
    if (fail) return Status::IoError("disk full");
    journal_->push_back("dead letter " + letter.payload);
    return Status::Ok();
  }
  Status Flush() override { return Status::Ok(); }

  bool fail = false;

 private:
  Journal* const journal_;
};

class JournalHooks : public CheckpointHooks {
 public:
  explicit JournalHooks(Journal* journal) : journal_(journal) {}
  Result<std::shared_ptr<Barrier>> NextBarrier(bool) override { return std::shared_ptr<Barrier>(); }
  Status OnBarrier(Barrier& barrier) override {
    ++calls;
    journal_->push_back("barrier " + std::to_string(barrier.epoch) + " " +
                        std::to_string(barrier.meta.state_bytes));
    return result;
  }

  Status result;
  int calls = 0;

 private:
  Journal* const journal_;
};

// One shard's output for batch `seq`.
OutPtr Output(uint64_t seq, const std::vector<std::string>& ids,
              std::shared_ptr<Barrier> barrier = nullptr, uint64_t state_bytes = 0) {
  auto out = std::make_shared<ShardOut>();
  out->seq = seq;
  for (const std::string& id : ids) {
    Sample s;
    s.impression.impression_id = id;
    s.label = 1;
    out->samples.push_back(std::move(s));
  }
  out->barrier = std::move(barrier);
  out->state_bytes = state_bytes;
  return out;
}

// Shard 0's output for batch `seq`, carrying the batch's dead letters
// (their payloads).
OutPtr WithDeadLetters(OutPtr out, const std::vector<std::string>& payloads) {
  for (const std::string& payload : payloads) {
    out->dead_letters.push_back(
        DeadLetter{{StreamKind::kImpression, 0, Offset{1}}, "bad", payload});
  }
  return out;
}

std::shared_ptr<Barrier> BarrierOfEpoch(uint64_t epoch) {
  auto barrier = std::make_shared<Barrier>();
  barrier->epoch = epoch;
  return barrier;
}

class SinkAlignerTest : public ::testing::Test {
 protected:
  // Hands the aligner one output; counts the tokens it returns to the source.
  void Accept(OutPtr out) {
    aligner_.Accept(std::move(out), [this] { ++tokens_; });
  }

  Journal journal_;
  JournalSink sink_{&journal_};
  JournalDeadLetters dead_letters_{&journal_};
  JournalHooks hooks_{&journal_};
  PipelineMetrics metrics_;
  RunControl run_;
  SinkAligner aligner_{/*shards=*/2, &sink_, &dead_letters_, &hooks_, &metrics_, &run_};
  int tokens_ = 0;
};

// A shard's output of a batch before a barrier that already completed (a
// serial node handing its results on out of order) would land in the next
// epoch although the barrier's offsets cover it: the run fails instead, and
// nothing of it is written. The pipeline's per-shard sequencers keep this
// from happening.
TEST_F(SinkAlignerTest, AnOutputBehindACompletedBarrierFailsTheRun) {
  std::shared_ptr<Barrier> barrier = BarrierOfEpoch(2);
  barrier->final = true;
  Accept(Output(0, {}));           // shard 1, batch 0
  Accept(Output(1, {}, barrier));  // shard 1, the barrier
  Accept(Output(1, {}, barrier));  // shard 0's barrier overtook its batch 0
  EXPECT_EQ(journal_, (Journal{"barrier 2 0"}));
  Accept(WithDeadLetters(Output(0, {"a"}), {"x"}));  // shard 0, batch 0, late
  EXPECT_TRUE(run_.failed());
  EXPECT_NE(run_.error().message().find("arrived after the barrier"), std::string::npos)
      << run_.error().ToString();
  EXPECT_EQ(journal_, (Journal{"barrier 2 0"})) << "nothing written into a closed epoch";
  EXPECT_EQ(tokens_, 2) << "the batch's token still comes back";
}

TEST_F(SinkAlignerTest, OutputPastABarrierWaitsForEveryShardAndTheHooks) {
  Accept(Output(0, {"a"}));
  EXPECT_EQ(tokens_, 0);  // shard 1 has not delivered batch 0 yet
  Accept(Output(0, {"b"}));
  EXPECT_EQ(tokens_, 1);

  std::shared_ptr<Barrier> barrier = BarrierOfEpoch(7);
  Accept(Output(1, {}, barrier, /*state_bytes=*/10));  // shard 0 passed the barrier
  Accept(Output(2, {"c"}));                            // and went on: held
  EXPECT_EQ(journal_, (Journal{"write a", "write b"}));
  EXPECT_EQ(tokens_, 1);

  Accept(Output(1, {}, barrier, /*state_bytes=*/5));  // shard 1 passed it too
  EXPECT_EQ(journal_, (Journal{"write a", "write b", "barrier 7 15", "write c"}));
  EXPECT_EQ(tokens_, 2);  // batch 2 still waits for shard 1

  Accept(Output(2, {"d"}));
  EXPECT_EQ(journal_, (Journal{"write a", "write b", "barrier 7 15", "write c", "write d"}));
  EXPECT_EQ(tokens_, 3);
  EXPECT_EQ(metrics_.samples_out.Get(), 4u);
  EXPECT_FALSE(run_.failed());
}

TEST_F(SinkAlignerTest, DeadLettersPastABarrierWaitForItLikeSamples) {
  Accept(WithDeadLetters(Output(0, {"a"}), {"x"}));
  Accept(Output(0, {}));
  std::shared_ptr<Barrier> barrier = BarrierOfEpoch(3);
  Accept(WithDeadLetters(Output(1, {}, barrier), {"y"}));  // before the barrier: epoch 3
  Accept(WithDeadLetters(Output(2, {"b"}), {"z"}));        // after it: held
  EXPECT_EQ(journal_, (Journal{"dead letter x", "write a", "dead letter y"}));

  Accept(Output(1, {}, barrier));
  Accept(Output(2, {}));
  EXPECT_EQ(journal_, (Journal{"dead letter x", "write a", "dead letter y", "barrier 3 0",
                               "dead letter z", "write b"}));
  EXPECT_EQ(tokens_, 3);
  EXPECT_FALSE(run_.failed());
}

TEST_F(SinkAlignerTest, ADeadLetterWriteErrorFailsTheRunAndReturnsTheTokens) {
  dead_letters_.fail = true;
  Accept(WithDeadLetters(Output(0, {"a"}), {"x"}));
  Accept(Output(0, {"b"}));

  ASSERT_TRUE(run_.failed());
  EXPECT_EQ(run_.error().message(), "dead-letter output: disk full");
  EXPECT_EQ(tokens_, 1);
  EXPECT_TRUE(journal_.empty());
}

TEST_F(SinkAlignerTest, EveryTokenComesBackAfterASinkFailure) {
  sink_.fail = true;
  Accept(Output(0, {"a"}));
  ASSERT_TRUE(run_.failed());
  EXPECT_EQ(run_.error().message(), "journal sink: disk full");
  Accept(Output(0, {"b"}));  // not written: the run has failed
  EXPECT_EQ(tokens_, 1);

  std::shared_ptr<Barrier> barrier = BarrierOfEpoch(8);
  Accept(Output(1, {}, barrier));
  Accept(Output(2, {"c"}));
  Accept(Output(1, {}, barrier));
  Accept(Output(2, {"d"}));

  EXPECT_EQ(tokens_, 3);
  EXPECT_EQ(sink_.writes, 1);
  EXPECT_EQ(hooks_.calls, 0);  // a failed run completes no checkpoint
  EXPECT_TRUE(journal_.empty());
}

TEST_F(SinkAlignerTest, ABarrierTheHooksFailToCompleteFailsTheRunAndReleasesTheTokens) {
  hooks_.result = Status::IoError("rename failed");
  std::shared_ptr<Barrier> barrier = BarrierOfEpoch(9);
  Accept(Output(0, {}, barrier));
  Accept(Output(1, {"a"}));  // held behind the barrier
  Accept(Output(0, {}, barrier));

  ASSERT_TRUE(run_.failed());
  EXPECT_EQ(run_.error().message(), "checkpoint 9: rename failed");
  EXPECT_EQ(tokens_, 1);
  Accept(Output(1, {"b"}));
  EXPECT_EQ(tokens_, 2);
  // What came after the failed barrier belongs to no epoch: not written.
  EXPECT_EQ(journal_, (Journal{"barrier 9 0"}));
}

TEST_F(SinkAlignerTest, AnotherStagesFailureStillReturnsTheTokens) {
  std::shared_ptr<Barrier> barrier = BarrierOfEpoch(10);
  Accept(Output(0, {"a"}));
  Accept(Output(1, {}, barrier));
  run_.Fail(Status::Internal("shard: boom"));  // e.g. a shard; its outputs come empty
  Accept(Output(2, {"c"}));
  Accept(Output(0, {}));
  Accept(Output(1, {}, barrier));
  Accept(Output(2, {}));

  EXPECT_EQ(tokens_, 3);
  EXPECT_EQ(journal_, (Journal{"write a"}));
  EXPECT_EQ(hooks_.calls, 0);
}

}  // namespace
}  // namespace ctrjoin
