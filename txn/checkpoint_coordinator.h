#pragma once
// CheckpointCoordinator: cuts the run into epochs and drives two-phase
// commit (txn/README.md, "Epochs" and "Recovery").
//
// Per epoch N:
//   1. NextBarrier (source node, every checkpoint.interval_ms) injects
//      barrier N at the source's current positions;
//   2. each shard appends N's marker to its changelog when the barrier
//      reaches it (O(1); the log's I/O thread makes it durable);
//   3. OnBarrier (sink node, once all of N's output is written): the sink
//      pre-commits N, epoch N+1 is begun and N is handed to the committer
//      thread;
//   4. the committer thread, strictly in epoch order while N+1 is
//      processed: waits until every shard's marker of N is durable, completes
//      checkpoint N (its small metadata, atomic rename), commits N (after
//      before_commit, which for Kafka adds the input offsets to N's
//      transaction), deletes checkpoints beyond the newest `retain`
//      committed ones and tells the changelogs (released) which is the
//      oldest still kept.
// Up to the sink's MaxEpochsInFlight() - 1 epochs wait to commit while the
// next one runs: if commits fall further behind, OnBarrier waits
// (backpressure). If a commit
// fails, the run fails and the restart recovers; later epochs are aborted
// (none of them has a complete checkpoint yet, so none was promised).
//
// Recovery (Recover, before Start): the last committed epoch C is what the
// output says (committed_epoch: Kafka's committed offsets) or, for files,
// the newest complete checkpoint; the sink recovers to C (files: staged
// epochs <= C are published, others removed), checkpoints above C are
// discarded, and checkpoint C is returned for the caller to restore.
//
// Also the pipeline's SampleSink and DeadLetterSink: both write to the open
// epoch (dead letters through TransactionalSink::WriteDeadLetter), from the
// sink node, so a batch's dead letters commit or abort with its samples.
//
// Logs: one info line about every 5 s while epochs commit (the last epoch
// committed, how many since the last line, its checkpoint's duration and
// size); a debug line per completed checkpoint and per commit.
//
// Threads: NextBarrier from the source node, OnBarrier/Write/Flush from the
// sink node, an internal committer thread; Open/Recover/Start/Close from the
// thread that runs the pipeline. Owns the committer thread and the
// CheckpointStore; borrows the TransactionalSink and the metrics.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "src/pipeline/checkpoint.h"
#include "src/pipeline/sink.h"
#include "txn/checkpoint_metrics.h"
#include "txn/checkpoint_store.h"
#include "txn/two_phase_commit.h"

namespace ctrjoin {

struct CheckpointOptions {
  bool enabled = false;                // exactly-once output; needs a file or Kafka sink
  int64_t interval_ms = 1'000;         // epoch length, 10 ms .. 1 hour
  uint32_t retain = 3;                 // complete checkpoints kept, 1..100
  std::string dir;                     // default: <state.dir>/checkpoints
  uint64_t changelog_segment_mb = 16;  // a shard's changelog rolls past this; 1..1024

  Status Validate() const;  // "checkpoint.interval_ms: ..."
};

// Where the output records which epoch it committed (set by the caller).
struct CommitLog {
  // The last committed epoch as the output records it; empty: the newest
  // complete checkpoint counts as committed (file sink).
  std::function<Result<uint64_t>()> committed_epoch;
  // On the committer thread, before Commit(N): e.g. adds the input offsets
  // of N's checkpoint to N's Kafka transaction.
  std::function<Status(EpochId, const CheckpointMeta&)> before_commit;
  // Mode group: the state is in the output too (each task's changelog
  // partition) and restores per task as tasks are assigned, so Recover
  // restores nothing: it only numbers this run's epochs above the newest
  // committed_epoch (that of any process of the job).
  bool state_in_output = false;
};

// What the operator said to do when the output records no committed epoch
// while complete checkpoints exist (txn/README.md, "Lost offsets").
struct RecoverOptions {
  bool reset_state = false;      // discard the checkpoints and start afresh
  uint64_t from_checkpoint = 0;  // take this complete checkpoint as committed
};

class CheckpointCoordinator : public CheckpointHooks, public SampleSink, public DeadLetterSink {
 public:
  static Result<std::unique_ptr<CheckpointCoordinator>> Open(CheckpointOptions options,
                                                             TransactionalSink* sink, CommitLog log,
                                                             CheckpointMetrics* metrics);
  ~CheckpointCoordinator() override;

  // The checkpoint to continue from, or nullopt to start afresh. Where the
  // output records its committed epoch (Kafka) and records none while
  // complete checkpoints exist (the group's offsets expired, were reset, or
  // group_id changed), starting afresh would duplicate or lose samples: that
  // is refused (InvalidArgument, exit 2) unless `options` says what to do.
  // Not when no epoch of the job ever committed (the store's
  // NothingCommitted): its checkpoints are then discarded and it starts
  // afresh.
  Result<std::optional<CheckpointMeta>> Recover(const RecoverOptions& options = {});
  // Begins the first epoch and the committer thread.
  Status Start();
  // After the pipeline ended: lets pending commits finish (or aborts them
  // if a commit failed), aborts the open epoch if the run ended without its
  // final barrier, stops the committer. Returns the first commit error.
  Status Close();

  // CheckpointHooks
  Result<std::shared_ptr<Barrier>> NextBarrier(bool final) override;
  Status OnBarrier(Barrier& barrier) override;
  Result<std::shared_ptr<Barrier>> BarrierNow() override;
  Result<bool> WaitCommitted(uint64_t epoch, std::chrono::milliseconds wait) override;

  // SampleSink and DeadLetterSink: the open epoch. Flush serves both.
  Status Write(std::span<const Sample> samples) override;
  Status Write(const DeadLetter& letter) override;
  Status WriteChangelog(const ChangelogChunk& chunk) override;
  Status Flush() override;
  std::string Describe() const override;

  const CheckpointStore& store() const { return *store_; }
  // Before Start: the changelog generation this run's shards write (stored
  // in every checkpoint's metadata), and what to call on the committer
  // thread after each commit: no checkpoint older than `oldest_kept` will be
  // restored any more, so the changelogs may delete what only older ones
  // needed (an error is logged, not fatal).
  void UseChangelogs(uint64_t generation, std::function<Status(uint64_t oldest_kept)> released) {
    changelog_generation_ = generation;
    released_ = std::move(released);
  }

 private:
  struct PendingCommit {
    EpochId epoch;
    CheckpointMeta meta;
    std::chrono::steady_clock::time_point injected;
    std::chrono::steady_clock::time_point at_sink;        // OnBarrier called
    std::chrono::steady_clock::time_point pre_committed;  // the sink's PreCommit returned
    bool final = false;
    std::vector<std::chrono::steady_clock::time_point> batch_reads;
    std::vector<ShardMark> marks;
  };

  CheckpointCoordinator(CheckpointOptions options, TransactionalSink* sink, CommitLog log,
                        CheckpointMetrics* metrics, std::unique_ptr<CheckpointStore> store);
  std::shared_ptr<Barrier> NewBarrier(bool final, std::chrono::steady_clock::time_point now);
  void CommitLoop();
  Status CommitOne(const PendingCommit& pending);
  // Waits for the shards' markers (sets `durable` when they are), then
  // writes the checkpoint's metadata.
  Status CompleteCheckpoint(const PendingCommit& pending,
                            std::chrono::steady_clock::time_point& durable);
  // Recover with log_.state_in_output.
  Result<std::optional<CheckpointMeta>> RecoverNumbering(const RecoverOptions& options);
  // Recover's answer when the output lost its committed epoch.
  Result<uint64_t> LostOffsets(const std::vector<uint64_t>& complete,
                               const RecoverOptions& options);
  Status CommitError();
  // Whether the sink node may write to the open epoch now (the "write"
  // crash point).
  Status WritableEpoch();
  // Waits until at most `pending` epochs wait to commit.
  Status WaitForCommits(size_t pending);

  const CheckpointOptions options_;
  TransactionalSink* const sink_;
  const CommitLog log_;
  CheckpointMetrics* const metrics_;
  const std::unique_ptr<CheckpointStore> store_;

  // Source thread only.
  uint64_t next_barrier_epoch_ = 0;
  std::chrono::steady_clock::time_point next_due_;
  bool final_sent_ = false;
  std::atomic<bool> barrier_in_flight_{false};

  // Sink thread (and Start/Close).
  EpochId open_;
  uint64_t changelog_generation_ = 0;
  std::function<Status(uint64_t)> released_;  // set before Start

  // Shared with the committer thread.
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<PendingCommit> queue_;  // pre-committed, in epoch order; front is being committed
  bool stopping_ = false;
  Status commit_error_;
  uint64_t committed_epoch_ = 0;  // the last epoch this run committed
  std::atomic<bool> failed_{false};
  std::thread committer_;

  // Set by Recover, then the committer thread's: whether the store still
  // records that no epoch has committed (cleared after the first commit).
  bool nothing_committed_ = false;

  // Committer thread only: the progress line (at most one per kProgressEvery).
  std::chrono::steady_clock::time_point next_progress_;
  uint64_t committed_since_progress_ = 0;
};

}  // namespace ctrjoin
