#include "src/pipeline/source_stage.h"

#include <spdlog/spdlog.h>

#include <array>
#include <chrono>
#include <thread>
#include <utility>

namespace ctrjoin {
namespace {

constexpr std::chrono::seconds kLagReportInterval{1};

}  // namespace

SourceStage::SourceStage(Source* source, CheckpointHooks* hooks, PipelineMetrics* metrics,
                         RunControl* run, size_t batch_size, KeyGroups groups,
                         SourcePositions positions)
    : source_(source),
      hooks_(hooks),
      metrics_(metrics),
      run_(run),
      batch_size_(batch_size),
      groups_(groups),
      positions_(std::move(positions)) {}

SourcePtr SourceStage::Next() {
  if (done_) return nullptr;
  auto msg = std::make_shared<SourceMsg>();
  msg->seq = next_seq_++;
  const bool final = run_->stop_requested() || run_->failed();
  if (final) {
    msg->last = true;
    done_ = true;
  }
  run_->Guard("checkpoint", [&] { return TakeBarrier(*msg, final); });
  if (run_->failed()) msg->last = done_ = true;
  // The last message, or a barrier alone (an empty batch).
  if (msg->last || msg->barrier != nullptr) return msg;
  if (revoke_epoch_ != 0) {
    run_->Guard("rebalance", [&] { return FinishRevocation(); });
    if (run_->failed()) msg->last = done_ = true;
    if (msg->last) return msg;
  }
  run_->Guard("source", [&] { return Read(*msg); });
  if (run_->failed()) msg->last = true;
  done_ = msg->last;
  return msg;
}

Status SourceStage::Read(SourceMsg& msg) {
  msg.polled = true;
  Result<SourceBatch> batch = source_->Next(batch_size_);
  if (!batch.ok()) {
    msg.last = true;
    return batch.status().WithContext(source_->Describe());
  }
  msg.batch = std::move(batch).value();
  msg.last = msg.batch.end_of_input;
  // Read nothing: the watermark of a task that may be gone must not move.
  if (msg.batch.suspended) msg.polled = false;
  const Clock::time_point now = Clock::now();
  if (!msg.batch.records.empty()) {
    msg.read_at = now;
    if (hooks_ != nullptr) epoch_reads_.push_back(now);
  }
  ReportLag(now);
  if (hooks_ == nullptr) {
    // Nothing to commit first.
    return msg.batch.revoking.empty() ? Status::Ok() : source_->ReleaseRevoked();
  }
  Advance(msg.batch);
  if (msg.last) return TakeBarrier(msg, /*final=*/true);
  if (!msg.batch.revoking.empty()) return TakeRevocationBarrier(msg);
  return Status::Ok();
}

Status SourceStage::TakeRevocationBarrier(SourceMsg& msg) {
  // One barrier travels at a time: the previous one reaches the sink soon.
  Result<std::shared_ptr<Barrier>> next = hooks_->BarrierNow();
  while (next.ok() && *next == nullptr && !run_->failed()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    next = hooks_->BarrierNow();
  }
  if (!next.ok()) return next.status();
  if (*next == nullptr) return Status::Ok();  // the run failed meanwhile
  revoking_ = std::move(msg.batch.revoking);
  revoke_epoch_ = (*next)->epoch;
  spdlog::info("source: {} partitions are revoked; committing epoch {} before giving them up",
               revoking_.size(), revoke_epoch_);
  Attach(msg, std::move(next).value());
  return Status::Ok();
}

Status SourceStage::FinishRevocation() {
  const Clock::time_point start = Clock::now();
  Clock::time_point next_note = start + std::chrono::seconds(5);
  while (true) {
    Result<bool> committed = hooks_->WaitCommitted(revoke_epoch_, std::chrono::milliseconds(100));
    if (!committed.ok()) return committed.status();
    if (*committed) break;
    if (run_->failed()) return Status::Ok();
    if (Clock::now() >= next_note) {
      next_note += std::chrono::seconds(5);
      spdlog::info("source: waiting for epoch {} to commit before giving up {} partitions",
                   revoke_epoch_, revoking_.size());
    }
  }
  spdlog::info("source: epoch {} committed {:.0f} ms after the revocation; giving up {} partitions",
               revoke_epoch_,
               std::chrono::duration<double, std::milli>(Clock::now() - start).count(),
               revoking_.size());
  for (const PartitionId& p : revoking_) positions_.erase(p);
  revoking_.clear();
  revoke_epoch_ = 0;
  return source_->ReleaseRevoked();
}

void SourceStage::Advance(const SourceBatch& batch) {
  const PartitionId* last_id = nullptr;
  int64_t* last_pos = nullptr;
  for (const RawRecord& r : batch.records) {
    const PartitionId id{r.pos.stream, r.pos.partition};
    if (last_id == nullptr || *last_id != id) {
      auto it = positions_.try_emplace(id, 0).first;
      last_id = &it->first;
      last_pos = &it->second;
    }
    *last_pos = r.pos.offset.value + 1;
  }
}

Status SourceStage::TakeBarrier(SourceMsg& msg, bool final) {
  if (hooks_ == nullptr || run_->failed()) return Status::Ok();
  Result<std::shared_ptr<Barrier>> next = hooks_->NextBarrier(final);
  if (!next.ok()) return next.status();
  std::shared_ptr<Barrier> barrier = std::move(next).value();
  if (barrier != nullptr) Attach(msg, std::move(barrier));
  return Status::Ok();
}

void SourceStage::Attach(SourceMsg& msg, std::shared_ptr<Barrier> barrier) {
  barrier->meta.positions = positions_;
  barrier->meta.shards = groups_.shards;
  barrier->meta.key_groups = groups_.count;
  barrier->marks.resize(groups_.shards);
  barrier->batch_reads = std::exchange(epoch_reads_, {});
  msg.barrier = std::move(barrier);
}

void SourceStage::ReportLag(Clock::time_point now) {
  if (now < next_lag_report_) return;
  next_lag_report_ = now + kLagReportInterval;
  std::vector<PartitionLag> lags = source_->ConsumerLag();
  std::array<int64_t, 2> sums = {-1, -1};
  for (const PartitionLag& l : lags) {
    int64_t& sum = sums[static_cast<size_t>(l.id.stream)];
    sum = std::max<int64_t>(sum, 0) + l.records;
  }
  for (size_t s = 0; s < sums.size(); ++s) metrics_->consumer_lag[s].Set(sums[s]);
  metrics_->partition_lag.Set(std::move(lags));
  metrics_->source_unreachable_since_ms.Set(source_->UnreachableSinceMs());
  metrics_->paused_partitions.Set(source_->PausedPartitions());
}

}  // namespace ctrjoin
