#pragma once
// Two-phase commit, the contract between the checkpoint coordinator and the
// sinks that make output visible exactly once (txn/README.md, "Two-phase commit").
//
// Time is cut into epochs. A participant's output for epoch N is written
// while N is open, made durable but invisible by PreCommit(N), and visible by
// Commit(N). Epochs commit strictly in order; epoch N+1 may be open (and
// written) while N waits to commit.
//
// Errors say what they mean for the caller (Status::effect()):
//   kNoEffect      nothing happened: retry, or Abort the epoch;
//   kEffectUnknown it may have happened: retry the same call, which must be
//                  idempotent (Commit and Abort are);
//   kFenced        another instance of this job owns the output now: stop.
//
// Threads: Begin, Write and PreCommit come from one thread (the pipeline's
// sink node); Commit and Abort of a pre-committed epoch may come from
// another (the coordinator's committer) at the same time. The coordinator
// never calls Begin(M) before every epoch that could share M's resources
// has been committed or aborted, and aborts the open epoch only from the
// sink thread.

#include <compare>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "src/core/event.h"
#include "src/core/status.h"
#include "src/pipeline/sink.h"

namespace ctrjoin {

// Epochs are numbered from 1; 0 means "none".
struct EpochId {
  uint64_t value = 0;
  auto operator<=>(const EpochId&) const = default;
};

class TransactionalSink {
 public:
  virtual ~TransactionalSink() = default;
  // Opens epoch `epoch` (greater than every epoch seen before).
  virtual Status Begin(EpochId epoch) = 0;
  // Appends to the open epoch.
  virtual Status Write(std::span<const Sample> samples) = 0;
  // Appends a dead letter to the open epoch: it becomes visible with the
  // epoch's samples at Commit, and is discarded with them by Abort. A sink
  // without a dead-letter output refuses (the caller then never routes dead
  // letters to it, see txn/README.md "Dead letters").
  virtual Status WriteDeadLetter(const DeadLetter& /*letter*/) {
    return Status::InvalidArgument(Describe() + ": has no dead-letter output");
  }
  // Appends a chunk of task `task`'s changelog to the open epoch (mode
  // group: the task's state commits with the epoch's output and offsets).
  virtual Status WriteChangelog(const ChangelogChunk& /*chunk*/) {
    return Status::InvalidArgument(Describe() + ": has no changelog output");
  }
  // Makes the open epoch durable (all of it written) and closes it. After OK,
  // Commit(epoch) can complete while this process lives. Whether a
  // pre-committed epoch survives a crash depends on the sink: staged files
  // do (Recover commits them), a Kafka transaction does not (the restart
  // aborts it and recovery restores the state matching the input offsets
  // committed in Kafka).
  virtual Status PreCommit(EpochId epoch) = 0;
  // The next pre-commit is the run's last: a sink that holds output across
  // epochs (the file sink's rolled parts) closes it with that epoch.
  // Called from the sink thread, just before that PreCommit.
  virtual void EndOfOutput() {}
  // Makes a pre-committed epoch visible. Idempotent.
  virtual Status Commit(EpochId epoch) = 0;
  // Discards an epoch (open or pre-committed, never committed). Idempotent.
  virtual Status Abort(EpochId epoch) = 0;
  // After a restart: commits every surviving pre-committed epoch <=
  // last_checkpoint and discards everything else left over. Returns the
  // highest epoch it committed or found committed.
  virtual Result<EpochId> Recover(EpochId last_checkpoint) = 0;
  virtual std::string Describe() const = 0;
  // How many epochs may exist at once, the open one included (pre-committed
  // ones wait to commit): the coordinator begins epoch N+1 only once at most
  // this many minus one are unfinished. A pool of k transactional ids allows
  // k; staged files have no such bound.
  virtual size_t MaxEpochsInFlight() const { return 2; }
};

}  // namespace ctrjoin
