#include "src/io/broker_reachability.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace ctrjoin {

std::optional<std::string> BrokerReachability::Lost(const Status& cause, Clock::time_point now) {
  ++errors_;
  if (down_since_) return std::nullopt;
  down_since_ = now;
  std::string line = fmt::format("{}: brokers unreachable since {:%H:%M:%S} UTC: {}", client_,
                                 std::chrono::floor<std::chrono::seconds>(now), cause.message());
  spdlog::warn("{}", line);
  return line;
}

std::optional<std::string> BrokerReachability::Reached(Clock::time_point now) {
  if (!down_since_) return std::nullopt;
  const double seconds = std::chrono::duration<double>(now - *down_since_).count();
  std::string line =
      fmt::format("{}: brokers reachable again after {:.1f} s ({} connection errors)", client_,
                  seconds, errors_);
  down_since_.reset();
  errors_ = 0;
  spdlog::info("{}", line);
  return line;
}

}  // namespace ctrjoin
