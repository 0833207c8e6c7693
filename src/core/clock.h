#pragma once
// Clocks, in milliseconds. Any thread.

#include <chrono>
#include <cstdint>

namespace ctrjoin {

// Wall clock (ms since the Unix epoch): for comparisons with event time.
inline int64_t WallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Monotonic clock (ms since an arbitrary start): for timeouts and expiry.
inline int64_t MonotonicMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace ctrjoin
