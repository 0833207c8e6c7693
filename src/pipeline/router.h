#pragma once
// Router: the body of the pipeline's route node. For each parsed batch, in
// source order, it applies the source's partition changes to the watermark
// tracker, advances the watermark and splits the events by shard (the owner
// of the key's group, src/core/hash.h): exactly one ShardMsg per shard, even after
// a failure, so that the sink can count completions and return the
// batch's token to the source. In mode group it routes by task instead, and
// keeps a watermark per task (by_task below). The batch's dead letters go with shard 0's message to
// the sink node, which writes them in the batch's epoch. It also fills in a barrier's watermark
// state, and for a bounded replay (EndAfterWindows) ends the input once every window of the range
// is closed.
//
// Called only from the route node (serial, after the sequencer: one batch at
// a time, in order, on any oneTBB worker), so it needs no lock. Owns the
// WatermarkTracker, the assigned partitions (for the assigned_partitions
// gauge) and the replay-end state; borrows the metrics and the RunControl
// (it asks for a stop when a replay ends).

#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include "src/core/event.h"
#include "src/core/hash.h"
#include "src/core/status.h"
#include "src/pipeline/checkpoint.h"
#include "src/pipeline/graph_messages.h"
#include "src/pipeline/pipeline_metrics.h"
#include "src/pipeline/run_control.h"
#include "src/pipeline/source.h"
#include "src/pipeline/watermark.h"

namespace ctrjoin {

class Router {
 public:
  // Starts from `resume`'s watermark state (a default CheckpointMeta: from
  // scratch). end_after_window_ms < 0: not a replay (see
  // Pipeline::EndAfterWindows).
  // by_task (mode group): events go to shard task % shards, where task is
  // the partition they were read from, each with its task; every shard's
  // message carries the watermarks of its tasks and the tasks that were
  // revoked and not given back (see TaskShard).
  Router(WatermarkOptions watermarks, const CheckpointMeta& resume, KeyGroups groups,
         int64_t end_after_window_ms, PipelineMetrics* metrics, RunControl* run,
         bool by_task = false);

  // Routes one batch (its events are moved out); returns one message per
  // shard, indexed by shard.
  std::vector<ShardPtr> Route(ParsedMsg& in);

 private:
  // Everything but the messages' stamps.
  void Split(ParsedMsg& in, std::vector<ShardPtr>& outs);
  // An eager rebalance revokes, then assigns: applied in that order. Returns
  // the partitions revoked and not given back, whose records must not bring
  // them back into the watermark.
  std::vector<PartitionId> Rebalance(const SourceBatch& meta, Clock::time_point now);
  // EndAfterWindows: the impression partitions assigned and finished.
  void TrackReplayRange(const SourceBatch& meta);
  // Moves the events to their shards' messages and observes their event
  // times (except those of `gone` partitions).
  void SplitEvents(std::vector<ParsedEvent>& events, const std::vector<PartitionId>& gone,
                   Clock::time_point now, std::vector<ShardPtr>& outs);
  // EndAfterWindows: whether watermark wm closed every window of the range.
  bool ReplayEnds(EventTime wm) const;
  // Ends the input (meta.end_of_input) and asks the run to stop; returns
  // the final watermark.
  EventTime EndReplay(SourceBatch& meta, EventTime wm, Clock::time_point now);
  void CountBatch(const ParsedMsg& in, EventTime wm);
  // by_task: applies a rebalance to the task trackers and puts the tasks
  // that are gone on their shards' messages.
  void RebalanceTasks(const SourceBatch& meta, Clock::time_point now, std::vector<ShardPtr>& outs);
  // by_task: advances every task's watermark onto its shard's message.
  void AdvanceTasks(bool polled, bool end, Clock::time_point now, std::vector<ShardPtr>& outs);
  uint32_t ShardOfTask(int32_t task) const { return static_cast<uint32_t>(task) % groups_.shards; }

  const KeyGroups groups_;
  const int64_t end_after_window_ms_;  // < 0: not a replay
  const WatermarkOptions watermarks_;
  const bool by_task_;
  PipelineMetrics* const metrics_;
  RunControl* const run_;

  WatermarkTracker tracker_;
  std::set<PartitionId> assigned_;  // by the source, for the assigned_partitions gauge
  // by_task: each held task's tracker, over its two partitions.
  std::map<int32_t, WatermarkTracker> task_trackers_;
  // EndAfterWindows: the impression partitions not yet finished, whether
  // any was assigned, the latest impression ts read, and whether the input
  // was ended by the watermark.
  std::set<PartitionId> open_impression_partitions_;
  bool saw_impression_partition_ = false;
  EventTime max_impression_ts_ = EventTime::Min();
  bool ended_by_watermark_ = false;
};

}  // namespace ctrjoin
