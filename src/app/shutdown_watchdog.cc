#include "src/app/shutdown_watchdog.h"

#include <spdlog/spdlog.h>

#include <cstdlib>

#include "src/app/app.h"

namespace ctrjoin {

namespace {
constexpr std::chrono::milliseconds kPoll{20};
}  // namespace

ShutdownWatchdog::ShutdownWatchdog(std::chrono::milliseconds timeout) : timeout_(timeout) {
  if (timeout_.count() > 0) thread_ = std::thread([this] { Watch(); });
}

ShutdownWatchdog::~ShutdownWatchdog() {
  Disarm();
  if (thread_.joinable()) thread_.join();
}

void ShutdownWatchdog::Disarm() {
  std::lock_guard lock(mu_);
  done_.store(true);
}

void ShutdownWatchdog::Watch() {
  while (!done_.load() && !StopRequested()) std::this_thread::sleep_for(kPoll);
  if (done_.load()) return;
  spdlog::info("shutdown: stopping; at most {} ms (shutdown.timeout_ms)", timeout_.count());
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  while (!done_.load() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(kPoll);
  }
  std::lock_guard lock(mu_);  // held into _Exit: a Disarm now waits for the end
  if (done_.load()) return;
  spdlog::error(
      "shutdown: still stopping after {} ms (shutdown.timeout_ms): exiting {} without "
      "finishing; nothing committed is lost, and the open epoch is re-processed on restart",
      timeout_.count(), kExitStopTimedOut);
  spdlog::default_logger()->flush();
  std::_Exit(kExitStopTimedOut);
}

}  // namespace ctrjoin
