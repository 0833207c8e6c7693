#include "src/pipeline/router.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "src/core/hash.h"

namespace ctrjoin {
namespace {

const PartitionId kImp0{StreamKind::kImpression, 0};
const PartitionId kImp1{StreamKind::kImpression, 1};
const PartitionId kClk0{StreamKind::kClick, 0};
// No out-of-orderness, no idleness: the watermark is the slowest partition's
// latest event time.
const WatermarkOptions kExactWatermarks{/*out_of_orderness_ms=*/0, /*idle_timeout_ms=*/0};

ParsedEvent ImpressionAt(PartitionId partition, int64_t ts, const std::string& id) {
  Impression imp;
  imp.impression_id = id;
  imp.ts = EventTime{ts};
  return ParsedEvent{partition, imp.ts, KeyedEvent{ImpressionKey(id), std::move(imp)}};
}

ParsedEvent ClickAt(PartitionId partition, int64_t ts, const std::string& id) {
  Click click{id, EventTime{ts}};
  return ParsedEvent{partition, click.ts, KeyedEvent{ImpressionKey(id), std::move(click)}};
}

// A batch as the source read it (polled), after parsing.
ParsedMsg Polled(uint64_t seq, std::vector<ParsedEvent> events) {
  ParsedMsg msg;
  msg.seq = seq;
  msg.polled = true;
  msg.events = std::move(events);
  return msg;
}

size_t EventCount(const std::vector<ShardPtr>& outs) {
  size_t n = 0;
  for (const ShardPtr& out : outs) n += out->batch.events.size();
  return n;
}

class RouterTest : public ::testing::Test {
 protected:
  static constexpr uint32_t kKeyGroups = 64;
  Router MakeRouter(uint32_t shards, int64_t end_after_window_ms = -1) {
    return Router(kExactWatermarks, CheckpointMeta{}, KeyGroups{kKeyGroups, shards},
                  end_after_window_ms, &metrics_, &run_);
  }

  RunControl run_;
  PipelineMetrics metrics_;
};

TEST_F(RouterTest, OneMessagePerShardWithTheEventsOfItsKeys) {
  constexpr uint32_t kShards = 4;
  Router router = MakeRouter(kShards);
  std::vector<ParsedEvent> events;
  for (int i = 0; i < 40; ++i) events.push_back(ImpressionAt(kImp0, 1000 + i, std::to_string(i)));
  ParsedMsg in = Polled(7, std::move(events));
  in.last = true;

  std::vector<ShardPtr> outs = router.Route(in);

  ASSERT_EQ(outs.size(), kShards);
  EXPECT_EQ(EventCount(outs), 40u);
  for (uint32_t i = 0; i < kShards; ++i) {
    EXPECT_EQ(outs[i]->seq, 7u);
    EXPECT_TRUE(outs[i]->last);
    EXPECT_EQ(outs[i]->batch.watermark, EventTime{1039});
    for (const KeyedEvent& e : outs[i]->batch.events) {
      // The shard owning the key's group: groups [16 i, 16 (i + 1)).
      EXPECT_EQ((e.key % kKeyGroups) / (kKeyGroups / kShards), i);
    }
  }
  EXPECT_EQ(metrics_.impressions_in.Get(), 40u);
  EXPECT_EQ(metrics_.batches.Get(), 1u);
}

TEST_F(RouterTest, RevokedPartitionsRecordsDoNotBringItBackIntoTheWatermark) {
  Router router = MakeRouter(2);
  ParsedMsg first = Polled(0, {});
  first.events.push_back(ImpressionAt(kImp0, 1000, "a"));
  first.events.push_back(ImpressionAt(kImp1, 5000, "b"));
  first.meta.assigned = {kImp0, kImp1};
  EXPECT_EQ(router.Route(first)[0]->batch.watermark, EventTime{1000});
  EXPECT_EQ(metrics_.assigned_partitions.Get(), 2);

  // An eager rebalance revokes both partitions and gives kImp1 back; records
  // of kImp0 fetched before the revocation still arrive with it.
  ParsedMsg rebalanced = Polled(1, {});
  rebalanced.events.push_back(ImpressionAt(kImp0, 2000, "c"));
  rebalanced.events.push_back(ImpressionAt(kImp1, 6000, "d"));
  rebalanced.meta.revoked = {kImp0, kImp1};
  rebalanced.meta.assigned = {kImp1};
  std::vector<ShardPtr> outs = router.Route(rebalanced);
  // kImp0 back in the tracker would hold the watermark at 2000; kImp1
  // treated as gone would hold it where it was.
  EXPECT_EQ(outs[0]->batch.watermark, EventTime{6000});
  EXPECT_EQ(outs[1]->batch.watermark, EventTime{6000});
  EXPECT_EQ(EventCount(outs), 2u);  // the records themselves are still routed
  EXPECT_EQ(metrics_.assigned_partitions.Get(), 1);

  ParsedMsg next = Polled(2, {});
  next.events.push_back(ImpressionAt(kImp1, 7000, "e"));
  EXPECT_EQ(router.Route(next)[0]->batch.watermark, EventTime{7000});

  // A barrier alone: the checkpoint keeps kImp1 only, and the barrier
  // travels to every shard.
  ParsedMsg barrier_msg;
  barrier_msg.seq = 3;
  barrier_msg.barrier = std::make_shared<Barrier>();
  outs = router.Route(barrier_msg);
  const std::vector<std::pair<PartitionId, EventTime>> kept = {{kImp1, EventTime{7000}}};
  EXPECT_EQ(barrier_msg.barrier->meta.partition_max_ts, kept);
  EXPECT_EQ(barrier_msg.barrier->meta.watermark, EventTime{7000});
  for (const ShardPtr& out : outs) {
    EXPECT_EQ(out->batch.barrier, barrier_msg.barrier);
  }
  EXPECT_FALSE(run_.failed());
}

TEST_F(RouterTest, ReplayEndsOnceTheWatermarkClosedTheLatestImpressionsWindow) {
  Router router = MakeRouter(1, /*end_after_window_ms=*/100);
  ParsedMsg first = Polled(0, {});
  first.events.push_back(ImpressionAt(kImp0, 1000, "a"));
  first.events.push_back(ClickAt(kClk0, 1050, "a"));
  first.meta.assigned = {kImp0, kClk0};
  EXPECT_EQ(router.Route(first)[0]->batch.watermark, EventTime{1000});

  // Every impression partition finished; the window [1000, 1100] of the
  // latest impression closes once the clicks move the watermark past 1100.
  ParsedMsg finished = Polled(1, {});
  finished.meta.finished = {kImp0};
  ParsedMsg at_window_end = Polled(2, {});
  at_window_end.events.push_back(ClickAt(kClk0, 1100, "x"));
  EXPECT_EQ(router.Route(finished)[0]->batch.watermark, EventTime{1050});
  std::vector<ShardPtr> outs = router.Route(at_window_end);
  EXPECT_EQ(outs[0]->batch.watermark, EventTime{1100});
  EXPECT_FALSE(outs[0]->batch.end_of_input);
  EXPECT_FALSE(run_.stop_requested());

  ParsedMsg past = Polled(3, {});
  past.events.push_back(ClickAt(kClk0, 1101, "y"));
  outs = router.Route(past);
  EXPECT_TRUE(outs[0]->batch.end_of_input);
  EXPECT_TRUE(past.meta.end_of_input);
  EXPECT_EQ(outs[0]->batch.watermark, EventTime::Max());
  EXPECT_EQ(outs[0]->batch.events.size(), 1u);
  EXPECT_TRUE(run_.stop_requested());

  // Whatever the source still delivers belongs to no window of the range.
  ParsedMsg after = Polled(4, {});
  after.events.push_back(ClickAt(kClk0, 1200, "z"));
  after.dead_letters.push_back(DeadLetter{{StreamKind::kClick, 0, Offset{9}}, "bad json", "{"});
  outs = router.Route(after);
  EXPECT_EQ(EventCount(outs), 0u);
  EXPECT_EQ(metrics_.events_past_end.Get(), 2u);
  EXPECT_TRUE(outs[0]->dead_letters.empty());
  EXPECT_FALSE(run_.failed());
}

TEST_F(RouterTest, DeadLettersTravelWithShardZerosMessageInSourceOrder) {
  Router router = MakeRouter(3);
  ParsedMsg in = Polled(0, {});
  in.events.push_back(ImpressionAt(kImp0, 1000, "a"));
  in.dead_letters.push_back(DeadLetter{{StreamKind::kImpression, 0, Offset{2}}, "bad json", "{"});
  in.dead_letters.push_back(DeadLetter{{StreamKind::kClick, 0, Offset{5}}, "ts: missing", "{}"});

  std::vector<ShardPtr> outs = router.Route(in);

  ASSERT_EQ(outs.size(), 3u);
  ASSERT_EQ(outs[0]->dead_letters.size(), 2u);
  EXPECT_EQ(outs[0]->dead_letters[0].pos.offset, Offset{2});
  EXPECT_EQ(outs[0]->dead_letters[1].pos.offset, Offset{5});
  EXPECT_TRUE(outs[1]->dead_letters.empty());
  EXPECT_TRUE(outs[2]->dead_letters.empty());
  EXPECT_EQ(EventCount(outs), 1u);
  EXPECT_EQ(metrics_.dead_letters.Get(), 2u);
  EXPECT_FALSE(run_.failed());
}

// Mode group (by_task): a task is partition p of both topics. Its events go
// to shard p % shards with their task, each task has its own watermark, and
// a task revoked and not given back is dropped on its shard.
TEST_F(RouterTest, ByTaskEachTaskHasItsShardItsWatermarkAndIsDroppedWhenGone) {
  Router router(kExactWatermarks, CheckpointMeta{}, KeyGroups{kKeyGroups, 2}, -1, &metrics_, &run_,
                /*by_task=*/true);
  const PartitionId clk1{StreamKind::kClick, 1};
  ParsedMsg first = Polled(0, {ImpressionAt(kImp0, 1000, "a"), ClickAt(kClk0, 3000, "a"),
                               ImpressionAt(kImp1, 8000, "b"), ClickAt(clk1, 9000, "b")});
  first.meta.assigned = {kImp0, kClk0, kImp1, clk1};
  std::vector<ShardPtr> outs = router.Route(first);
  ASSERT_EQ(outs.size(), 2u);
  for (int32_t task : {0, 1}) {
    const ShardBatch& b = outs[task]->batch;
    ASSERT_EQ(b.events.size(), 2u) << task;
    for (const KeyedEvent& e : b.events) EXPECT_EQ(e.task, task);
    ASSERT_EQ(b.task_watermarks.size(), 1u) << task;
    EXPECT_EQ(b.task_watermarks[0].task, task);
    EXPECT_TRUE(b.dropped_tasks.empty());
  }
  // Each task's slowest partition, not the process's.
  EXPECT_EQ(outs[0]->batch.task_watermarks[0].watermark, EventTime{1000});
  EXPECT_EQ(outs[1]->batch.task_watermarks[0].watermark, EventTime{8000});
  EXPECT_EQ(outs[0]->batch.watermark, EventTime{1000});  // the process's, for metrics
  EXPECT_EQ(metrics_.tasks.Get(), 2);
  using TaskMs = std::vector<std::pair<int32_t, int64_t>>;
  EXPECT_EQ(metrics_.task_watermarks.Get(), (TaskMs{{0, 1000}, {1, 8000}}));

  // Task 1 moves to another process; task 0 stays. Records of task 1 read
  // before the revocation are its new owner's to read again.
  ParsedMsg moved = Polled(1, {ImpressionAt(kImp0, 4000, "c"), ImpressionAt(kImp1, 9500, "d")});
  moved.meta.revoked = {kImp0, kClk0, kImp1, clk1};
  moved.meta.assigned = {kImp0, kClk0};
  outs = router.Route(moved);
  EXPECT_TRUE(outs[0]->batch.dropped_tasks.empty());
  EXPECT_EQ(outs[1]->batch.dropped_tasks, std::vector<int32_t>{1});
  EXPECT_EQ(EventCount(outs), 1u);
  ASSERT_EQ(outs[0]->batch.task_watermarks.size(), 1u);
  EXPECT_TRUE(outs[1]->batch.task_watermarks.empty());
  EXPECT_EQ(metrics_.tasks.Get(), 1);
}

}  // namespace
}  // namespace ctrjoin
