// TaskShard (src/pipeline/task_shard.h): in mode group a shard keeps one
// processor per task, runs each task's events to that task's own watermark,
// publishes each task's state size, and drops a lost task's processor with
// its state.

#include "src/pipeline/task_shard.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace ctrjoin {
namespace {

// Records what it was given; its life is counted in `alive`.
class RecordingTask : public ShardProcessor {
 public:
  RecordingTask(int32_t task, std::map<int32_t, int>* alive) : task_(task), alive_(alive) {
    ++(*alive_)[task_];
  }
  ~RecordingTask() override { --(*alive_)[task_]; }

  Status Process(ShardBatch& batch, std::vector<Sample>& out) override {
    for (const KeyedEvent& e : batch.events) {
      EXPECT_EQ(e.task, task_);
      Sample s;
      s.impression.impression_id = std::get<Impression>(e.event).impression_id;
      s.impression.ts = batch.watermark;  // what the task was advanced to
      out.push_back(std::move(s));
    }
    ++batches;
    events += batch.events.size();
    return Status::Ok();
  }
  uint64_t state_entries() const override { return events; }
  // Marks the barrier with its task (its chunk says so) and counts it.
  Status Checkpoint(Barrier& barrier, uint32_t, uint64_t& new_bytes) override {
    pending_.push_back(fmt::format("marker {} of task {}", barrier.epoch, task_));
    new_bytes = 10;
    return Status::Ok();
  }
  void TakeChangelog(std::vector<ChangelogChunk>& out) override {
    for (std::string& c : pending_) out.push_back({-1, std::move(c)});
    pending_.clear();
  }
  int batches = 0;
  uint64_t events = 0;

 private:
  const int32_t task_;
  std::map<int32_t, int>* const alive_;
  std::vector<std::string> pending_;
};

KeyedEvent ImpressionOf(int32_t task, const std::string& id) {
  Impression imp;
  imp.impression_id = id;
  return KeyedEvent{0, std::move(imp), task};
}

TEST(TaskShardTest, EachTaskGetsItsEventsAndItsOwnWatermarkAndALostTaskIsDropped) {
  std::map<int32_t, int> alive;
  int made = 0;
  TaskStateEntries sizes;
  TaskShard shard(
      [&](int32_t task) -> Result<std::unique_ptr<ShardProcessor>> {
        ++made;
        return std::unique_ptr<ShardProcessor>(std::make_unique<RecordingTask>(task, &alive));
      },
      &sizes);

  ShardBatch first;
  first.events = {ImpressionOf(0, "a"), ImpressionOf(2, "b"), ImpressionOf(0, "c")};
  first.task_watermarks = {{0, EventTime{100}}, {2, EventTime{900}}};
  std::vector<Sample> out;
  ASSERT_TRUE(shard.Process(first, out).ok());
  ASSERT_EQ(out.size(), 3u);
  std::map<std::string, int64_t> advanced;
  for (const Sample& s : out) advanced[s.impression.impression_id] = s.impression.ts.ms;
  EXPECT_EQ(advanced, (std::map<std::string, int64_t>{{"a", 100}, {"b", 900}, {"c", 100}}));
  EXPECT_EQ(shard.tasks(), 2u);
  EXPECT_EQ(made, 2);
  EXPECT_EQ(sizes.Get(), (std::map<int32_t, uint64_t>{{0, 2}, {2, 1}}));

  // Task 2 is lost: its processor (and state) goes, without output.
  ShardBatch lost;
  lost.task_watermarks = {{0, EventTime{200}}};
  lost.dropped_tasks = {2};
  out.clear();
  ASSERT_TRUE(shard.Process(lost, out).ok());
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(alive[2], 0);
  EXPECT_EQ(alive[0], 1);
  EXPECT_EQ(sizes.Get(), (std::map<int32_t, uint64_t>{{0, 2}}));

  // Should it come back, it starts afresh.
  ShardBatch back;
  back.events = {ImpressionOf(2, "d")};
  back.task_watermarks = {{0, EventTime{300}}, {2, EventTime{950}}};
  ASSERT_TRUE(shard.Process(back, out).ok());
  EXPECT_EQ(made, 3);
  EXPECT_EQ(alive[2], 1);
}

TEST(TaskShardTest, AFactoryErrorNamesTheTask) {
  TaskShard shard([](int32_t) -> Result<std::unique_ptr<ShardProcessor>> {
    return Status::IoError("state.dir: full");
  });
  ShardBatch batch;
  batch.events = {ImpressionOf(5, "a")};
  std::vector<Sample> out;
  Status st = shard.Process(batch, out);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("task 5"), std::string::npos) << st.ToString();
}

// With checkpoints: a barrier marks every task's changelog, and each task's
// chunks leave tagged with the task, whose changelog partition they go to.
TEST(TaskShardTest, ABarrierMarksEveryTaskAndChunksLeaveTaggedWithTheirTask) {
  std::map<int32_t, int> alive;
  TaskShard shard([&](int32_t task) -> Result<std::unique_ptr<ShardProcessor>> {
    return std::unique_ptr<ShardProcessor>(std::make_unique<RecordingTask>(task, &alive));
  });
  ShardBatch batch;
  batch.events.push_back(ImpressionOf(1, "a"));
  batch.events.push_back(ImpressionOf(3, "b"));
  std::vector<Sample> out;
  ASSERT_TRUE(shard.Process(batch, out).ok());

  Barrier barrier;
  barrier.epoch = 7;
  barrier.marks.resize(2);
  uint64_t bytes = 0;
  ASSERT_TRUE(shard.Checkpoint(barrier, 1, bytes).ok());
  EXPECT_EQ(bytes, 20u);  // both tasks'
  ASSERT_TRUE(barrier.marks[1].wait_durable);
  EXPECT_TRUE(barrier.marks[1].wait_durable().ok());  // durable with the epoch's commit

  std::vector<ChangelogChunk> chunks;
  shard.TakeChangelog(chunks);
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(chunks[0].task, 1);
  EXPECT_EQ(chunks[0].bytes, "marker 7 of task 1");
  EXPECT_EQ(chunks[1].task, 3);
  EXPECT_EQ(chunks[1].bytes, "marker 7 of task 3");

  // A shard without tasks still passes the barrier.
  TaskShard empty([&](int32_t) -> Result<std::unique_ptr<ShardProcessor>> {
    return Status::Internal("no task expected", Effect::kNoEffect);
  });
  Barrier other;
  other.marks.resize(1);
  ASSERT_TRUE(empty.Checkpoint(other, 0, bytes).ok());
  EXPECT_TRUE(other.marks[0].wait_durable().ok());
}

}  // namespace
}  // namespace ctrjoin
