#pragma once
// TaskShard: the ShardProcessor of every shard in mode group (src/README.md,
// "Scaling out"), where state belongs to tasks rather than to shards. A task
// is partition p of both input topics. The router sends a shard each of its
// events with the event's task, the watermark of every task the shard holds,
// and the tasks the process lost. TaskShard keeps one processor per task
// (made by the factory on the task's first batch), runs each task's events
// through it and advances it to that task's own watermark, so that a task's
// labels do not depend on which other tasks its process holds. A lost task's
// processor is destroyed, and its state with it, without emitting anything:
// the task's new owner reads the task's input again.
//
// With checkpoints (mode group), each task keeps its own changelog: a
// barrier marks every task's, and the chunks go out with the batch's samples
// to the task's partition of the changelog topic.
//
// Called only from its shard node (serial; the ShardProcessor contract).
// Owns the per-task processors; publishes their state sizes (after every
// batch) into a TaskStateEntries it borrows.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "src/core/status.h"
#include "src/pipeline/pipeline_metrics.h"
#include "src/pipeline/shard.h"

namespace ctrjoin {

class TaskShard : public ShardProcessor {
 public:
  using TaskFactory = std::function<Result<std::unique_ptr<ShardProcessor>>(int32_t task)>;

  // sizes (may be null): where each task's state size is published.
  explicit TaskShard(TaskFactory make_task, TaskStateEntries* sizes = nullptr)
      : make_task_(std::move(make_task)), sizes_(sizes) {}

  Status Process(ShardBatch& batch, std::vector<Sample>& out) override;
  // Marks the barrier's epoch in every task's changelog (each task's marker
  // carries its own watermark).
  Status Checkpoint(Barrier& barrier, uint32_t shard, uint64_t& new_bytes) override;
  // Every task's chunks, tagged with the task.
  void TakeChangelog(std::vector<ChangelogChunk>& out) override;

  size_t tasks() const { return tasks_.size(); }

 private:
  // The task's processor, made on first use.
  Result<ShardProcessor*> Task(int32_t task);

  TaskFactory make_task_;
  TaskStateEntries* const sizes_;
  std::map<int32_t, std::unique_ptr<ShardProcessor>> tasks_;
};

}  // namespace ctrjoin
