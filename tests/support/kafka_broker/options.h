#pragma once
// Configuration of the test broker. Composed by tests (TestBroker::Start) or
// by the ctrjoin-testbroker executable's command line; read-only afterwards
// and copied into the components that need it.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "src/core/status.h"

namespace ctrjoin::testbroker {

struct BrokerOptions {
  // TCP port on 127.0.0.1; 0 picks an ephemeral port (see TestBroker::port()).
  std::uint16_t port = 0;
  // Directory for logs and state; empty (default) keeps everything in memory.
  std::string data_dir;
  // The broker's node id in Metadata and FindCoordinator answers.
  std::int32_t node_id = 1;
  // Partitions of auto-created topics and of CreateTopics with -1. Default 1.
  std::int32_t default_partitions = 1;
  // Create unknown topics on Metadata requests that allow it. Default true.
  bool auto_create_topics = true;
  // Upper bound for transaction.timeout.ms (Kafka's default 900000).
  std::int32_t max_transaction_timeout_ms = 900000;
  // How often open transactions are checked for timeout (Kafka uses 10000;
  // default 1000 so tests of timeouts stay short).
  std::int32_t transaction_check_interval_ms = 1000;
  // How long a new group waits for more members before its first generation
  // completes (Kafka's group.initial.rebalance.delay.ms is 3000). Default 200.
  std::int32_t group_initial_rebalance_delay_ms = 200;
  // Accepted session.timeout.ms range. Defaults 100 and 300000.
  std::int32_t group_min_session_timeout_ms = 100;
  std::int32_t group_max_session_timeout_ms = 300000;
  // Frames larger than this close the connection (Kafka's
  // socket.request.max.bytes). Default 100 MiB.
  std::size_t max_frame_bytes = 100 * 1024 * 1024;
  // 0 = warnings only (default), 1 = connections and topic/txn events,
  // 2 = every request.
  int log_level = 0;
  // Where log lines go: (0 warning, 1 info, 2 debug; the message without
  // time or tag), called on the thread that logs. Empty (default): stderr,
  // "[testbroker HH:MM:SS.mmm LEVEL] message". An embedding process passes
  // its logger, so that every stderr line is its own.
  std::function<void(int level, const std::string& message)> log_sink;

  Status Validate() const;
};

}  // namespace ctrjoin::testbroker
