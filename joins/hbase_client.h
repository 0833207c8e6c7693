#pragma once
// HBaseClient: point reads (and fixture writes) against an HBase Thrift2
// server (THBaseService, IDL in joins/hbase.thrift), for the feature lookups
// of joins/README.md, "Feature enrichment".
//
// Design note.
// - Threads: every public method may be called from any number of lookup
//   threads at once. Each call borrows one connection from a pool of at most
//   pool_size connections, uses it alone, and gives it back; a caller waits
//   (at most request_timeout_ms) while all of them are lent out.
// - Connections are opened lazily, on the first call that finds no idle one.
//   A connection that failed (timeout, broken socket, undecodable reply) may
//   still have bytes of the failed call in flight, so it is discarded; the
//   next call opens a fresh one. That is the whole reconnect logic: this class
//   never retries a call (the lookup layer retries with backoff). A declared
//   HBase error (TIOError) is a complete answer and keeps its connection. An
//   idle connection that the server closed meanwhile (restart, idle timeout)
//   is noticed when it is borrowed and replaced before the call is sent.
// - Deadlines: connect_timeout_ms bounds connecting, request_timeout_ms bounds
//   each socket send/receive of a call (Thrift's per-socket timeouts).
// - Errors: every failure is a Status from HBaseThriftStatus(), the one
//   mapping from Thrift's and HBase's exceptions to ours. No exception leaves
//   this class.
// - Owns: the pool and its sockets.

#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "src/core/enum_names.h"
#include "src/core/status.h"

namespace ctrjoin {

// Thrift wire encodings an HBase Thrift2 server can be configured with.
// HBase's defaults are binary protocol over a buffered (unframed) transport.
enum class HBaseProtocol { kBinary, kCompact };
constexpr auto NamesOf(HBaseProtocol) {
  return std::to_array<NamedValue<HBaseProtocol>>(
      {{HBaseProtocol::kBinary, "binary"}, {HBaseProtocol::kCompact, "compact"}});
}
enum class HBaseTransport { kBuffered, kFramed };
constexpr auto NamesOf(HBaseTransport) {
  return std::to_array<NamedValue<HBaseTransport>>(
      {{HBaseTransport::kBuffered, "buffered"}, {HBaseTransport::kFramed, "framed"}});
}

struct HBaseClientOptions {
  std::string host = "127.0.0.1";
  int port = 9090;                                       // HBase's default Thrift port
  HBaseProtocol protocol = HBaseProtocol::kBinary;       // must match the server
  HBaseTransport transport = HBaseTransport::kBuffered;  // must match the server
  int connect_timeout_ms = 1000;
  int request_timeout_ms = 2000;  // per socket send/receive, see the note above
  int pool_size = 4;              // most connections open at once

  // prefix names the config section in errors, e.g. "lookups.user.hbase".
  Status Validate(const std::string& prefix) const;
};

// HBase's LATEST_TIMESTAMP: as an exclusive upper bound it admits every cell.
inline constexpr int64_t kHBaseLatestTimestamp = INT64_MAX;

// A read of one row: the newest max_versions versions of each column of
// family (every family when empty) whose timestamp lies in
// [0, max_ts_exclusive). For "as of ts" use max_ts_exclusive = ts + 1.
struct HBaseGet {
  std::string row;
  std::string family;
  int64_t max_ts_exclusive = kHBaseLatestTimestamp;
  int32_t max_versions = 1;
};

struct HBaseCell {
  std::string family;
  std::string qualifier;
  std::string value;
  int64_t timestamp = 0;  // ms since the epoch, as HBase stores it
};

// Cells come in HBase's order: by family, then qualifier, newest version
// first. A row that does not exist (or has no cell in range) has no cells.
struct HBaseRow {
  std::string row;
  std::vector<HBaseCell> cells;
};

// What getTableDescriptor says of one column family.
struct HBaseFamilyDescriptor {
  std::string name;
  std::optional<int32_t> max_versions;  // VERSIONS, when the server says
};

struct HBaseTableDescriptor {
  std::vector<HBaseFamilyDescriptor> families;
};

struct HBasePut {
  std::string row;
  std::string family;
  std::string qualifier;
  std::string value;
  std::optional<int64_t> timestamp;  // unset: the server's clock
};

// The one mapping from an exception thrown by Thrift or by the generated
// HBase stubs to a Status whose message starts with context. By kind:
//   TIOError          IoError, effect unknown (HBase may have applied part
//                     of a multi-row put)
//   TIllegalArgument  InvalidArgument, no effect
//   TTransportException: NOT_OPEN (refused, not connected) Unavailable with
//                     no effect; TIMED_OUT TimedOut (effect unknown); the
//                     peer closing mid-call Unavailable, effect unknown;
//                     garbled framing Internal
//   TProtocolException, TApplicationException: Internal
//   anything else, or a null error: Internal
Status HBaseThriftStatus(std::exception_ptr error, std::string_view context);

class HBaseConnectionPool;  // in the .cc

// The client of one HBase Thrift2 server. Thread-safe: called concurrently
// from lookup threads (see the design note at the top). Owns its pool.
class HBaseClient {
 public:
  // Checks the options (errors name "hbase.<field>"; config code validates
  // with its own prefix first); connects lazily.
  static Result<std::unique_ptr<HBaseClient>> Open(const HBaseClientOptions& options);
  // For Open(): the pool type is private to the .cc.
  explicit HBaseClient(std::unique_ptr<HBaseConnectionPool> pool);
  ~HBaseClient();

  // One getMultiple call. The result has one row per get, in request order.
  Result<std::vector<HBaseRow>> GetMultiple(const std::string& table,
                                            const std::vector<HBaseGet>& gets);
  Result<HBaseRow> Get(const std::string& table, const HBaseGet& get);
  // Whether the get would return at least one cell.
  Result<bool> Exists(const std::string& table, const HBaseGet& get);
  // getTableDescriptor ("ns:qualifier" or a qualifier). nullopt: the server
  // does not offer the method (HBase before 2.0 answers UNKNOWN_METHOD).
  Result<std::optional<HBaseTableDescriptor>> GetTableDescriptor(const std::string& table);
  // One putMultiple call, one TPut per element (for loading fixtures).
  Status PutMultiple(const std::string& table, const std::vector<HBasePut>& puts);

 private:
  // Borrows a connection, runs call on its stub and gives the connection back
  // or discards it; any exception becomes a Status naming method and table.
  template <typename Call>
  Status Run(std::string_view method, const std::string& table, Call&& call);

  std::unique_ptr<HBaseConnectionPool> pool_;
};

}  // namespace ctrjoin
