#include "src/pipeline/source_stage.h"

#include <gtest/gtest.h>

#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace ctrjoin {
namespace {

const PartitionId kImp0{StreamKind::kImpression, 0};
const PartitionId kClk0{StreamKind::kClick, 0};

RawRecord Record(PartitionId p, int64_t offset) {
  return RawRecord{SourcePosition{p.stream, p.partition, Offset{offset}}, "{}"};
}

// Returns the batches it was given, then an error.
class ScriptedSource : public Source {
 public:
  Result<SourceBatch> Next(size_t) override {
    if (batches.empty()) return Status::Unavailable("broker gone");
    SourceBatch b = std::move(batches.front());
    batches.pop_front();
    return b;
  }
  std::string Describe() const override { return "scripted source"; }
  Status ReleaseRevoked() override {
    ++released;
    return Status::Ok();
  }

  std::deque<SourceBatch> batches;
  int released = 0;
};

// Gives a barrier when asked to, or `error` instead.
class ScriptedHooks : public CheckpointHooks {
 public:
  Result<std::shared_ptr<Barrier>> NextBarrier(bool final) override {
    if (!barrier_due && !final) return std::shared_ptr<Barrier>();
    if (!error.ok()) return error;
    barrier_due = false;
    auto barrier = std::make_shared<Barrier>();
    barrier->epoch = ++epochs;
    barrier->final = final;
    return barrier;
  }
  Status OnBarrier(Barrier&) override { return Status::Ok(); }
  Result<std::shared_ptr<Barrier>> BarrierNow() override {
    // The first call finds a barrier still on its way.
    if (std::exchange(in_flight, false)) return std::shared_ptr<Barrier>();
    auto barrier = std::make_shared<Barrier>();
    barrier->epoch = ++epochs;
    return barrier;
  }
  Result<bool> WaitCommitted(uint64_t epoch, std::chrono::milliseconds) override {
    waited_for.push_back(epoch);
    return waited_for.size() > 2;  // committed on the third wait
  }

  bool barrier_due = false;
  bool in_flight = true;
  Status error;
  uint64_t epochs = 0;
  std::vector<uint64_t> waited_for;
};

class SourceStageTest : public ::testing::Test {
 protected:
  SourceStage MakeStage() {
    return SourceStage(&source_, &hooks_, &metrics_, &run_, /*batch_size=*/100, KeyGroups{12, 3},
                       SourcePositions{{kClk0, 40}});
  }

  ScriptedSource source_;
  ScriptedHooks hooks_;
  PipelineMetrics metrics_;
  RunControl run_;
};

TEST_F(SourceStageTest, ABarrierCarriesThePositionsReadBeforeIt) {
  SourceBatch batch;
  batch.records = {Record(kImp0, 3), Record(kImp0, 4), Record(kClk0, 41)};
  source_.batches.push_back(std::move(batch));
  SourceStage stage = MakeStage();

  SourcePtr read = stage.Next();
  ASSERT_NE(read, nullptr);
  EXPECT_TRUE(read->polled);
  EXPECT_EQ(read->batch.records.size(), 3u);
  EXPECT_EQ(read->barrier, nullptr);

  hooks_.barrier_due = true;
  SourcePtr barrier = stage.Next();
  ASSERT_NE(barrier->barrier, nullptr);
  EXPECT_FALSE(barrier->polled);  // a barrier alone reads nothing
  EXPECT_EQ(barrier->seq, read->seq + 1);
  EXPECT_EQ(barrier->barrier->meta.positions, (SourcePositions{{kImp0, 5}, {kClk0, 42}}));
  EXPECT_EQ(barrier->barrier->meta.shards, 3u);
  EXPECT_EQ(barrier->barrier->meta.key_groups, 12u);
  EXPECT_EQ(barrier->barrier->marks.size(), 3u);  // a slot for each shard
  EXPECT_EQ(barrier->barrier->batch_reads.size(), 1u);
}

TEST_F(SourceStageTest, AnEpochTheHooksCannotOpenFailsTheRun) {
  hooks_.barrier_due = true;
  hooks_.error = Status::IoError("checkpoint 1: disk full");
  SourceStage stage = MakeStage();

  SourcePtr msg = stage.Next();

  EXPECT_EQ(msg->barrier, nullptr);
  EXPECT_FALSE(msg->polled);
  EXPECT_TRUE(msg->last);  // the input ends with the failure
  ASSERT_TRUE(run_.failed());
  EXPECT_EQ(run_.error().code(), StatusCode::kIoError);
  EXPECT_NE(run_.error().message().find("checkpoint 1: disk full"), std::string::npos)
      << run_.error().message();
  EXPECT_EQ(stage.Next(), nullptr);
}

TEST_F(SourceStageTest, ASourceErrorFailsTheRunAndEndsTheInput) {
  SourceStage stage = MakeStage();

  SourcePtr failed = stage.Next();  // the source has nothing: an error
  ASSERT_NE(failed, nullptr);
  EXPECT_TRUE(failed->last);
  ASSERT_TRUE(run_.failed());
  EXPECT_EQ(run_.error().message(), "scripted source: broker gone");
  EXPECT_EQ(failed->barrier, nullptr);  // no checkpoint of a failed run
  EXPECT_EQ(stage.Next(), nullptr);
}

TEST_F(SourceStageTest, AStopEndsTheInputWithTheFinalBarrier) {
  SourceStage stage = MakeStage();
  run_.RequestStop();

  SourcePtr last = stage.Next();

  ASSERT_NE(last, nullptr);
  EXPECT_TRUE(last->last);
  EXPECT_FALSE(last->polled);
  ASSERT_NE(last->barrier, nullptr);
  EXPECT_TRUE(last->barrier->final);
  EXPECT_EQ(stage.Next(), nullptr);
}

// Mode group with checkpoints: a revocation gets a barrier right behind the
// records read before it; the partitions are given up only once that
// epoch committed, and their positions leave later checkpoints.
TEST_F(SourceStageTest, RevokedPartitionsAreGivenUpOnlyOnceTheirEpochCommitted) {
  SourceBatch revoking;
  revoking.records = {Record(kImp0, 7)};
  revoking.revoking = {kImp0, kClk0};
  source_.batches.push_back(std::move(revoking));
  SourceBatch waiting;
  waiting.suspended = true;
  source_.batches.push_back(std::move(waiting));
  SourceStage stage = MakeStage();

  SourcePtr read = stage.Next();
  ASSERT_NE(read->barrier, nullptr) << run_.error().ToString();
  EXPECT_EQ(read->batch.records.size(), 1u);  // the barrier comes after them
  EXPECT_EQ(read->barrier->meta.positions, (SourcePositions{{kImp0, 8}, {kClk0, 40}}));
  EXPECT_EQ(source_.released, 0);

  SourcePtr next = stage.Next();
  EXPECT_EQ(hooks_.waited_for, (std::vector<uint64_t>{1, 1, 1}));
  EXPECT_EQ(source_.released, 1);
  ASSERT_FALSE(run_.failed()) << run_.error().ToString();
  EXPECT_FALSE(next->polled);  // suspended: it must not move the watermark

  hooks_.barrier_due = true;
  SourcePtr barrier = stage.Next();
  ASSERT_NE(barrier->barrier, nullptr);
  EXPECT_TRUE(barrier->barrier->meta.positions.empty());
}

}  // namespace
}  // namespace ctrjoin
