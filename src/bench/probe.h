#pragma once
// Latency measurement for the end-to-end benchmark, without hooks in the
// library: decorators around the pipeline's Source and sinks.
//
// Processing latency of a sample = when a sink's Write of it returned minus
// when the input record that made it was read (or, for a paced source, was
// due to arrive: so a backlog counts, no coordinated omission). Which record
// made a sample:
//   - a positive: the later of its impression and its first in-window click
//     (Trace::FindClicked says which records those are; ProbedSource notes
//     the batch each record was read in);
//   - a negative: the first batch after which the watermark is past
//     ts + W. ProbedSource runs a WatermarkTracker of its own over exactly
//     what the pipeline's router sees (same records, partition changes and
//     order), so its watermark after each batch is the pipeline's. That
//     latency is also the negative's delay after the watermark passed.
// Samples that only the end of a bounded input closes (the watermark jumps
// to +inf) are counted as flushed_at_end and left out of the quantiles.
//
// Exactly-once visibility latency (TimedTxnSink): per sample, commit of its
// epoch returned minus the same start time.
//
// Threads: ProbedSource runs on the pipeline's source node, the sinks'
// Write on its sink node, TimedTxnSink::Commit on the checkpoint
// coordinator's committer thread. The batch log is appended by the source
// thread and read by the sink thread only up to a count published with
// release/acquire; a record's batch number is an atomic per record.
// Histograms are read after the run.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "src/bench/trace.h"
#include "src/pipeline/sink.h"
#include "src/pipeline/source.h"
#include "src/pipeline/watermark.h"
#include "txn/two_phase_commit.h"

namespace ctrjoin::bench {

inline int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Log-linear histogram of nanoseconds: 64 sub-buckets per power of two
// (relative error below 1.6%). One writer thread; read after the run.
class Histogram {
 public:
  Histogram();
  void Record(int64_t ns);
  uint64_t count() const { return count_; }
  // The upper edge of the bucket holding quantile q, in ms; 0 when empty.
  double QuantileMs(double q) const;
  double MaxMs() const { return static_cast<double>(max_) / 1e6; }
  double MeanMs() const { return count_ > 0 ? static_cast<double>(sum_) / count_ / 1e6 : 0; }

 private:
  static size_t Bucket(uint64_t v);
  static uint64_t UpperEdge(size_t bucket);
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t max_ = 0;
  uint64_t sum_ = 0;
};

// A paced source's schedule: record i is due at start + i / rate. start is
// set by the source at its first read.
struct Pacing {
  double events_per_s = 0;  // 0: not paced
  std::atomic<int64_t> start_ns{0};
  int64_t DueNs(uint64_t index) const {
    return start_ns.load(std::memory_order_relaxed) +
           static_cast<int64_t>(static_cast<double>(index) * 1e9 / events_per_s);
  }
};

class LatencyProbe {
 public:
  // trace and pacing (null: not paced) are borrowed.
  LatencyProbe(const Trace* trace, WatermarkOptions watermarks, const Pacing* pacing);

  // Source thread: the batch the source just returned.
  void OnBatch(const SourceBatch& batch);
  // Sink thread: samples whose Write just returned. If starts is not null,
  // appends the start time of every measured sample to it.
  void OnWritten(std::span<const Sample> samples, std::vector<int64_t>* starts);

  const Histogram& processing() const { return processing_; }
  const Histogram& positives() const { return positives_; }
  const Histogram& negative_delay() const { return negative_delay_; }
  uint64_t flushed_at_end() const { return flushed_at_end_; }
  uint64_t unresolved() const { return unresolved_; }
  // The sample ids written, corrections apart (for AccountSamples).
  const std::vector<uint64_t>& written_ids() const { return written_ids_; }
  uint64_t corrections() const { return corrections_; }

 private:
  struct Entry {
    int64_t start_ns = 0;
    int64_t watermark = 0;  // the pipeline's watermark after this batch
    bool end = false;       // the end of the input
  };
  static constexpr uint32_t kNone = ClickedImpression::kNone;
  uint32_t BatchOf(uint32_t record) const {
    return record == kNone ? kNone : batch_of_[record].load(std::memory_order_relaxed);
  }
  // The start time of the sample, or -1 (unresolved) or -2 (flushed at end).
  int64_t StartOf(const Sample& sample, size_t batches) const;

  // The batch log, in chunks allocated by the source thread as it grows; the
  // slots are fixed at construction so that the sink thread can read them.
  static constexpr size_t kChunk = 4096;
  const Entry& At(size_t i) const { return chunks_[i / kChunk][i % kChunk]; }

  const Trace* const trace_;
  const Pacing* const pacing_;
  WatermarkTracker tracker_;  // source thread only
  std::unique_ptr<std::atomic<uint32_t>[]> batch_of_;
  std::vector<std::unique_ptr<Entry[]>> chunks_;  // entries [0, published_) are immutable
  std::atomic<size_t> published_{0};
  std::vector<std::pair<PartitionId, int64_t>> batch_max_;  // reused, source thread

  // Sink thread.
  Histogram processing_;
  Histogram positives_;
  Histogram negative_delay_;
  uint64_t flushed_at_end_ = 0;
  uint64_t unresolved_ = 0;
  std::vector<uint64_t> written_ids_;
  uint64_t corrections_ = 0;
};

// Source decorator: reports every batch to the probe.
class ProbedSource : public Source {
 public:
  ProbedSource(Source* inner, LatencyProbe* probe) : inner_(inner), probe_(probe) {}
  Result<SourceBatch> Next(size_t max_records) override;
  std::string Describe() const override { return inner_->Describe(); }

 private:
  Source* const inner_;
  LatencyProbe* const probe_;
};

// Plain sink decorator: measures after the inner Write.
class TimedSampleSink : public SampleSink {
 public:
  TimedSampleSink(SampleSink* inner, LatencyProbe* probe) : inner_(inner), probe_(probe) {}
  Status Write(std::span<const Sample> samples) override;
  Status Flush() override { return inner_->Flush(); }
  std::string Describe() const override { return inner_->Describe(); }

 private:
  SampleSink* const inner_;
  LatencyProbe* const probe_;
};

// Transactional sink decorator: processing latency after the inner Write,
// visibility latency after the inner Commit of the sample's epoch. The run's
// final epoch (EndOfOutput) is left out of the visibility and counted: a
// bounded input's end closes every window in it at once, and its commit says
// nothing of the steady state.
class TimedTxnSink : public TransactionalSink {
 public:
  TimedTxnSink(TransactionalSink* inner, LatencyProbe* probe) : inner_(inner), probe_(probe) {}
  Status Begin(EpochId epoch) override;
  Status Write(std::span<const Sample> samples) override;
  Status PreCommit(EpochId epoch) override;
  Status Commit(EpochId epoch) override;
  Status Abort(EpochId epoch) override;
  Result<EpochId> Recover(EpochId last_checkpoint) override {
    return inner_->Recover(last_checkpoint);
  }
  std::string Describe() const override { return inner_->Describe(); }
  void EndOfOutput() override;
  Status WriteDeadLetter(const DeadLetter& letter) override {
    return inner_->WriteDeadLetter(letter);
  }
  size_t MaxEpochsInFlight() const override { return inner_->MaxEpochsInFlight(); }

  // Read after the run.
  const Histogram& visibility() const { return visibility_; }
  uint64_t final_epoch_samples() const { return final_epoch_samples_; }

 private:
  TransactionalSink* const inner_;
  LatencyProbe* const probe_;
  std::atomic<uint64_t> open_{0};     // written by the sink thread
  std::atomic<uint64_t> final_{0};    // the epoch open at EndOfOutput (sink thread)
  uint64_t final_epoch_samples_ = 0;  // committer thread
  std::vector<int64_t> open_starts_;  // sink thread
  std::mutex mu_;                     // guards pre_committed_
  std::map<uint64_t, std::vector<int64_t>> pre_committed_;
  Histogram visibility_;  // committer thread
};

}  // namespace ctrjoin::bench
