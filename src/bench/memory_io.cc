#include "src/bench/memory_io.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "sinks/sample_format.h"

namespace ctrjoin::bench {

namespace {

constexpr auto kPollTimeout = std::chrono::milliseconds(100);  // as KafkaSource's default

std::vector<PartitionId> AllPartitions(int32_t partitions) {
  std::vector<PartitionId> all;
  for (StreamKind s : {StreamKind::kImpression, StreamKind::kClick}) {
    for (int32_t p = 0; p < partitions; ++p) all.push_back({s, p});
  }
  return all;
}

}  // namespace

MemorySource::MemorySource(Trace* trace, uint64_t limit, Pacing* pacing)
    : trace_(trace),
      end_(limit == 0 ? trace->size() : std::min<uint64_t>(limit, trace->size())),
      pacing_(pacing != nullptr && pacing->events_per_s > 0 ? pacing : nullptr),
      placement_(trace->partitions()) {}

Result<SourceBatch> MemorySource::Next(size_t max_records) {
  if (!trace_->has_payloads()) {
    return Status::InvalidArgument("memory source: trace without payloads");
  }
  SourceBatch batch;
  if (!started_) {
    // Like a Kafka source in assign mode: every partition holds the
    // watermark from the start.
    started_ = true;
    first_read_ns_.store(NowNs());
    batch.assigned = AllPartitions(trace_->partitions());
    if (pacing_ != nullptr) pacing_->start_ns.store(NowNs());
  }
  uint64_t available = end_;
  if (pacing_ != nullptr && next_ < end_) {
    const int64_t due = pacing_->DueNs(next_);
    const int64_t now = NowNs();
    if (due > now) {
      const auto wait =
          std::min<std::chrono::nanoseconds>(std::chrono::nanoseconds(due - now), kPollTimeout);
      std::this_thread::sleep_for(wait);
    }
    const double elapsed_s = static_cast<double>(NowNs() - pacing_->start_ns.load()) / 1e9;
    available = std::min<uint64_t>(
        end_, static_cast<uint64_t>(std::max(0.0, elapsed_s * pacing_->events_per_s)) + 1);
  }
  const uint64_t stop = std::min<uint64_t>(available, next_ + max_records);
  batch.records.reserve(stop > next_ ? stop - next_ : 0);
  for (; next_ < stop; ++next_) {
    batch.records.push_back(
        RawRecord{placement_.Next(trace_->stream(next_)), std::move(trace_->payload(next_))});
  }
  batch.end_of_input = next_ == end_;
  return batch;
}

GeneratingSource::GeneratingSource(WorkloadOptions workload, int32_t partitions,
                                   uint64_t impressions, int64_t settle_ms,
                                   std::function<void()> stop)
    : gen_(workload),
      partitions_(partitions),
      placement_(partitions),
      impressions_(impressions),
      settle_ms_(settle_ms),
      stop_(std::move(stop)) {}

Result<SourceBatch> GeneratingSource::Next(size_t max_records) {
  SourceBatch batch;
  if (!started_) {
    started_ = true;
    batch.assigned = AllPartitions(partitions_);
  }
  if (done_ns_ != 0) {
    if (NowNs() - done_ns_ >= settle_ms_ * 1'000'000) {
      stop_();
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return batch;
  }
  batch.records.reserve(max_records);
  while (batch.records.size() < max_records) {
    GeneratedRecord g = gen_.Next();
    batch.records.push_back(RawRecord{placement_.Next(g.stream), std::move(g.json)});
    ++records_;
    if (gen_.impressions_generated() >= impressions_) {
      done_ns_ = NowNs();
      break;
    }
  }
  return batch;
}

Status CountingSink::Write(std::span<const Sample> samples) {
  for (const Sample& sample : samples) {
    buffer_.clear();
    AppendSampleValue(format_, sample, buffer_);
    bytes_ += buffer_.size();
  }
  samples_ += samples.size();
  return Status::Ok();
}

Status MemoryTxnSink::Begin(EpochId) {
  open_base_ = open_.samples();
  return Status::Ok();
}

Status MemoryTxnSink::Write(std::span<const Sample> samples) { return open_.Write(samples); }

Status MemoryTxnSink::PreCommit(EpochId epoch) {
  std::lock_guard<std::mutex> lock(mu_);
  pre_committed_[epoch.value] = open_.samples() - open_base_;
  return Status::Ok();
}

Status MemoryTxnSink::Commit(EpochId epoch) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pre_committed_.find(epoch.value);
  if (it == pre_committed_.end()) return Status::Ok();  // committed already
  committed_.fetch_add(it->second);
  pre_committed_.erase(it);
  return Status::Ok();
}

Status MemoryTxnSink::Abort(EpochId epoch) {
  std::lock_guard<std::mutex> lock(mu_);
  pre_committed_.erase(epoch.value);
  return Status::Ok();
}

Result<EpochId> MemoryTxnSink::Recover(EpochId) { return EpochId{}; }

}  // namespace ctrjoin::bench
