#include "src/ops/reachability.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace ctrjoin {

namespace {

int64_t ToMs(Reachability::Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace

std::optional<std::string> Reachability::Lost(const Status& cause, Clock::time_point now) {
  std::string line;
  {
    std::lock_guard lock(mu_);
    ++errors_;
    if (down_since_) return std::nullopt;
    down_since_ = now;
    if (down_since_ms_ != nullptr) down_since_ms_->Set(ToMs(now));
    line = fmt::format("{} unreachable since {:%H:%M:%S} UTC: {}", subject_,
                       std::chrono::floor<std::chrono::seconds>(now), cause.message());
  }
  spdlog::warn("{}", line);
  return line;
}

std::optional<std::string> Reachability::Reached(Clock::time_point now) {
  std::string line;
  {
    std::lock_guard lock(mu_);
    if (!down_since_) return std::nullopt;
    const double seconds = std::chrono::duration<double>(now - *down_since_).count();
    line = fmt::format("{} reachable again after {:.1f} s ({} errors)", subject_, seconds, errors_);
    down_since_.reset();
    errors_ = 0;
    if (down_since_ms_ != nullptr) down_since_ms_->Set(0);
  }
  spdlog::info("{}", line);
  return line;
}

int64_t Reachability::down_since_ms() const {
  std::lock_guard lock(mu_);
  return down_since_ ? ToMs(*down_since_) : 0;
}

bool Reachability::reachable() const {
  std::lock_guard lock(mu_);
  return !down_since_;
}

}  // namespace ctrjoin
