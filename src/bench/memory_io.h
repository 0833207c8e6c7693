#pragma once
// In-process sources and discarding sinks for the benchmarks (ctrjoin bench,
// e2e_bench), so that the pipeline can be measured without a broker or a
// disk in the way.
//
//   MemorySource      replays a Trace's records from memory (payloads are
//                     moved out, not copied), optionally paced at a rate;
//   GeneratingSource  runs a WorkloadGenerator inside Next (memory runs:
//                     no trace held in memory), then asks the run to stop;
//   CountingSink      encodes every sample in the configured format (so
//                     encoding is paid), counts, and discards (`--sink null`);
//   MemoryTxnSink     the same under two-phase commit: epochs are counted,
//                     pre-committed and committed in memory;
//   CountingDeadLetters counts and discards.
//
// Threads: sources are called from the pipeline's source node, sinks from its
// sink node (Source / SampleSink contracts); MemoryTxnSink's Commit and Abort
// of a pre-committed epoch also from the coordinator's committer thread.

#include <fmt/format.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "sinks/sample_format.h"
#include "src/bench/probe.h"
#include "src/bench/trace.h"
#include "src/io/workload.h"
#include "src/pipeline/sink.h"
#include "src/pipeline/source.h"
#include "txn/two_phase_commit.h"

namespace ctrjoin::bench {

class MemorySource : public Source {
 public:
  // Replays the trace's records [0, limit) (limit 0: all); pacing may be null.
  MemorySource(Trace* trace, uint64_t limit, Pacing* pacing);
  Result<SourceBatch> Next(size_t max_records) override;
  std::string Describe() const override { return "memory trace"; }
  // When the pipeline first asked for records (0 before): a run's clock
  // starts there, after the graph, stores and sinks were set up.
  int64_t first_read_ns() const { return first_read_ns_.load(); }

 private:
  Trace* const trace_;
  const uint64_t end_;
  Pacing* const pacing_;
  Placement placement_;
  uint64_t next_ = 0;
  bool started_ = false;
  std::atomic<int64_t> first_read_ns_{0};
};

class GeneratingSource : public Source {
 public:
  // Generates until `impressions` impressions were made, then delivers
  // nothing for settle_ms (so the pipeline catches up and the state can be
  // read) and calls stop() (which asks the run to stop, from the source
  // thread): pending windows are not flushed.
  GeneratingSource(WorkloadOptions workload, int32_t partitions, uint64_t impressions,
                   int64_t settle_ms, std::function<void()> stop);
  Result<SourceBatch> Next(size_t max_records) override;
  std::string Describe() const override { return "workload generator"; }
  uint64_t records() const { return records_; }

 private:
  WorkloadGenerator gen_;
  const int32_t partitions_;
  Placement placement_;
  const uint64_t impressions_;
  const int64_t settle_ms_;
  uint64_t records_ = 0;
  bool started_ = false;
  int64_t done_ns_ = 0;  // when the last impression was generated
  const std::function<void()> stop_;
};

class CountingSink : public SampleSink {
 public:
  explicit CountingSink(SampleFormat format = SampleFormat::kJson) : format_(format) {}
  Status Write(std::span<const Sample> samples) override;
  Status Flush() override { return Status::Ok(); }
  std::string Describe() const override {
    return fmt::format("null sink ({} encoded, counted, discarded)", NameOf(format_));
  }
  uint64_t samples() const { return samples_; }
  uint64_t bytes() const { return bytes_; }

 private:
  const SampleFormat format_;
  std::string buffer_;
  uint64_t samples_ = 0;
  uint64_t bytes_ = 0;
};

class MemoryTxnSink : public TransactionalSink {
 public:
  explicit MemoryTxnSink(SampleFormat format = SampleFormat::kJson) : open_(format) {}
  Status Begin(EpochId epoch) override;
  Status Write(std::span<const Sample> samples) override;
  Status PreCommit(EpochId epoch) override;
  Status Commit(EpochId epoch) override;
  Status Abort(EpochId epoch) override;
  Result<EpochId> Recover(EpochId last_checkpoint) override;
  std::string Describe() const override {
    return "in-memory transactional sink (encoded, counted, discarded)";
  }
  uint64_t committed_samples() const { return committed_.load(); }

 private:
  CountingSink open_;                           // sink thread: the open epoch's encoder
  uint64_t open_base_ = 0;                      // open_.samples() when the open epoch began
  std::mutex mu_;                               // guards pre_committed_
  std::map<uint64_t, uint64_t> pre_committed_;  // epoch -> samples
  std::atomic<uint64_t> committed_{0};
};

class CountingDeadLetters : public DeadLetterSink {
 public:
  Status Write(const DeadLetter&) override {
    ++count_;
    return Status::Ok();
  }
  Status Flush() override { return Status::Ok(); }
  uint64_t count() const { return count_; }

 private:
  uint64_t count_ = 0;
};

}  // namespace ctrjoin::bench
