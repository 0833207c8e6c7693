#include "src/core/dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>

namespace ctrjoin {

namespace {

constexpr std::chrono::milliseconds kRetryEvery{100};

std::string Errno() { return std::strerror(errno); }

}  // namespace

long DirectoryLock::HolderPid(const std::filesystem::path& dir) {
  std::ifstream in(dir / "LOCK");
  long pid = 0;
  if (!(in >> pid) || pid < 0) return 0;
  return pid;
}

Result<std::unique_ptr<DirectoryLock>> DirectoryLock::Acquire(const std::filesystem::path& dir,
                                                              const std::string& what,
                                                              const LockWait& wait) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return Status::IoError(what + ": creating " + dir.string() + ": " + ec.message(),
                           Effect::kNoEffect);
  }
  const std::filesystem::path file = dir / "LOCK";
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return Status::IoError(what + ": opening " + file.string() + ": " + Errno(), Effect::kNoEffect);
  }
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  auto next_report = start;  // says at once what it waits for, then every report_every
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) {
      const std::string error = Errno();
      ::close(fd);
      return Status::IoError(what + ": locking " + file.string() + ": " + error, Effect::kNoEffect);
    }
    const auto now = Clock::now();
    const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(now - start);
    if (waited >= wait.timeout) {
      const long holder = HolderPid(dir);
      ::close(fd);
      return Status::InvalidArgument(
          what + ": " + dir.string() + " is in use by another ctrjoin process" +
          (holder > 0 ? " (pid " + std::to_string(holder) + ")" : std::string()) +
          (wait.timeout.count() > 0
               ? ", still after waiting " + std::to_string(waited.count() / 1000) + " s"
               : std::string()) +
          "; one process per job directory (--wait-for-lock waits for it)");
    }
    if (wait.stop_requested && wait.stop_requested()) {
      ::close(fd);
      return Status::InvalidArgument(what + ": stopped while waiting for the lock on " +
                                     dir.string());
    }
    if (wait.report && now >= next_report) {
      wait.report(HolderPid(dir), waited);
      next_report = now + wait.report_every;
    }
    std::this_thread::sleep_for(kRetryEvery);
  }
  // Ours now: record who holds it, for the next one's message.
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    const std::string error = Errno();
    ::close(fd);
    return Status::IoError(what + ": writing " + file.string() + ": " + error, Effect::kNoEffect);
  }
  return std::unique_ptr<DirectoryLock>(new DirectoryLock(dir, fd));
}

DirectoryLock::~DirectoryLock() { ::close(fd_); }

}  // namespace ctrjoin
