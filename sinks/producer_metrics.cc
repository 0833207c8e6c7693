#include "sinks/producer_metrics.h"

namespace ctrjoin {

void ProducerMetrics::Expose(Exposition& e) const {
  e.Metric("ctrjoin_sink_produce_errors_total",
           "Messages the Kafka sinks could not queue for sending.", produce_errors);
  e.Metric("ctrjoin_sink_delivery_errors_total",
           "Queued messages the Kafka brokers did not take (delivery reports with an error).",
           delivery_errors);
  e.Metric("ctrjoin_sink_client_errors_total",
           "Client-level errors of the sinks' Kafka producers (brokers down, fatal errors).",
           client_errors);
}

}  // namespace ctrjoin
