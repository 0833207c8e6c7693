#pragma once
// TransactionalFileSink: the file sink under two-phase commit. Samples go
// to rolled parts, published whole by an atomic rename once the epoch that
// closed them commits:
//
//   <dir>/_staging/part-<F>.inprogress       the open part, from epoch F on
//   <dir>/_staging/<E>/POSITION              "F <bytes>": epoch E pre-committed,
//                                            the part holds it up to <bytes>
//   <dir>/_staging/<E>/part-<F>.precommitted the part closed (rolled) by epoch E
//   <dir>/part-<E, 20 digits>.<jsonl|tfrecord>[.gz]   after E commits
//
// A part is closed at the pre-commit of the epoch in which it reached
// roll_bytes or roll_ms (both 0: every epoch, one part per epoch), and at
// the run's last epoch (EndOfOutput). Readers glob <dir>/part-*: staging,
// dead letters and markers are outside that glob. GZIP parts are compressed
// when published (the committer thread), so a staged part stays a plain
// file that recovery can cut.
//
// Dead letters are per epoch (JSON lines, the dead-letter file's format):
//
//   <dir>/_staging/<E>/dead-letters.inprogress | .precommitted
//   <dir>/dead-letters/epoch-<E, 20 digits>.jsonl  after Commit
//
// Write hands every few MiB of the open part to the kernel's write-back
// (sync_file_range, without waiting), so that PreCommit's fsync waits for
// the epoch's last MiBs rather than all of it on the sink thread.
//
// PreCommit flushes and fsyncs the part (and the dead letters), then either
// moves the part into the epoch's directory (a roll) or writes POSITION, and
// fsyncs the directories. Commit publishes the dead letters into
// <dir>/dead-letters, then a closed part into <dir>, fsyncing each directory,
// so a reader listing <dir> sees whole parts of committed epochs only, and
// once a part is visible so are the dead letters of its epochs. The newest
// committed POSITION is kept: it says how much of the open part is
// committed. Recover commits pre-committed epochs up to the last checkpoint,
// cuts the open part back to the committed position (also a part closed by
// a later epoch: it becomes the open part again) and removes every other
// staged epoch. Epochs that wrote nothing publish no file.
//
// One writer per output directory (txn/README.md, "One writer per job"):
// Open locks <dir>/_staging (a second process on it is refused, or waits),
// and takes the next owner generation in <dir>/_staging/OWNER. Every step
// that touches staged or published files (Begin, PreCommit, Commit, Abort)
// first checks that OWNER still holds this sink's generation: a newer owner
// (say on another host, where the lock cannot reach) fences this one, which
// then fails as fenced and touches nothing.
//
// Threads: the pipeline's sink thread calls Begin, Write, PreCommit and
// EndOfOutput, and Abort of the open epoch; the checkpoint coordinator's
// committer thread calls Commit and Abort of a pre-committed epoch,
// concurrently with the sink thread working on the next one. The open part
// and the open epoch's files are the sink thread's; a closed part and a
// pre-committed epoch's directory the committer's (kept_ too); the one field
// both read is open_, guarded by mu_ (never held across file I/O); Commit
// refuses the open epoch. Recover runs before either thread starts.
//
// Owns the open part, the open epoch's dead-letter file and the directory
// lock.

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
  FileCompression compression = FileCompression::kNone;
  // A part closes at the first epoch end at which it holds this many bytes
  // or is this old; both 0: at every epoch end.
  uint64_t roll_bytes = 0;
  int64_t roll_ms = 0;
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
  void EndOfOutput() override { end_of_output_ = true; }
  Status Commit(EpochId epoch) override;
  Status Abort(EpochId epoch) override;
  Result<EpochId> Recover(EpochId last_checkpoint) override;
  std::string Describe() const override;

  // Where the part closed by a committed epoch is, and the epoch's dead
  // letters' file.
  std::filesystem::path CommittedPath(EpochId epoch) const;
  std::filesystem::path CommittedDeadLettersPath(EpochId epoch) const;

 private:
  TransactionalFileSink(TransactionalFileSinkOptions options, std::unique_ptr<DirectoryLock> lock,
                        uint64_t owner);
  std::filesystem::path StagingDir(EpochId epoch) const;
  EpochId OpenEpoch() const;
  // Flushes and fsyncs file (the open part or the open epoch's dead
  // letters); CloseFile also closes it.
  Status SyncFile(EpochId epoch, std::FILE* file);
  Status CloseFile(EpochId epoch, std::FILE*& file);
  // Renames a staged file of epoch into published (gzip: compresses it
  // there), if it is staged and not empty, and fsyncs published's directory.
  Status Publish(EpochId epoch, const std::filesystem::path& staged,
                 const std::filesystem::path& published, bool gzip);
  // Opens the part for epoch first (a new one at 0 bytes, or one recovery
  // cut back to `bytes`).
  Status OpenPart(EpochId first, uint64_t bytes);
  // Starts write-back of the open part's unflushed bytes once there are
  // kWriteBehindBytes of them (does not wait for the disk).
  Status WriteBehind();
  std::filesystem::path InProgressPath(EpochId first) const;
  // Whether the open part closes at this epoch's end.
  bool RollDue() const;
  // Fenced when <dir>/_staging/OWNER names a newer owner than this sink.
  Status CheckOwner() const;

  const TransactionalFileSinkOptions options_;
  const std::filesystem::path dir_;
  const std::filesystem::path staging_;
  const std::unique_ptr<DirectoryLock> lock_;
  const uint64_t owner_;        // this sink's generation in <dir>/_staging/OWNER
  mutable std::mutex mu_;       // guards open_
  EpochId open_;                // 0 when no epoch is open
  std::FILE* file_ = nullptr;   // the open part; sink thread only
  EpochId part_first_;          // the open part's first epoch
  uint64_t part_bytes_ = 0;     // written to the open part
  uint64_t part_flushed_ = 0;   // of it, handed to the kernel's write-back (WriteBehind)
  int64_t part_opened_ms_ = 0;  // monotonic
  uint64_t epoch_start_ = 0;    // the open part's size when the open epoch began
  bool end_of_output_ = false;  // the next pre-commit closes the part
  EpochId kept_;                // committed epoch whose POSITION is kept (committer thread)
  // The open epoch's dead letters, created at its first; sink thread only.
  std::FILE* dead_letters_file_ = nullptr;
  std::string buffer_;  // reused by Write; sink thread only
};

}  // namespace ctrjoin
