#include "src/pipeline/router.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>
#include <variant>

#include "src/core/hash.h"

namespace ctrjoin {

Router::Router(WatermarkOptions watermarks, const CheckpointMeta& resume, KeyGroups groups,
               int64_t end_after_window_ms, PipelineMetrics* metrics, RunControl* run, bool by_task)
    : groups_(groups),
      end_after_window_ms_(end_after_window_ms),
      watermarks_(watermarks),
      by_task_(by_task),
      metrics_(metrics),
      run_(run),
      tracker_(watermarks) {
  tracker_.Restore(resume.partition_max_ts, resume.watermark, Clock::now());
  for (const auto& [p, ts] : resume.partition_max_ts) {
    if (p.stream == StreamKind::kImpression) max_impression_ts_ = std::max(max_impression_ts_, ts);
  }
}

std::vector<ShardPtr> Router::Route(ParsedMsg& in) {
  std::vector<ShardPtr> outs(groups_.shards);
  for (ShardPtr& out : outs) {
    out = std::make_shared<ShardMsg>();
    out->seq = in.seq;
    out->last = in.last;
  }
  run_->Guard("route", [&] { Split(in, outs); });
  // Every batch, timed or not: one that only lets idle partitions advance
  // the watermark may close windows too.
  const Clock::time_point routed_at = Clock::now();
  if (Timed(in.read_at)) metrics_->of(Stage::kRoute).Record(routed_at - in.stage_done);
  for (ShardPtr& out : outs) {
    out->read_at = in.read_at;
    out->routed_at = routed_at;
  }
  return outs;
}

void Router::Split(ParsedMsg& in, std::vector<ShardPtr>& outs) {
  const Clock::time_point now = Clock::now();
  const std::vector<PartitionId> gone = Rebalance(in.meta, now);
  if (by_task_) RebalanceTasks(in.meta, now, outs);
  if (ended_by_watermark_) {
    // A replay past its end: nothing more belongs to it.
    metrics_->events_past_end.Add(in.events.size() + in.dead_letters.size());
    in.events.clear();
    in.dead_letters.clear();
  }
  if (end_after_window_ms_ >= 0) TrackReplayRange(in.meta);
  SplitEvents(in.events, gone, now, outs);
  for (const auto& [p, next_ts] : in.meta.pending) tracker_.Pending(p, next_ts, now);
  for (const PartitionId& p : in.meta.finished) tracker_.Finish(p);
  if (in.meta.end_of_input) tracker_.FinishAll();
  // Only what the source delivered moves the watermark. A barrier alone (or
  // the stop message) read nothing; routed before the first batch of a
  // resumed run, it would see only the partitions restored from the
  // checkpoint, not yet the source's assignment.
  EventTime wm = in.polled ? tracker_.Advance(now) : tracker_.current();
  if (ReplayEnds(wm)) wm = EndReplay(in.meta, wm, now);
  if (by_task_) AdvanceTasks(in.polled, in.meta.end_of_input, now, outs);
  for (ShardPtr& out : outs) {
    out->batch.watermark = wm;
    out->batch.end_of_input = in.meta.end_of_input;
    out->batch.barrier = in.barrier;
  }
  if (in.barrier != nullptr) {
    in.barrier->meta.partition_max_ts = tracker_.Snapshot();
    in.barrier->meta.watermark = wm;
  }
  CountBatch(in, wm);
  outs[0]->dead_letters = std::move(in.dead_letters);
}

std::vector<PartitionId> Router::Rebalance(const SourceBatch& meta, Clock::time_point now) {
  std::vector<PartitionId> gone;
  for (const PartitionId& p : meta.revoked) {
    tracker_.Revoke(p);
    if (std::find(meta.assigned.begin(), meta.assigned.end(), p) == meta.assigned.end()) {
      gone.push_back(p);
    }
  }
  for (const PartitionId& p : meta.assigned) tracker_.Assign(p, now);
  if (!meta.revoked.empty() || !meta.assigned.empty()) {
    for (const PartitionId& p : meta.revoked) assigned_.erase(p);
    assigned_.insert(meta.assigned.begin(), meta.assigned.end());
    metrics_->assigned_partitions.Set(static_cast<int64_t>(assigned_.size()));
  }
  return gone;
}

void Router::RebalanceTasks(const SourceBatch& meta, Clock::time_point now,
                            std::vector<ShardPtr>& outs) {
  for (const PartitionId& p : meta.revoked) {
    auto t = task_trackers_.find(p.partition);
    if (t != task_trackers_.end()) t->second.Revoke(p);
  }
  for (const PartitionId& p : meta.assigned) {
    task_trackers_.try_emplace(p.partition, watermarks_).first->second.Assign(p, now);
  }
  // A task is gone once neither of its partitions is assigned.
  for (const PartitionId& p : meta.revoked) {
    const bool held = assigned_.contains({StreamKind::kImpression, p.partition}) ||
                      assigned_.contains({StreamKind::kClick, p.partition});
    if (held || task_trackers_.erase(p.partition) == 0) continue;
    outs[ShardOfTask(p.partition)]->batch.dropped_tasks.push_back(p.partition);
    spdlog::info("route: task {} was revoked; its state is dropped", p.partition);
  }
  metrics_->tasks.Set(static_cast<int64_t>(task_trackers_.size()));
}

void Router::AdvanceTasks(bool polled, bool end, Clock::time_point now,
                          std::vector<ShardPtr>& outs) {
  std::vector<std::pair<int32_t, int64_t>> known;
  for (auto& [task, tracker] : task_trackers_) {
    if (end) tracker.FinishAll();
    const EventTime wm = polled || end ? tracker.Advance(now) : tracker.current();
    outs[ShardOfTask(task)]->batch.task_watermarks.push_back({task, wm});
    if (wm != EventTime::Min() && wm != EventTime::Max()) known.emplace_back(task, wm.ms);
  }
  metrics_->task_watermarks.Set(std::move(known));
}

void Router::TrackReplayRange(const SourceBatch& meta) {
  for (const PartitionId& p : meta.assigned) {
    if (p.stream != StreamKind::kImpression) continue;
    open_impression_partitions_.insert(p);
    saw_impression_partition_ = true;
  }
  for (const PartitionId& p : meta.finished) open_impression_partitions_.erase(p);
}

void Router::SplitEvents(std::vector<ParsedEvent>& events, const std::vector<PartitionId>& gone,
                         Clock::time_point now, std::vector<ShardPtr>& outs) {
  uint64_t impressions = 0;
  int64_t max_ts = metrics_->max_event_ts_ms.Get();
  for (ParsedEvent& e : events) {
    max_ts = std::max(max_ts, e.ts.ms);
    const bool kept = std::find(gone.begin(), gone.end(), e.partition) == gone.end();
    if (kept) tracker_.Observe(e.partition, e.ts, now);
    if (std::holds_alternative<Impression>(e.keyed.event)) {
      max_impression_ts_ = std::max(max_impression_ts_, e.ts);
      ++impressions;
    }
    if (!by_task_) {
      outs[groups_.ShardOf(e.keyed.key)]->batch.events.push_back(std::move(e.keyed));
      continue;
    }
    // A lost task's events (read before the revocation) are its new
    // owner's: they are read again there.
    if (!kept) continue;
    const int32_t task = e.partition.partition;
    task_trackers_.try_emplace(task, watermarks_).first->second.Observe(e.partition, e.ts, now);
    e.keyed.task = task;
    outs[ShardOfTask(task)]->batch.events.push_back(std::move(e.keyed));
  }
  metrics_->impressions_in.Add(impressions);
  metrics_->clicks_in.Add(events.size() - impressions);
  metrics_->max_event_ts_ms.Set(max_ts);
}

bool Router::ReplayEnds(EventTime wm) const {
  return end_after_window_ms_ >= 0 && !ended_by_watermark_ && saw_impression_partition_ &&
         open_impression_partitions_.empty() &&
         (max_impression_ts_ == EventTime::Min() ||
          wm.ms > SaturatingAdd(max_impression_ts_.ms, end_after_window_ms_));
}

EventTime Router::EndReplay(SourceBatch& meta, EventTime wm, Clock::time_point now) {
  spdlog::info("replay: every window of the range is closed (watermark {}), ending", wm.ms);
  ended_by_watermark_ = true;
  meta.end_of_input = true;
  tracker_.FinishAll();
  const EventTime end = tracker_.Advance(now);
  run_->RequestStop();
  return end;
}

void Router::CountBatch(const ParsedMsg& in, EventTime wm) {
  metrics_->dead_letters.Add(in.dead_letters.size());
  for (const DeadLetter& d : in.dead_letters) {
    metrics_->dead_letters_in[static_cast<size_t>(d.pos.stream)].Add();
    metrics_->dead_letters_by_reason[static_cast<size_t>(d.pos.stream)][static_cast<size_t>(d.code)]
        .Add();
  }
  metrics_->batches.Add();
  if (wm != EventTime::Max() && wm != EventTime::Min()) metrics_->watermark_ms.Set(wm.ms);
}

}  // namespace ctrjoin
