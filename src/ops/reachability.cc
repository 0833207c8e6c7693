#include "src/ops/reachability.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace ctrjoin {

std::optional<std::string> Reachability::Lost(const Status& cause, Clock::time_point now) {
  std::string line;
  {
    std::lock_guard lock(mu_);
    ++errors_;
    if (down_since_) return std::nullopt;
    down_since_ = now;
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
  }
  spdlog::info("{}", line);
  return line;
}

bool Reachability::reachable() const {
  std::lock_guard lock(mu_);
  return !down_since_;
}

}  // namespace ctrjoin
