#pragma once
// One writer per directory: an exclusive flock(2) on <dir>/LOCK, held for as
// long as the DirectoryLock lives (and released by the kernel when the
// process dies, kill -9 included). The holder's pid is written into the file
// so that a refusal can name it. Taken at start-up, before anything in the
// directory is read or written, for the job's state, checkpoint and file-sink
// directories (txn/README.md, "One writer per job").
//
// flock locks belong to an open file description: a second DirectoryLock on
// the same directory conflicts even within one process, and the descriptor
// is close-on-exec, so a child process never inherits the lock.
//
// Acquire runs on the calling thread (main's, at start-up); the object is
// owned by whoever runs the job and released from that thread.

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "src/core/status.h"

namespace ctrjoin {

// How DirectoryLock::Acquire waits for a lock another process holds.
struct LockWait {
  // How long to wait for a held lock: zero refuses at once.
  std::chrono::milliseconds timeout{0};
  // Asked between attempts; true gives up at once (a stop during the wait).
  std::function<bool()> stop_requested;
  // Called as the wait begins and about every `report_every` after it, with
  // the holder's pid (0 when unknown): the caller logs what it waits for.
  std::function<void(long holder_pid, std::chrono::milliseconds waited)> report;
  std::chrono::milliseconds report_every{5'000};
};

class DirectoryLock {
 public:
  // Creates `dir` if needed and locks it. `what` names the directory in
  // messages ("state.dir"). A lock held by another process (or another
  // DirectoryLock here): InvalidArgument naming the directory and the
  // holder's pid once the wait is over, or at once without one; a stop during
  // the wait: InvalidArgument saying so. Nothing in the directory but LOCK is
  // touched.
  static Result<std::unique_ptr<DirectoryLock>> Acquire(const std::filesystem::path& dir,
                                                        const std::string& what,
                                                        const LockWait& wait = {});

  ~DirectoryLock();
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;

  const std::filesystem::path& dir() const { return dir_; }

  // The pid written in <dir>/LOCK, or 0 when there is none (any process may
  // read it; for messages only: the flock decides who holds the directory).
  static long HolderPid(const std::filesystem::path& dir);

 private:
  DirectoryLock(std::filesystem::path dir, int fd) : dir_(std::move(dir)), fd_(fd) {}

  const std::filesystem::path dir_;
  const int fd_;
};

}  // namespace ctrjoin
