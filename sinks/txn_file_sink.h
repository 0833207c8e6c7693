#pragma once
// TransactionalFileSink: the file sink under two-phase commit. Each epoch's
// samples go to one staged file, published by an atomic rename:
//
//   <dir>/_staging/<epoch>/samples.inprogress   while the epoch is open
//   <dir>/_staging/<epoch>/samples.precommitted  after PreCommit (fsynced)
//   <dir>/epoch-<epoch, 20 digits>.<jsonl|tfrecord>  after Commit
//
// and its dead letters (JSON lines, the dead-letter file's format) likewise:
//
//   <dir>/_staging/<epoch>/dead-letters.inprogress | .precommitted
//   <dir>/dead-letters/epoch-<epoch, 20 digits>.jsonl  after Commit
//
// PreCommit flushes and fsyncs the files, renames them to .precommitted and
// fsyncs the directory; Commit renames the dead letters into
// <dir>/dead-letters, then the samples into <dir>, fsyncing each directory,
// so a reader listing <dir> sees whole epochs only, and once an epoch's
// samples are visible so are its dead letters. Recover commits pre-committed
// epochs up to the last checkpoint and removes every other staged epoch.
// Epochs that wrote nothing publish no file (and no dead letters, no
// dead-letter file).
//
// One writer per output directory (txn/README.md, "One writer per job"):
// Open locks <dir>/_staging (a second process on it is refused, or waits),
// and takes the next owner generation in <dir>/_staging/OWNER. Every step
// that touches staged or published files (Begin, PreCommit, Commit, Abort)
// first checks that OWNER still holds this sink's generation: a newer owner
// (say on another host, where the lock cannot reach) fences this one, which
// then fails as fenced and touches nothing.
//
// Threads: the pipeline's sink thread calls Begin, Write and PreCommit, and
// Abort of the open epoch; the checkpoint coordinator's committer thread
// calls Commit and Abort of a pre-committed epoch, concurrently with the sink
// thread working on the next one. A pre-committed epoch's files are touched
// by the committer only, the open epoch's file by the sink thread only; the
// one field both read is open_, guarded by mu_ (never held across file I/O);
// Commit refuses the open epoch. Recover runs before either thread starts.
//
// Owns the open file and the directory lock.

#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include "sinks/sample_format.h"
#include "src/core/dir_lock.h"
#include "txn/two_phase_commit.h"

namespace ctrjoin {

struct TransactionalFileSinkOptions {
  std::string dir;  // required
  SampleFormat format = SampleFormat::kJson;
  LockWait lock_wait;  // when another process holds the directory

  Status Validate() const;  // "sink.path: ..."
};

class TransactionalFileSink : public TransactionalSink {
 public:
  static Result<std::unique_ptr<TransactionalFileSink>> Open(
      const TransactionalFileSinkOptions& options);
  ~TransactionalFileSink() override;
  // Staged epochs share nothing: a few may wait to commit behind a slow
  // rename or fsync while the next one is written.
  size_t MaxEpochsInFlight() const override { return 4; }

  Status Begin(EpochId epoch) override;
  Status Write(std::span<const Sample> samples) override;
  Status WriteDeadLetter(const DeadLetter& letter) override;
  Status PreCommit(EpochId epoch) override;
  Status Commit(EpochId epoch) override;
  Status Abort(EpochId epoch) override;
  Result<EpochId> Recover(EpochId last_checkpoint) override;
  std::string Describe() const override;

  // Where a committed epoch's file is, and its dead letters' file.
  std::filesystem::path CommittedPath(EpochId epoch) const;
  std::filesystem::path CommittedDeadLettersPath(EpochId epoch) const;

 private:
  TransactionalFileSink(TransactionalFileSinkOptions options, std::unique_ptr<DirectoryLock> lock,
                        uint64_t owner);
  std::filesystem::path StagingDir(EpochId epoch) const;
  EpochId OpenEpoch() const;
  // Flushes, fsyncs and closes *file (the open epoch's).
  Status CloseFile(EpochId epoch, std::FILE*& file);
  // Renames a staged file of epoch into published, if it is staged and not
  // empty, and fsyncs published's directory.
  Status Publish(EpochId epoch, const std::filesystem::path& staged,
                 const std::filesystem::path& published);
  // Fenced when <dir>/_staging/OWNER names a newer owner than this sink.
  Status CheckOwner() const;

  const TransactionalFileSinkOptions options_;
  const std::filesystem::path dir_;
  const std::filesystem::path staging_;
  const std::unique_ptr<DirectoryLock> lock_;
  const uint64_t owner_;       // this sink's generation in <dir>/_staging/OWNER
  mutable std::mutex mu_;      // guards open_
  EpochId open_;               // 0 when no epoch is open
  std::FILE* file_ = nullptr;  // the open epoch's file; sink thread only
  // The open epoch's dead letters, created at its first; sink thread only.
  std::FILE* dead_letters_file_ = nullptr;
  std::string buffer_;  // reused by Write; sink thread only
};

}  // namespace ctrjoin
