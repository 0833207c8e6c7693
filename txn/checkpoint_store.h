#pragma once
// CheckpointStore: the checkpoints on disk, under one directory.
//
//   <dir>/chk-<epoch, 20 digits>              a complete checkpoint: its
//                                             CheckpointMeta (the state is in
//                                             the shards' changelogs, up to the
//                                             positions it names)
//   <dir>/chk-<epoch>.inprogress              being written; removed at open
//   <dir>/TRANSACTIONAL_IDS                   the largest transactional-id pool
//                                             the job ever used (Kafka sink)
//   <dir>/NOTHING_COMMITTED                   from a fresh start until the first
//                                             commit (Kafka sink)
//
// A checkpoint is complete once its file has its final name: it is written
// and fsynced under the in-progress name, renamed, and the directory
// fsynced (two fsyncs).
//
// Called from the checkpoint coordinator's committer thread (Complete,
// Retain) and, before the run, from the thread that starts it; the methods
// keep no mutable state, so no lock is needed. Owns nothing but paths.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "src/core/status.h"
#include "src/pipeline/checkpoint.h"

namespace ctrjoin {

class CheckpointStore {
 public:
  // Creates dir if needed and removes in-progress checkpoints.
  static Result<std::unique_ptr<CheckpointStore>> Open(const std::string& dir);
  // For reading only (admin commands, while a run may be writing): changes
  // nothing on disk; dir must exist.
  static Result<std::unique_ptr<CheckpointStore>> Inspect(const std::string& dir);

  // Writes meta and makes the checkpoint complete and durable.
  Status Complete(const CheckpointMeta& meta) const;
  // Whether epoch's checkpoint has its final name (complete, perhaps not
  // yet durable).
  bool Exists(uint64_t epoch) const;
  // Complete checkpoints, ascending by epoch.
  Result<std::vector<uint64_t>> List() const;
  Result<CheckpointMeta> Load(uint64_t epoch) const;
  // Removes every checkpoint (complete or not) above epoch.
  Status DiscardAbove(uint64_t epoch) const;
  // Keeps the `keep` newest complete checkpoints at or below `committed`
  // (and everything above it, not committed yet); removes the rest.
  // Returns the oldest one kept (0: none).
  Result<uint64_t> Retain(uint64_t committed, uint32_t keep) const;

  const std::filesystem::path& dir() const { return dir_; }

  // The largest transactional-id pool the job has used (0: none recorded),
  // so that a shrunk pool still fences every id (sink.kafka.pool_size).
  // Called before the sink opens, from the thread that starts the run.
  static Result<int> RecordedPoolSize(const std::string& dir);
  // Records pool_size durably if it is larger than the recorded one; called
  // after the sink opened and before its first transaction.
  static Status RecordPoolSize(const std::string& dir, int pool_size);

  // Whether no epoch of this job has committed yet, for an output that
  // records its committed epoch (Kafka's group offsets): complete
  // checkpoints and no committed epoch in the output are then a job stopped
  // before its first commit, not lost offsets. Recorded durably at a fresh
  // start, before the first epoch begins, and cleared after the first
  // commit (and by a restart that finds an epoch committed). Called from the
  // thread that starts the run, then from the committer thread.
  bool NothingCommitted() const;
  Status RecordNothingCommitted() const;
  Status ClearNothingCommitted() const;

 private:
  explicit CheckpointStore(std::filesystem::path dir) : dir_(std::move(dir)) {}
  std::filesystem::path Final(uint64_t epoch) const;
  std::filesystem::path InProgress(uint64_t epoch) const;

  const std::filesystem::path dir_;
};

}  // namespace ctrjoin
