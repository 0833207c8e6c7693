// One writer per directory (src/core/dir_lock.h): refusal naming the holder,
// waiting for it, giving up on a stop, and the kernel releasing the lock of
// a process killed with SIGKILL.
#include "src/core/dir_lock.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

#include "tests/support/temp_dir.h"

namespace ctrjoin {
namespace {

using std::chrono::milliseconds;

TEST(DirectoryLockTest, ASecondHolderIsRefusedWithThePidOfTheFirst) {
  test_support::TempDir tmp;
  const auto dir = tmp.path() / "state";
  auto first = DirectoryLock::Acquire(dir, "state.dir");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(DirectoryLock::HolderPid(dir), ::getpid());

  auto second = DirectoryLock::Acquire(dir, "state.dir");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kInvalidArgument);
  const std::string& msg = second.status().message();
  EXPECT_NE(msg.find("state.dir: " + dir.string() + " is in use"), std::string::npos) << msg;
  EXPECT_NE(msg.find("(pid " + std::to_string(::getpid()) + ")"), std::string::npos) << msg;

  first->reset();
  auto third = DirectoryLock::Acquire(dir, "state.dir");
  EXPECT_TRUE(third.ok()) << third.status().ToString();
}

TEST(DirectoryLockTest, WaitsForTheHolderAndSaysWhatItWaitsFor) {
  test_support::TempDir tmp;
  auto held = DirectoryLock::Acquire(tmp.path(), "checkpoint.dir");
  ASSERT_TRUE(held.ok());
  std::thread release([&] {
    std::this_thread::sleep_for(milliseconds(400));
    held->reset();
  });
  int reports = 0;
  long reported_pid = 0;
  LockWait wait;
  wait.timeout = milliseconds(10'000);
  wait.report_every = milliseconds(100);
  wait.report = [&](long pid, milliseconds) {
    ++reports;
    reported_pid = pid;
  };
  auto waited = DirectoryLock::Acquire(tmp.path(), "checkpoint.dir", wait);
  release.join();
  EXPECT_TRUE(waited.ok()) << waited.status().ToString();
  EXPECT_GE(reports, 1);
  EXPECT_EQ(reported_pid, ::getpid());
}

TEST(DirectoryLockTest, AWaitEndsAtItsTimeoutOrAtAStop) {
  test_support::TempDir tmp;
  auto held = DirectoryLock::Acquire(tmp.path(), "sink.path");
  ASSERT_TRUE(held.ok());
  LockWait wait;
  wait.timeout = milliseconds(300);
  auto timed_out = DirectoryLock::Acquire(tmp.path(), "sink.path", wait);
  ASSERT_FALSE(timed_out.ok());
  EXPECT_NE(timed_out.status().message().find("still after waiting"), std::string::npos)
      << timed_out.status().message();

  std::atomic<bool> stop{false};
  wait.timeout = milliseconds(60'000);
  wait.stop_requested = [&] { return stop.load(); };
  std::thread stopper([&] {
    std::this_thread::sleep_for(milliseconds(200));
    stop = true;
  });
  auto stopped = DirectoryLock::Acquire(tmp.path(), "sink.path", wait);
  stopper.join();
  ASSERT_FALSE(stopped.ok());
  EXPECT_NE(stopped.status().message().find("stopped while waiting"), std::string::npos)
      << stopped.status().message();
}

TEST(DirectoryLockTest, AKilledHolderReleasesItsLock) {
  test_support::TempDir tmp;
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto lock = DirectoryLock::Acquire(tmp.path(), "state.dir");
    const char ok = lock.ok() ? 'y' : 'n';
    (void)!::write(ready[1], &ok, 1);
    ::pause();
    ::_exit(0);
  }
  char ok = 0;
  ASSERT_EQ(::read(ready[0], &ok, 1), 1);
  ASSERT_EQ(ok, 'y');
  auto refused = DirectoryLock::Acquire(tmp.path(), "state.dir");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("(pid " + std::to_string(child) + ")"),
            std::string::npos)
      << refused.status().message();
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ::close(ready[0]);
  ::close(ready[1]);
  auto taken = DirectoryLock::Acquire(tmp.path(), "state.dir");
  EXPECT_TRUE(taken.ok()) << taken.status().ToString();
}

}  // namespace
}  // namespace ctrjoin
