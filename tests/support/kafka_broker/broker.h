#pragma once
// TestBroker: a single-node Kafka-protocol broker with idempotence,
// transactions (markers, LSO, aborted-transaction lists) and consumer
// groups, for tests, the demo and benchmarks. It speaks the API versions
// librdkafka 2.0.2 and kafkajs 2.2.4 use (see broker_core.h for the table
// and its README.md, "What it implements", for the protocol facts it follows).
//
//   auto broker = TestBroker::Start({});          // 127.0.0.1, ephemeral port
//   if (!broker.ok()) ...;
//   conf.set("bootstrap.servers", (*broker)->bootstrap());
//   ...
//   (*broker)->Stop();                             // or let it go out of scope
//
// Threads: Start() locks and loads the data directory and binds on the
// caller's thread, then runs the event loop on a thread of its own, which
// owns all broker state. port(), bootstrap() and Stop() may be called from
// any thread; Stop() returns within milliseconds and is idempotent.
//
// One broker per data directory: Start() takes an exclusive flock on
// <data_dir>/LOCK (holding this process's pid) and Stop() releases it. Two
// brokers appending to the same logs would each assign offsets from their
// own view and lose acknowledged records.

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "src/core/dir_lock.h"
#include "src/core/status.h"
#include "tests/support/kafka_broker/options.h"

namespace ctrjoin::testbroker {

class BrokerCore;
class Logger;
class Server;

class TestBroker {
 public:
  // Listens on 127.0.0.1:options.port and starts serving. Fails if the
  // options are invalid, the port is taken or the data directory is bad or
  // held by another broker (InvalidArgument naming it and the holder's pid).
  static Result<std::unique_ptr<TestBroker>> Start(const BrokerOptions& options);

  ~TestBroker();
  TestBroker(const TestBroker&) = delete;
  TestBroker& operator=(const TestBroker&) = delete;

  std::uint16_t port() const { return port_; }
  // "127.0.0.1:<port>", for bootstrap.servers.
  std::string bootstrap() const { return "127.0.0.1:" + std::to_string(port_); }
  const BrokerOptions& options() const { return options_; }

  // Closes all connections, joins the loop thread and releases the data
  // directory. Logs and state files are complete when it returns, so a new
  // broker on the same data_dir sees everything acknowledged before.
  void Stop();

 private:
  TestBroker(BrokerOptions options, std::unique_ptr<DirectoryLock> data_dir_lock,
             std::unique_ptr<Logger> logger, std::unique_ptr<Server> server,
             std::unique_ptr<BrokerCore> core);

  BrokerOptions options_;
  std::unique_ptr<DirectoryLock> data_dir_lock_;  // null when in memory or stopped
  std::unique_ptr<Logger> logger_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<BrokerCore> core_;
  std::uint16_t port_;
  std::mutex stop_mu_;  // protects loop_ and data_dir_lock_ against concurrent Stop() calls
  std::thread loop_;
};

}  // namespace ctrjoin::testbroker
