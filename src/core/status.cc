#include "src/core/status.h"

namespace ctrjoin {

namespace {
const char* CodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "OK";
    case StatusCode::kInvalidArgument: return "invalid argument";
    case StatusCode::kNotFound: return "not found";
    case StatusCode::kIoError: return "I/O error";
    case StatusCode::kUnavailable: return "unavailable";
    case StatusCode::kTimedOut: return "timed out";
    case StatusCode::kCorruption: return "corruption";
    case StatusCode::kInternal: return "internal error";
    case StatusCode::kStopped: return "stopped";
  }
  return "unknown";
}

const char* EffectName(Effect effect) {
  switch (effect) {
    case Effect::kNoEffect: return "no effect";
    case Effect::kEffectUnknown: return "effect unknown";
    case Effect::kFenced: return "fenced";
  }
  return "unknown";
}
}  // namespace

std::string Status::ToString() const {
  if (ok()) return "OK";
  return std::string(CodeName(code_)) + " (" + EffectName(effect_) + "): " + message_;
}

}  // namespace ctrjoin
