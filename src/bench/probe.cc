#include "src/bench/probe.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace ctrjoin::bench {

namespace {
constexpr int kSubBits = 6;                                 // 64 sub-buckets per power of two
constexpr uint64_t kExact = uint64_t{1} << (kSubBits + 1);  // below: one bucket per value
constexpr size_t kBuckets = kExact + (64 - kSubBits) * (uint64_t{1} << kSubBits);
}  // namespace

Histogram::Histogram() : counts_(kBuckets, 0) {}

size_t Histogram::Bucket(uint64_t v) {
  if (v < kExact) return v;
  const int shift = std::bit_width(v) - 1 - kSubBits;  // >= 1
  const uint64_t sub = (v >> shift) - (uint64_t{1} << kSubBits);
  return kExact + static_cast<size_t>(shift - 1) * (size_t{1} << kSubBits) + sub;
}

uint64_t Histogram::UpperEdge(size_t bucket) {
  if (bucket < kExact) return bucket;
  const size_t shift = (bucket - kExact) / (size_t{1} << kSubBits) + 1;
  const uint64_t sub = (bucket - kExact) % (size_t{1} << kSubBits);
  return (((uint64_t{1} << kSubBits) + sub + 1) << shift) - 1;
}

void Histogram::Record(int64_t ns) {
  const uint64_t v = ns > 0 ? static_cast<uint64_t>(ns) : 0;
  ++counts_[Bucket(v)];
  ++count_;
  sum_ += v;
  max_ = std::max(max_, v);
}

double Histogram::QuantileMs(double q) const {
  if (count_ == 0) return 0;
  const auto rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
  uint64_t seen = 0;
  for (size_t b = 0; b < counts_.size(); ++b) {
    seen += counts_[b];
    if (seen >= std::max<uint64_t>(rank, 1)) {
      return static_cast<double>(std::min(UpperEdge(b), max_)) / 1e6;
    }
  }
  return MaxMs();
}

LatencyProbe::LatencyProbe(const Trace* trace, WatermarkOptions watermarks, const Pacing* pacing)
    : trace_(trace),
      pacing_(pacing != nullptr && pacing->events_per_s > 0 ? pacing : nullptr),
      tracker_(watermarks),
      batch_of_(new std::atomic<uint32_t>[trace->size()]) {
  for (size_t i = 0; i < trace->size(); ++i) batch_of_[i].store(kNone, std::memory_order_relaxed);
  // At most one batch per record, plus batches that only change partitions.
  chunks_.resize((trace->size() + 1024) / kChunk + 1);
}

void LatencyProbe::OnBatch(const SourceBatch& batch) {
  if (batch.records.empty() && batch.assigned.empty() && batch.revoked.empty() &&
      batch.finished.empty() && !batch.end_of_input) {
    return;  // changes nothing the watermark depends on
  }
  const size_t n = published_.load(std::memory_order_relaxed);
  if (n / kChunk == chunks_.size()) return;  // cannot happen: see the constructor
  if (n % kChunk == 0) chunks_[n / kChunk].reset(new Entry[kChunk]);
  const auto now = std::chrono::steady_clock::now();
  const auto number = static_cast<uint32_t>(n);
  // The router's order: revoked, assigned, events, finished, end.
  for (const PartitionId& p : batch.revoked) tracker_.Revoke(p);
  for (const PartitionId& p : batch.assigned) tracker_.Assign(p, now);
  batch_max_.clear();
  uint32_t last = 0;
  for (const RawRecord& r : batch.records) {
    const uint32_t index = trace_->IndexOf(r.pos.stream, r.pos.partition, r.pos.offset.value);
    if (index == kNone) continue;
    batch_of_[index].store(number, std::memory_order_relaxed);
    last = std::max(last, index);
    const int64_t ts = trace_->ts(index);
    if (ts == Trace::kNoTs) continue;  // a dead letter: no watermark
    const PartitionId id{r.pos.stream, r.pos.partition};
    auto it = std::find_if(batch_max_.begin(), batch_max_.end(),
                           [&](const auto& e) { return e.first == id; });
    if (it == batch_max_.end()) {
      batch_max_.emplace_back(id, ts);
    } else {
      it->second = std::max(it->second, ts);
    }
  }
  for (const auto& [id, ts] : batch_max_) tracker_.Observe(id, EventTime{ts}, now);
  for (const PartitionId& p : batch.finished) tracker_.Finish(p);
  if (batch.end_of_input) tracker_.FinishAll();
  Entry& e = chunks_[n / kChunk][n % kChunk];
  e.watermark = tracker_.Advance(now).ms;
  e.end = batch.end_of_input;
  e.start_ns =
      pacing_ != nullptr && !batch.records.empty()
          ? pacing_->DueNs(last)
          : std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  published_.store(n + 1, std::memory_order_release);
}

int64_t LatencyProbe::StartOf(const Sample& sample, size_t batches) const {
  if (sample.label == 1) {
    const ClickedImpression* c = trace_->FindClicked(sample.sample_id);
    if (c == nullptr) return -1;
    // The first copy read of the impression and of an in-window click.
    auto first = [&](const uint32_t(&records)[2], uint32_t& record) {
      uint32_t best = kNone;
      for (uint32_t r : records) {
        const uint32_t b = BatchOf(r);
        if (b < best) {
          best = b;
          record = r;
        }
      }
      return best;
    };
    uint32_t imp_record = kNone, click_record = kNone;
    const uint32_t imp = first(c->impressions, imp_record);
    const uint32_t click = first(c->clicks, click_record);
    if (imp == kNone || click == kNone || std::max(imp, click) >= batches) return -1;
    if (pacing_ != nullptr) return pacing_->DueNs(imp >= click ? imp_record : click_record);
    return At(std::max(imp, click)).start_ns;
  }
  // The first batch after which the watermark is past the window's end.
  const int64_t deadline = sample.impression.ts.ms + trace_->window_ms();
  size_t low = 0, high = batches;
  while (low < high) {
    const size_t mid = low + (high - low) / 2;
    if (At(mid).watermark <= deadline) {
      low = mid + 1;
    } else {
      high = mid;
    }
  }
  if (low == batches) return -1;
  if (At(low).end) return -2;
  return At(low).start_ns;
}

void LatencyProbe::OnWritten(std::span<const Sample> samples, std::vector<int64_t>* starts) {
  const int64_t now = NowNs();
  const size_t batches = published_.load(std::memory_order_acquire);
  for (const Sample& s : samples) {
    if (s.correction) {
      ++corrections_;
      continue;
    }
    written_ids_.push_back(s.sample_id);
    const int64_t start = StartOf(s, batches);
    if (start == -1) {
      ++unresolved_;
      continue;
    }
    if (start == -2) {
      ++flushed_at_end_;
      continue;
    }
    processing_.Record(now - start);
    (s.label == 1 ? positives_ : negative_delay_).Record(now - start);
    if (starts != nullptr) starts->push_back(start);
  }
}

Result<SourceBatch> ProbedSource::Next(size_t max_records) {
  Result<SourceBatch> batch = inner_->Next(max_records);
  if (batch.ok()) probe_->OnBatch(*batch);
  return batch;
}

Status TimedSampleSink::Write(std::span<const Sample> samples) {
  CTRJOIN_RETURN_IF_ERROR(inner_->Write(samples));
  probe_->OnWritten(samples, nullptr);
  return Status::Ok();
}

Status TimedTxnSink::Begin(EpochId epoch) {
  CTRJOIN_RETURN_IF_ERROR(inner_->Begin(epoch));
  open_.store(epoch.value);
  return Status::Ok();
}

Status TimedTxnSink::Write(std::span<const Sample> samples) {
  CTRJOIN_RETURN_IF_ERROR(inner_->Write(samples));
  probe_->OnWritten(samples, &open_starts_);
  return Status::Ok();
}

Status TimedTxnSink::PreCommit(EpochId epoch) {
  CTRJOIN_RETURN_IF_ERROR(inner_->PreCommit(epoch));
  open_.store(0);
  std::lock_guard<std::mutex> lock(mu_);
  pre_committed_[epoch.value] = std::exchange(open_starts_, {});
  return Status::Ok();
}

Status TimedTxnSink::Commit(EpochId epoch) {
  CTRJOIN_RETURN_IF_ERROR(inner_->Commit(epoch));
  const int64_t now = NowNs();
  std::vector<int64_t> starts;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pre_committed_.find(epoch.value);
    if (it == pre_committed_.end()) return Status::Ok();  // a repeated Commit
    starts = std::move(it->second);
    pre_committed_.erase(it);
  }
  if (epoch.value == final_.load()) {
    final_epoch_samples_ += starts.size();
    return Status::Ok();
  }
  for (int64_t start : starts) visibility_.Record(now - start);
  return Status::Ok();
}

void TimedTxnSink::EndOfOutput() {
  final_.store(open_.load());
  inner_->EndOfOutput();
}

Status TimedTxnSink::Abort(EpochId epoch) {
  CTRJOIN_RETURN_IF_ERROR(inner_->Abort(epoch));
  if (epoch.value == open_.load()) {  // only the sink thread aborts the open epoch
    open_starts_.clear();
    return Status::Ok();
  }
  std::lock_guard<std::mutex> lock(mu_);
  pre_committed_.erase(epoch.value);
  return Status::Ok();
}

}  // namespace ctrjoin::bench
