#pragma once
// TestHBaseServer: an in-process stand-in for an HBase Thrift2 server, for
// tests of HBaseClient and the feature lookups. It serves the THBaseService
// subset of joins/hbase.thrift (get, getMultiple, exists, put, putMultiple,
// getTableDescriptor) over an in-memory versioned store, on 127.0.0.1 with
// an ephemeral port.
//
// Store semantics follow HBase: table -> row -> (family, qualifier) -> cell
// versions by timestamp. A put creates its table (its families keep every
// version); CreateTable declares one with families and the VERSIONS each
// keeps: reads return at most that many (as after a major compaction), and
// an undeclared family is a TIOError. Reading a missing table is a TIOError.
// Error messages name HBase's Java exception, as HBase's do. A get honours
// TGet.timestamp (exact), else timeRange [minStamp, maxStamp), maxVersions
// (default 1; < 1 is a TIOError) and columns (a family, or family:qualifier);
// cells come back by family, qualifier, newest first. A put cell's timestamp
// is its own, else TPut.timestamp, else the server's clock in ms.
//
// Faults (SetFaults) apply to every request that arrives afterwards, in this
// order: added latency, stall (hold the request until the stall is cleared or
// the server stops), drop (close the connection instead of answering), error
// (answer TIOError). Requests are counted when they arrive, before faults.
//
// Threads: Thrift's TThreadedServer runs one thread per connection. Every
// public method may be called from any thread (tests call them from the test
// thread while requests are in flight). Owns the Thrift server, its serving
// thread and the store.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "joins/hbase_client.h"
#include "src/core/status.h"

namespace apache::thrift::server {
class TThreadedServer;
}  // namespace apache::thrift::server

namespace ctrjoin::test_support {

struct TestHBaseServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: an ephemeral port, see port()
  HBaseProtocol protocol = HBaseProtocol::kBinary;
  HBaseTransport transport = HBaseTransport::kBuffered;
  bool offer_descriptors = true;  // false: getTableDescriptor is UNKNOWN_METHOD (HBase 1.x)
};

struct HBaseServerFaults {
  std::chrono::milliseconds latency{0};  // added before every answer
  bool stall = false;                    // answer nothing until cleared or stopped
  double drop_rate = 0;                  // fraction of requests whose connection is closed
  double error_rate = 0;                 // fraction of requests answered with TIOError
  int64_t serve_first = 0;               // the next N requests are served despite the above
};

// Requests received per method, and rows asked for by get, getMultiple and
// exists together. connections counts accepted connections.
struct HBaseServerCounts {
  int64_t get = 0;
  int64_t get_multiple = 0;
  int64_t exists = 0;
  int64_t put = 0;
  int64_t put_multiple = 0;
  int64_t get_table_descriptor = 0;
  int64_t rows_requested = 0;
  int64_t connections = 0;
};

class HBaseServerState;  // store, faults and counters, in the .cc

class TestHBaseServer {
  struct Key {  // restricts construction to Start()
    explicit Key() = default;
  };

 public:
  // Listens and serves on a background thread; returns once the port is open.
  static Result<std::unique_ptr<TestHBaseServer>> Start(const TestHBaseServerOptions& options);

  TestHBaseServer(Key, const TestHBaseServerOptions& options);
  ~TestHBaseServer();  // Stop()

  int port() const { return port_; }
  std::string address() const;  // "host:port"

  // Stops accepting, releases stalled requests (their connections close) and
  // interrupts open connections; returns when every server thread has ended,
  // within about a second. Idempotent.
  void Stop();

  // Declares table with its families: family -> versions kept (VERSIONS).
  Status CreateTable(const std::string& table, const std::map<std::string, int32_t>& families);

  void SetFaults(const HBaseServerFaults& faults);
  void ClearFaults() { SetFaults(HBaseServerFaults{}); }
  HBaseServerCounts counts() const;

 private:
  Status Listen();

  const TestHBaseServerOptions options_;
  const std::shared_ptr<HBaseServerState> state_;  // shared with the connection handlers
  std::shared_ptr<apache::thrift::server::TThreadedServer> server_;
  int port_ = 0;
  std::mutex stop_mu_;        // serialises Stop(); protects serve_thread_
  std::thread serve_thread_;  // runs server_->serve()
};

}  // namespace ctrjoin::test_support
