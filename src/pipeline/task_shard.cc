#include "src/pipeline/task_shard.h"

#include <fmt/format.h>

#include <utility>

namespace ctrjoin {

Result<ShardProcessor*> TaskShard::Task(int32_t task) {
  auto it = tasks_.find(task);
  if (it != tasks_.end()) return it->second.get();
  Result<std::unique_ptr<ShardProcessor>> made = make_task_(task);
  if (!made.ok()) return made.status().WithContext(fmt::format("task {}", task));
  return tasks_.emplace(task, std::move(made).value()).first->second.get();
}

Status TaskShard::Process(ShardBatch& batch, std::vector<Sample>& out) {
  for (int32_t task : batch.dropped_tasks) {
    tasks_.erase(task);
    if (sizes_ != nullptr) sizes_->Erase(task);
  }
  // Each task's share of the batch, in arrival order, with its watermark.
  std::map<int32_t, ShardBatch> by_task;
  for (KeyedEvent& e : batch.events) by_task[e.task].events.push_back(std::move(e));
  for (const TaskWatermark& w : batch.task_watermarks) by_task[w.task].watermark = w.watermark;
  for (auto& [task, share] : by_task) {
    share.end_of_input = batch.end_of_input;
    Result<ShardProcessor*> processor = Task(task);
    if (!processor.ok()) return processor.status();
    CTRJOIN_RETURN_IF_ERROR((*processor)->Process(share, out));
    if (sizes_ != nullptr) sizes_->Set(task, (*processor)->state_entries());
  }
  return Status::Ok();
}

Status TaskShard::Checkpoint(Barrier& barrier, uint32_t shard, uint64_t& new_bytes) {
  if (shard >= barrier.marks.size()) {
    return Status::Internal(
        fmt::format("checkpoint {}: no mark for shard {}", barrier.epoch, shard),
        Effect::kNoEffect);
  }
  // A task's marker is durable with the epoch's transaction, which commits
  // after this wait: nothing to wait for here, also without tasks.
  barrier.marks[shard].wait_durable = [] { return Status::Ok(); };
  new_bytes = 0;
  for (auto& [task, processor] : tasks_) {
    uint64_t bytes = 0;
    CTRJOIN_RETURN_IF_ERROR(
        processor->Checkpoint(barrier, shard, bytes).WithContext(fmt::format("task {}", task)));
    new_bytes += bytes;
  }
  barrier.marks[shard].wait_durable = [] { return Status::Ok(); };
  return Status::Ok();
}

void TaskShard::TakeChangelog(std::vector<ChangelogChunk>& out) {
  std::vector<ChangelogChunk> chunks;
  for (auto& [task, processor] : tasks_) {
    processor->TakeChangelog(chunks);
    for (ChangelogChunk& c : chunks) {
      c.task = task;
      out.push_back(std::move(c));
    }
    chunks.clear();
  }
}

}  // namespace ctrjoin
