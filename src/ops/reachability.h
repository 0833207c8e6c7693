#pragma once
// Reachability: tells the log when a dependency (the Kafka brokers, the
// feature store) stops answering and when it answers again, instead of one
// warning per failed call. The first failure of an outage logs (warn)
//   "source.kafka: brokers unreachable since 14:02:03 UTC: <cause>"
// later ones are counted; the first success after it logs (info)
//   "source.kafka: brokers reachable again after 12.3 s (41 errors)".
// Clients retry by themselves throughout; this only reports. The Kafka
// source counts a record, an end of partition or, during an outage, an
// answered metadata request (sent every 3 s) as an answer.
//
// Called from any thread (the source node; the lookup I/O threads); a mutex
// guards the state. Owns only its state.

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "src/core/status.h"
#include "src/ops/metrics.h"

namespace ctrjoin {

class Reachability {
 public:
  using Clock = std::chrono::system_clock;

  // subject: what the lines are about, e.g. "source.kafka: brokers".
  // down_since_ms, if given, is set to the wall-clock ms an outage began and
  // back to 0 when it ends (for /ready and /metrics).
  explicit Reachability(std::string subject, Gauge* down_since_ms = nullptr)
      : subject_(std::move(subject)), down_since_ms_(down_since_ms) {}

  // A failed call. Returns the line it logged, if any (the first of an
  // outage).
  std::optional<std::string> Lost(const Status& cause, Clock::time_point now = Clock::now());
  // An answer. Returns the line it logged, if any (the end of an outage).
  std::optional<std::string> Reached(Clock::time_point now = Clock::now());

  bool reachable() const;
  // When the current outage began, in wall-clock ms since the epoch; 0 when
  // reachable.
  int64_t down_since_ms() const;

 private:
  const std::string subject_;
  Gauge* const down_since_ms_;
  mutable std::mutex mu_;
  std::optional<Clock::time_point> down_since_;
  uint64_t errors_ = 0;  // during the current outage
};

}  // namespace ctrjoin
