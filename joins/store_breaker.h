#pragma once
// StoreBreaker: the circuit breaker in front of the feature store
// (joins/README.md, "Outages of the feature store"). Closed, every call
// goes. After `failures_to_open` consecutive failed calls it opens: no call
// goes until one jittered backoff has passed (retry_initial_ms, doubling
// with each reopening up to retry_max_ms, +-50%). Then it is half-open: one
// call goes (a real batch: its rows are the probe), the others wait; its
// success closes the breaker, its failure reopens it with the next backoff.
// During an outage the store sees about one call per backoff however many
// rows wait, instead of one per row.
//
// Called by LookupService's io threads under the service's mutex: not
// thread-safe by itself. Owns its state; writes the two metrics it borrows.

#include <chrono>
#include <cstdint>
#include <optional>

#include "src/core/enum_names.h"
#include "src/ops/metrics.h"

namespace ctrjoin {

enum class BreakerState : int64_t { kClosed = 0, kOpen = 1, kHalfOpen = 2 };
constexpr auto NamesOf(BreakerState) {
  return std::to_array<NamedValue<BreakerState>>({{BreakerState::kClosed, "closed"},
                                                  {BreakerState::kOpen, "open"},
                                                  {BreakerState::kHalfOpen, "half-open"}});
}

struct StoreBreakerOptions {
  int failures_to_open = 3;
  int64_t initial_ms = 10;
  int64_t max_ms = 2'000;
};

class StoreBreaker {
 public:
  using Clock = std::chrono::steady_clock;

  // state: set to the BreakerState's value; opened: counts openings.
  StoreBreaker(StoreBreakerOptions options, Gauge* state, Counter* opened);

  // Whether a store call may start now. nullopt: it may, and the caller
  // reports its outcome (Succeeded or Failed). Otherwise the time to ask
  // again (a half-open breaker answers a little later: its probe is out).
  std::optional<Clock::time_point> Admit(Clock::time_point now);
  void Succeeded();
  void Failed(Clock::time_point now);

  BreakerState state() const { return state_; }

 private:
  void Set(BreakerState s);

  const StoreBreakerOptions options_;
  Gauge* const state_gauge_;
  Counter* const opened_;
  BreakerState state_ = BreakerState::kClosed;
  int consecutive_failures_ = 0;  // while closed
  int openings_ = 0;              // since it last closed: the backoff's exponent
  Clock::time_point reopen_at_;   // open: when the next call may go
};

// Backoff for the given attempt (1-based): initial_ms doubling up to max_ms,
// with +-50% jitter. Shared by the breaker and the per-row retries.
std::chrono::milliseconds JitteredBackoff(int attempt, int64_t initial_ms, int64_t max_ms);

}  // namespace ctrjoin
