#pragma once
// BrokerReachability: tells the log when a Kafka client loses its brokers
// and when it has them again, instead of one warning per failed connection.
// The first connection error of an outage logs (warn)
//   "source.kafka: brokers unreachable since 14:02:03 UTC: <cause>"
// later ones are counted; the first sign of the brokers after it (a record,
// an end of partition) logs (info)
//   "source.kafka: brokers reachable again after 12.3 s (41 connection errors)".
// A live job on idle topics therefore reports the recovery with its next
// record. librdkafka reconnects by itself throughout.
//
// Called from the one thread that polls the client (the source node); owns
// only its state.

#include <chrono>
#include <optional>
#include <string>

#include "src/core/status.h"

namespace ctrjoin {

class BrokerReachability {
 public:
  using Clock = std::chrono::system_clock;

  explicit BrokerReachability(std::string client) : client_(std::move(client)) {}

  // A connection error (unavailable, timed out). Returns the line it logged,
  // if any (the first of an outage).
  std::optional<std::string> Lost(const Status& cause, Clock::time_point now = Clock::now());
  // The brokers answered. Returns the line it logged, if any (the end of an
  // outage).
  std::optional<std::string> Reached(Clock::time_point now = Clock::now());

  bool reachable() const { return !down_since_; }

 private:
  const std::string client_;
  std::optional<Clock::time_point> down_since_;
  uint64_t errors_ = 0;  // during the current outage
};

}  // namespace ctrjoin
