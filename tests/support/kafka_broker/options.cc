#include "tests/support/kafka_broker/options.h"

namespace ctrjoin::testbroker {

Status BrokerOptions::Validate() const {
  if (node_id < 0) return Status::InvalidArgument("node_id must be >= 0");
  if (default_partitions < 1) return Status::InvalidArgument("default_partitions must be >= 1");
  if (max_transaction_timeout_ms < 1) {
    return Status::InvalidArgument("max_transaction_timeout_ms must be >= 1");
  }
  if (transaction_check_interval_ms < 1) {
    return Status::InvalidArgument("transaction_check_interval_ms must be >= 1");
  }
  if (group_initial_rebalance_delay_ms < 0) {
    return Status::InvalidArgument("group_initial_rebalance_delay_ms must be >= 0");
  }
  if (group_min_session_timeout_ms < 1 ||
      group_max_session_timeout_ms < group_min_session_timeout_ms) {
    return Status::InvalidArgument(
        "group_min_session_timeout_ms must be >= 1 and <= group_max_session_timeout_ms");
  }
  if (max_frame_bytes < 1024) return Status::InvalidArgument("max_frame_bytes must be >= 1024");
  if (log_level < 0 || log_level > 2) return Status::InvalidArgument("log_level must be 0-2");
  return Status::Ok();
}

}  // namespace ctrjoin::testbroker
