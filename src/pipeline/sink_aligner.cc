#include "src/pipeline/sink_aligner.h"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <utility>

namespace ctrjoin {

SinkAligner::SinkAligner(uint32_t shards, SampleSink* sink, DeadLetterSink* dead_letters,
                         CheckpointHooks* hooks, PipelineMetrics* metrics, RunControl* run)
    : shards_(shards),
      sink_(sink),
      dead_letters_(dead_letters),
      hooks_(hooks),
      metrics_(metrics),
      run_(run) {}

void SinkAligner::Accept(OutPtr out, const std::function<void()>& return_token) {
  std::deque<OutPtr> work{std::move(out)};
  while (!work.empty()) {
    OutPtr in = std::move(work.front());
    work.pop_front();
    if (barrier_seq_ != kNoBarrier && in->seq > barrier_seq_) {
      held_.push_back(std::move(in));
      continue;
    }
    if (completed_seq_ != kNoBarrier && in->seq <= completed_seq_) {
      // Its epoch is closed: writing it now would put it in the next one.
      run_->Fail(Status::Internal(
          fmt::format("sink: a shard's output of batch {} arrived after the barrier of batch {} "
                      "completed",
                      in->seq, completed_seq_),
          Effect::kNoEffect));
    }
    run_->Guard("sink", [&] { return Write(*in); });
    if (in->barrier != nullptr) {
      barrier_seq_ = in->seq;
      barrier_bytes_ += in->state_bytes;
    }
    if (!Arrived(*in)) continue;
    if (in->barrier != nullptr) {
      run_->Guard("checkpoint", [&] { return CompleteBarrier(*in->barrier); });
      completed_seq_ = barrier_seq_;
      barrier_seq_ = kNoBarrier;
      barrier_bytes_ = 0;
      std::move(held_.begin(), held_.end(), std::back_inserter(work));
      held_.clear();
    }
    return_token();
  }
}

Status SinkAligner::Write(const ShardOut& out) {
  if (run_->failed()) return Status::Ok();
  for (const DeadLetter& letter : out.dead_letters) {
    Status st = dead_letters_->Write(letter);
    if (!st.ok()) return st.WithContext("dead-letter output");
  }
  for (const ChangelogChunk& chunk : out.changelog) {
    Status st = sink_->WriteChangelog(chunk);
    if (!st.ok()) return st.WithContext(fmt::format("changelog of task {}", chunk.task));
  }
  if (out.samples.empty()) return Status::Ok();
  Status st = sink_->Write(out.samples);
  if (!st.ok()) return st.WithContext(sink_->Describe());
  metrics_->samples_out.Add(out.samples.size());
  return Status::Ok();
}

bool SinkAligner::Arrived(const ShardOut& out) {
  Arrivals& a = arrived_[out.seq];
  a.shards_done = std::max(a.shards_done, out.done_at);
  a.negatives = a.negatives || out.negatives;
  if (++a.outputs < shards_) return false;
  // Not after a failure: shards then return without processing (and
  // without a done_at), and the batch's output is dropped.
  const Clock::time_point now = Clock::now();
  if (Timed(out.read_at) && !run_->failed() && Timed(a.shards_done)) {
    metrics_->of(Stage::kShard).Record(a.shards_done - out.routed_at);
    metrics_->of(Stage::kSink).Record(now - a.shards_done);
    metrics_->end_to_end.Record(now - out.read_at);
  }
  if (a.negatives && !run_->failed()) metrics_->negative_delay.Record(now - out.routed_at);
  arrived_.erase(out.seq);
  return true;
}

Status SinkAligner::CompleteBarrier(Barrier& barrier) {
  if (run_->failed()) return Status::Ok();
  barrier.meta.state_bytes = barrier_bytes_;
  return hooks_->OnBarrier(barrier).WithContext(fmt::format("checkpoint {}", barrier.epoch));
}

}  // namespace ctrjoin
