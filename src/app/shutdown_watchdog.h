#pragma once
// ShutdownWatchdog: bounds a stop. Once SIGINT/SIGTERM asked the run to stop
// (StopRequested), the process has shutdown.timeout_ms to end by itself;
// past it, the watchdog logs why it gives up and ends the process with exit
// code 4. Nothing is lost: with checkpoints, the open epoch was never
// committed and a restart re-processes it from the last committed one; a run
// without checkpoints restarts as after any crash (from source.kafka.start).
// What a supervisor with a grace period (Kubernetes: 30 s) needs. A stop
// that ends with a slow final commit needs a timeout above the sink's
// flush_timeout_ms (30 s by default) to finish it.
//
// Owned by main for `run` and `replay`; its own thread polls the stop flag
// every 20 ms and is joined by the destructor (when the run ended in time).

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

namespace ctrjoin {

// The exit code of a stop that ran past shutdown.timeout_ms.
inline constexpr int kExitStopTimedOut = 4;

class ShutdownWatchdog {
 public:
  // timeout 0: no bound (the watchdog does nothing).
  explicit ShutdownWatchdog(std::chrono::milliseconds timeout);
  ~ShutdownWatchdog();
  // The run has ended: from now on the watchdog never ends the process.
  void Disarm();
  ShutdownWatchdog(const ShutdownWatchdog&) = delete;
  ShutdownWatchdog& operator=(const ShutdownWatchdog&) = delete;

 private:
  void Watch();

  const std::chrono::milliseconds timeout_;
  std::mutex mu_;  // Disarm against the decision to exit
  std::atomic<bool> done_{false};
  std::thread thread_;
};

}  // namespace ctrjoin
