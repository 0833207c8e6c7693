#include "joins/store_breaker.h"

#include <algorithm>
#include <cmath>
#include <random>

namespace ctrjoin {

std::chrono::milliseconds JitteredBackoff(int attempt, int64_t initial_ms, int64_t max_ms) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const double base =
      std::min<double>(static_cast<double>(max_ms),
                       static_cast<double>(initial_ms) * std::pow(2.0, std::min(attempt - 1, 30)));
  const double jittered = base * std::uniform_real_distribution<double>(0.5, 1.5)(rng);
  return std::chrono::milliseconds(static_cast<int64_t>(jittered));
}

StoreBreaker::StoreBreaker(StoreBreakerOptions options, Gauge* state, Counter* opened)
    : options_(options), state_gauge_(state), opened_(opened) {
  Set(BreakerState::kClosed);
}

void StoreBreaker::Set(BreakerState s) {
  state_ = s;
  state_gauge_->Set(static_cast<int64_t>(s));
}

std::optional<StoreBreaker::Clock::time_point> StoreBreaker::Admit(Clock::time_point now) {
  switch (state_) {
    case BreakerState::kClosed: return std::nullopt;
    case BreakerState::kOpen:
      if (now < reopen_at_) return reopen_at_;
      Set(BreakerState::kHalfOpen);
      return std::nullopt;
    case BreakerState::kHalfOpen:
      // The probe's outcome wakes the waiters; this bounds the wait anyway.
      return now + std::chrono::milliseconds(options_.initial_ms);
  }
  return std::nullopt;
}

void StoreBreaker::Succeeded() {
  consecutive_failures_ = 0;
  openings_ = 0;
  if (state_ != BreakerState::kClosed) Set(BreakerState::kClosed);
}

void StoreBreaker::Failed(Clock::time_point now) {
  if (state_ == BreakerState::kClosed && ++consecutive_failures_ < options_.failures_to_open) {
    return;
  }
  if (state_ == BreakerState::kOpen) return;  // a call started before it opened
  consecutive_failures_ = 0;
  ++openings_;
  reopen_at_ = now + JitteredBackoff(openings_, options_.initial_ms, options_.max_ms);
  Set(BreakerState::kOpen);
  opened_->Add();
}

}  // namespace ctrjoin
