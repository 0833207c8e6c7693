#pragma once
// TransactionalFileSink: the file sink under two-phase commit. Each epoch's
// samples go to one staged file, published by an atomic rename:
//
//   <dir>/_staging/<epoch>/samples.inprogress   while the epoch is open
//   <dir>/_staging/<epoch>/samples.precommitted  after PreCommit (fsynced)
//   <dir>/epoch-<epoch, 20 digits>.<jsonl|tfrecord>  after Commit
//
// PreCommit flushes and fsyncs the file, renames it to .precommitted and
// fsyncs the directory; Commit renames it into <dir> and fsyncs <dir>, so a
// reader listing <dir> sees whole epochs only. Recover commits pre-committed
// epochs up to the last checkpoint and removes every other staged epoch.
// Epochs that wrote nothing publish no file.
//
// Called by one thread at a time (TransactionalSink contract). Owns the open
// file.

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "sinks/sample_format.h"
#include "txn/two_phase_commit.h"

namespace ctrjoin {

struct TransactionalFileSinkOptions {
  std::string dir;  // required
  SampleFormat format = SampleFormat::kJson;

  Status Validate() const;  // "sink.path: ..."
};

class TransactionalFileSink : public TransactionalSink {
 public:
  static Result<std::unique_ptr<TransactionalFileSink>> Open(
      const TransactionalFileSinkOptions& options);
  ~TransactionalFileSink() override;

  Status Begin(EpochId epoch) override;
  Status Write(std::span<const Sample> samples) override;
  Status PreCommit(EpochId epoch) override;
  Status Commit(EpochId epoch) override;
  Status Abort(EpochId epoch) override;
  Result<EpochId> Recover(EpochId last_checkpoint) override;
  std::string Describe() const override;

  // Where a committed epoch's file is.
  std::filesystem::path CommittedPath(EpochId epoch) const;

 private:
  explicit TransactionalFileSink(TransactionalFileSinkOptions options);
  std::filesystem::path StagingDir(EpochId epoch) const;
  Status CloseFile();

  const TransactionalFileSinkOptions options_;
  const std::filesystem::path dir_;
  const std::filesystem::path staging_;
  EpochId open_;                 // 0 when no epoch is open
  std::FILE* file_ = nullptr;    // the open epoch's file
  uint64_t written_ = 0;         // samples in the open epoch
  std::string buffer_;           // reused
};

}  // namespace ctrjoin
