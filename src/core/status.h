#pragma once
// Errors as values. Every error says what it means for the caller's side
// effects, which is what two-phase commit and retries need to know:
//   kNoEffect      the call did nothing; retrying is safe.
//   kEffectUnknown the call may or may not have taken effect (e.g. a timeout
//                  after a request was sent); only an idempotent retry is safe.
//   kFenced        another instance owns the resource now; stop.
// Used from every thread; a Status is an immutable value.

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace ctrjoin {

enum class Effect { kNoEffect, kEffectUnknown, kFenced };

enum class StatusCode {
  kOk,
  kInvalidArgument,  // bad config or input; nothing was done
  kNotFound,
  kIoError,
  kUnavailable,  // a remote service cannot be reached
  kTimedOut,
  kCorruption,
  kInternal,
  kStopped,  // a wait ended because the process stops (SIGINT/SIGTERM); nothing was done
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string msg) {
    return Status(StatusCode::kInvalidArgument, Effect::kNoEffect, std::move(msg));
  }
  static Status NotFound(std::string msg) {
    return Status(StatusCode::kNotFound, Effect::kNoEffect, std::move(msg));
  }
  static Status IoError(std::string msg, Effect effect = Effect::kEffectUnknown) {
    return Status(StatusCode::kIoError, effect, std::move(msg));
  }
  static Status Unavailable(std::string msg, Effect effect = Effect::kNoEffect) {
    return Status(StatusCode::kUnavailable, effect, std::move(msg));
  }
  static Status TimedOut(std::string msg) {
    return Status(StatusCode::kTimedOut, Effect::kEffectUnknown, std::move(msg));
  }
  static Status Corruption(std::string msg) {
    return Status(StatusCode::kCorruption, Effect::kNoEffect, std::move(msg));
  }
  static Status Internal(std::string msg, Effect effect = Effect::kEffectUnknown) {
    return Status(StatusCode::kInternal, effect, std::move(msg));
  }
  static Status Stopped(std::string msg) {
    return Status(StatusCode::kStopped, Effect::kNoEffect, std::move(msg));
  }
  static Status Fenced(std::string msg) {
    return Status(StatusCode::kInternal, Effect::kFenced, std::move(msg));
  }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  Effect effect() const { return effect_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

  // Prefixes the message with context ("reading config: ...").
  Status WithContext(const std::string& context) const {
    if (ok()) return *this;
    return Status(code_, effect_, context + ": " + message_);
  }

 private:
  Status(StatusCode code, Effect effect, std::string msg)
      : code_(code), effect_(effect), message_(std::move(msg)) {}

  StatusCode code_ = StatusCode::kOk;
  Effect effect_ = Effect::kNoEffect;
  std::string message_;
};

// A value or the Status explaining why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}  // NOLINT

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace ctrjoin

#define CTRJOIN_RETURN_IF_ERROR(expr) \
  do {                                \
    ::ctrjoin::Status _st = (expr);   \
    if (!_st.ok()) return _st;        \
  } while (0)
