#pragma once
// ProducerMetrics: what the sinks' Kafka producers count (src/ops/README.md
// lists the families). One instance serves every producer of the process
// (samples, dead letters, the transactional pool), told apart by nothing:
// an SRE alerts on any of them.
//
// Written by KafkaProducer on its owner's thread (librdkafka runs the
// delivery and error callbacks there); read by /metrics from any thread.
// Owns its counters.

#include "src/ops/metrics.h"
#include "src/ops/prometheus.h"

namespace ctrjoin {

struct ProducerMetrics {
  Counter produce_errors;   // messages not queued (queue full past its bound, bad topic, fatal)
  Counter delivery_errors;  // queued messages the brokers did not take
  Counter client_errors;    // client-level errors (all brokers down, authentication, fatal)

  void Expose(Exposition& e) const;
};

}  // namespace ctrjoin
