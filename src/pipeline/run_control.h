#pragma once
// RunControl: what every stage of one Pipeline::Run shares: whether a stop
// was asked, and the run's first error.
//
// Called from every node body, on any oneTBB worker thread, concurrently:
// stages report their errors (Fail, or Guard around a body) and ask failed()
// to skip work once the run is failing; the source stage asks
// stop_requested(). RequestStop may also be called from a signal handler (it
// only sets an atomic flag). Only the first failure is kept (it is what Run
// returns); on_failure runs once, for it. Owns the flags and that error.

#include <atomic>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>

#include "src/core/status.h"

namespace ctrjoin {

class RunControl {
 public:
  // on_failure (may be empty) is called with the first failure, on the
  // thread that reported it.
  explicit RunControl(std::function<void(const Status&)> on_failure = {})
      : on_failure_(std::move(on_failure)) {}

  void RequestStop() { stop_requested_.store(true, std::memory_order_relaxed); }
  bool stop_requested() const { return stop_requested_.load(std::memory_order_relaxed); }

  // Fails the run with `status` unless it has failed already.
  void Fail(Status status);
  bool failed() const { return failed_.load(std::memory_order_relaxed); }
  // The first failure, or OK.
  Status error() const;

  // Runs fn for `stage`: an error it returns (if it returns a Status), or an
  // exception it throws ("<stage>: <what>"), fails the run. A node body must
  // never throw: that would cancel the whole graph.
  template <typename Fn>
  void Guard(const char* stage, Fn&& fn) {
    try {
      if constexpr (std::is_void_v<std::invoke_result_t<Fn&>>) {
        fn();
      } else {
        Status status = fn();
        if (!status.ok()) Fail(std::move(status));
      }
    } catch (const std::exception& e) {
      Fail(Status::Internal(std::string(stage) + ": " + e.what()));
    }
  }

 private:
  const std::function<void(const Status&)> on_failure_;
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> failed_{false};
  mutable std::mutex mu_;  // protects error_
  Status error_;
};

}  // namespace ctrjoin
