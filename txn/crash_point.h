#pragma once
// Test hook for the crash suite (tests/integration/crash_test.cc): with the environment
// variable CTRJOIN_CRASH_AT="<point>:<n>", the process kills itself with
// SIGKILL the n-th time it passes CrashPoint("<point>"), exactly as kill -9
// would, at a moment a test cannot hit from outside (inside pre-commit,
// between checkpoint and commit). Without the variable a crash point costs
// one relaxed atomic load. Any thread.

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
};
inline Plan* LoadPlan() {
  const char* spec = std::getenv("CTRJOIN_CRASH_AT");
  if (spec == nullptr) return nullptr;
  const char* colon = std::strrchr(spec, ':');
  long countdown = 1;
  if (colon != nullptr) {
    char* end = nullptr;
    countdown = std::strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end != '\0' || countdown < 1) {
      std::fprintf(stderr, "CTRJOIN_CRASH_AT=%s: expected <point>:<n> with n >= 1\n", spec);
      std::abort();
    }
  }
  return new Plan{colon != nullptr ? std::string(spec, colon) : std::string(spec), countdown};
}
inline Plan* const kPlan = LoadPlan();
inline std::atomic<long> passed{0};
}  // namespace crash_point_detail

inline void CrashPoint(const char* name) {
  using namespace crash_point_detail;
  if (kPlan == nullptr || kPlan->point != name) return;
  if (passed.fetch_add(1) + 1 >= kPlan->countdown) ::kill(::getpid(), SIGKILL);
}

}  // namespace ctrjoin
