#pragma once
// Test hooks for the crash suite (tests/integration/crash_test.cc), read from
// the environment at start-up, at moments a test cannot hit from outside
// (inside pre-commit, between checkpoint and commit):
//   CTRJOIN_CRASH_AT="<point>:<n>"  the process kills itself with SIGKILL the
//       n-th time it passes CrashPoint("<point>"), exactly as kill -9 would;
//   CTRJOIN_STOP_AT="<point>:<n>"   it stops itself with SIGSTOP the n-th time
//       (once), as a frozen VM or a long pause would; the zombie tests copy its
//       checkpoints, start its successor and wake it with SIGCONT.
// Without the variables a crash point costs two pointer tests. Any thread.

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace ctrjoin {

namespace crash_point_detail {
struct Plan {
  std::string point;
  long countdown = 0;
  std::atomic<long> passed{0};
};
inline Plan* LoadPlan(const char* variable) {
  const char* spec = std::getenv(variable);
  if (spec == nullptr) return nullptr;
  const char* colon = std::strrchr(spec, ':');
  long countdown = 1;
  if (colon != nullptr) {
    char* end = nullptr;
    countdown = std::strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end != '\0' || countdown < 1) {
      std::fprintf(stderr, "%s=%s: expected <point>:<n> with n >= 1\n", variable, spec);
      std::abort();
    }
  }
  return new Plan{colon != nullptr ? std::string(spec, colon) : std::string(spec), countdown};
}
inline Plan* const kCrashPlan = LoadPlan("CTRJOIN_CRASH_AT");
inline Plan* const kStopPlan = LoadPlan("CTRJOIN_STOP_AT");
}  // namespace crash_point_detail

inline void CrashPoint(const char* name) {
  using namespace crash_point_detail;
  if (kCrashPlan != nullptr && kCrashPlan->point == name &&
      kCrashPlan->passed.fetch_add(1) + 1 >= kCrashPlan->countdown) {
    ::kill(::getpid(), SIGKILL);
  }
  if (kStopPlan != nullptr && kStopPlan->point == name &&
      kStopPlan->passed.fetch_add(1) + 1 == kStopPlan->countdown) {
    ::kill(::getpid(), SIGSTOP);
  }
}

}  // namespace ctrjoin
