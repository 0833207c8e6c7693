#include "joins/hbase_client.h"

#include <fmt/format.h>
#include <poll.h>
#include <thrift/TApplicationException.h>
#include <thrift/TOutput.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/protocol/TCompactProtocol.h>
#include <thrift/protocol/TProtocolException.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TSocket.h>
#include <thrift/transport/TTransportException.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <utility>

#include "hbase/THBaseService.h"
#include "src/ops/library_log.h"

namespace ctrjoin {

namespace {

using apache::thrift::TApplicationException;
using apache::thrift::protocol::TProtocolException;
using apache::thrift::transport::TTransportException;

std::string Reason(const hbase::TIOError& e) {
  return e.__isset.message ? e.message : "(no message)";
}
std::string Reason(const hbase::TIllegalArgument& e) {
  return e.__isset.message ? e.message : "(no message)";
}

}  // namespace

Status HBaseClientOptions::Validate(const std::string& prefix) const {
  if (host.empty()) return Status::InvalidArgument(prefix + ".host: must not be empty");
  if (port < 1 || port > 65535) {
    return Status::InvalidArgument(
        fmt::format("{}.port: must be in [1, 65535], got {}", prefix, port));
  }
  if (connect_timeout_ms <= 0) {
    return Status::InvalidArgument(
        fmt::format("{}.connect_timeout_ms: must be positive, got {}", prefix, connect_timeout_ms));
  }
  if (request_timeout_ms <= 0) {
    return Status::InvalidArgument(
        fmt::format("{}.request_timeout_ms: must be positive, got {}", prefix, request_timeout_ms));
  }
  if (pool_size <= 0) {
    return Status::InvalidArgument(
        fmt::format("{}.pool_size: must be positive, got {}", prefix, pool_size));
  }
  return Status::Ok();
}

// Exhaustive switches with no default: -Wswitch flags any exception type a
// Thrift upgrade adds, so each gets a deliberate decision. Whether the failed
// call had an effect matters only for puts; reads are idempotent.
Status HBaseThriftStatus(std::exception_ptr error, std::string_view context) {
  if (!error) return Status::Internal(fmt::format("{}: no exception to map", context));
  try {
    std::rethrow_exception(error);
  } catch (const hbase::TIOError& e) {
    return Status::IoError(fmt::format("{}: HBase TIOError: {}", context, Reason(e)));
  } catch (const hbase::TIllegalArgument& e) {
    return Status::InvalidArgument(
        fmt::format("{}: HBase TIllegalArgument: {}", context, Reason(e)));
  } catch (const TTransportException& e) {
    std::string msg = fmt::format("{}: Thrift transport: {}", context, e.what());
    switch (e.getType()) {
      // Never connected, or the socket was already closed: nothing was sent.
      case TTransportException::NOT_OPEN:
        return Status::Unavailable(std::move(msg), Effect::kNoEffect);
      case TTransportException::TIMED_OUT: return Status::TimedOut(std::move(msg));
      // The connection broke after the request may have been sent.
      case TTransportException::END_OF_FILE:
      case TTransportException::INTERRUPTED:
      case TTransportException::CLIENT_DISCONNECT:
        return Status::Unavailable(std::move(msg), Effect::kEffectUnknown);
      case TTransportException::UNKNOWN:
        return Status::IoError(std::move(msg), Effect::kEffectUnknown);
      case TTransportException::BAD_ARGS: return Status::InvalidArgument(std::move(msg));
      // Framing we cannot read: typically a transport mismatch with the server.
      case TTransportException::CORRUPTED_DATA:
      case TTransportException::INTERNAL_ERROR:
        return Status::Internal(std::move(msg), Effect::kEffectUnknown);
    }
    return Status::Internal(
        fmt::format("{} (unrecognised type {})", msg, static_cast<int>(e.getType())));
  } catch (const TProtocolException& e) {
    std::string msg = fmt::format("{}: Thrift protocol: {}", context, e.what());
    switch (e.getType()) {
      // A reply we cannot decode: a protocol mismatch or a broken peer.
      case TProtocolException::UNKNOWN:
      case TProtocolException::INVALID_DATA:
      case TProtocolException::NEGATIVE_SIZE:
      case TProtocolException::SIZE_LIMIT:
      case TProtocolException::BAD_VERSION:
      case TProtocolException::NOT_IMPLEMENTED:
      case TProtocolException::DEPTH_LIMIT:
        return Status::Internal(std::move(msg), Effect::kEffectUnknown);
    }
    return Status::Internal(
        fmt::format("{} (unrecognised type {})", msg, static_cast<int>(e.getType())));
  } catch (const TApplicationException& e) {
    std::string msg = fmt::format("{}: Thrift application: {}", context, e.what());
    switch (e.getType()) {
      // The server could not decode or dispatch the request: not executed.
      case TApplicationException::UNKNOWN_METHOD:
      case TApplicationException::INVALID_MESSAGE_TYPE:
      case TApplicationException::PROTOCOL_ERROR:
      case TApplicationException::INVALID_TRANSFORM:
      case TApplicationException::INVALID_PROTOCOL:
      case TApplicationException::UNSUPPORTED_CLIENT_TYPE:
        return Status::Internal(std::move(msg), Effect::kNoEffect);
      // The handler failed, or the reply did not match the request.
      case TApplicationException::UNKNOWN:
      case TApplicationException::INTERNAL_ERROR:
      case TApplicationException::WRONG_METHOD_NAME:
      case TApplicationException::BAD_SEQUENCE_ID:
      case TApplicationException::MISSING_RESULT:
        return Status::Internal(std::move(msg), Effect::kEffectUnknown);
    }
    return Status::Internal(
        fmt::format("{} (unrecognised type {})", msg, static_cast<int>(e.getType())));
  } catch (const std::exception& e) {
    return Status::Internal(fmt::format("{}: {}", context, e.what()));
  } catch (...) {
    return Status::Internal(fmt::format("{}: unknown exception", context));
  }
}

// One open connection: socket, transport, protocol and generated stub. Used by
// one thread at a time, the caller that borrowed it. Owns the socket, which
// closes when the connection is destroyed.
class HBaseConnection {
 public:
  // Connects; a failure is the mapped Status (Unavailable when refused).
  static Result<std::unique_ptr<HBaseConnection>> Open(const HBaseClientOptions& options,
                                                       std::string_view context);

  HBaseConnection(std::shared_ptr<apache::thrift::transport::TSocket> socket,
                  std::shared_ptr<apache::thrift::protocol::TProtocol> protocol)
      : socket_(std::move(socket)), stub_(std::move(protocol)) {}

  hbase::THBaseServiceClient& stub() { return stub_; }

  // False when the idle socket is closed or has bytes nobody asked for
  // (the server closed it, or a reply arrived late): unusable for a new call.
  bool IdleAndIntact() const {
    if (!socket_->isOpen()) return false;
    pollfd pfd{socket_->getSocketFD(), POLLIN | POLLRDHUP, 0};
    return ::poll(&pfd, 1, 0) == 0;
  }

 private:
  std::shared_ptr<apache::thrift::transport::TSocket> socket_;
  hbase::THBaseServiceClient stub_;
};

Result<std::unique_ptr<HBaseConnection>> HBaseConnection::Open(const HBaseClientOptions& options,
                                                               std::string_view context) {
  using namespace apache::thrift::protocol;
  using namespace apache::thrift::transport;
  auto socket = std::make_shared<TSocket>(options.host, options.port);
  socket->setConnTimeout(options.connect_timeout_ms);
  socket->setRecvTimeout(options.request_timeout_ms);
  socket->setSendTimeout(options.request_timeout_ms);
  std::shared_ptr<TTransport> transport;
  switch (options.transport) {
    case HBaseTransport::kBuffered: transport = std::make_shared<TBufferedTransport>(socket); break;
    case HBaseTransport::kFramed: transport = std::make_shared<TFramedTransport>(socket); break;
  }
  std::shared_ptr<TProtocol> protocol;
  switch (options.protocol) {
    case HBaseProtocol::kBinary: protocol = std::make_shared<TBinaryProtocol>(transport); break;
    case HBaseProtocol::kCompact: protocol = std::make_shared<TCompactProtocol>(transport); break;
  }
  try {
    transport->open();
  } catch (...) {
    return HBaseThriftStatus(std::current_exception(), context);
  }
  return std::make_unique<HBaseConnection>(std::move(socket), std::move(protocol));
}

// At most pool_size connections, lent to one caller at a time. Called from
// any lookup thread. Owns the idle connections; lent ones belong to their
// borrower until Return or Discard.
class HBaseConnectionPool {
 public:
  explicit HBaseConnectionPool(HBaseClientOptions options) : options_(std::move(options)) {}

  const HBaseClientOptions& options() const { return options_; }

  // An idle intact connection, else a new one. Waits at most
  // request_timeout_ms for a free slot when all are lent out.
  Result<std::unique_ptr<HBaseConnection>> Borrow(std::string_view context) {
    {
      std::unique_lock lock(mu_);
      if (!slot_freed_.wait_for(lock, std::chrono::milliseconds(options_.request_timeout_ms),
                                [&] { return lent_ < options_.pool_size; })) {
        return Status::Unavailable(fmt::format("{}: all {} connections stayed busy for {} ms",
                                               context, options_.pool_size,
                                               options_.request_timeout_ms));
      }
      ++lent_;
      while (!idle_.empty()) {
        std::unique_ptr<HBaseConnection> connection = std::move(idle_.back());
        idle_.pop_back();
        if (connection->IdleAndIntact()) return connection;
      }
    }
    Result<std::unique_ptr<HBaseConnection>> opened = HBaseConnection::Open(options_, context);
    if (!opened.ok()) FreeSlot();
    return opened;
  }

  // After a complete answer (a result or a declared HBase error).
  void Return(std::unique_ptr<HBaseConnection> connection) {
    {
      std::lock_guard lock(mu_);
      idle_.push_back(std::move(connection));
      --lent_;
    }
    slot_freed_.notify_one();
  }

  // After any other failure: the stream may be out of step with the calls.
  void Discard(std::unique_ptr<HBaseConnection> connection) {
    connection.reset();
    FreeSlot();
  }

 private:
  void FreeSlot() {
    {
      std::lock_guard lock(mu_);
      --lent_;
    }
    slot_freed_.notify_one();
  }

  const HBaseClientOptions options_;
  std::mutex mu_;  // protects idle_ and lent_
  std::condition_variable slot_freed_;
  std::vector<std::unique_ptr<HBaseConnection>> idle_;
  int lent_ = 0;  // slots held by borrowers (connections or connection attempts)
};

namespace {

Status CheckGet(const HBaseGet& get, std::string_view name) {
  if (get.row.empty()) {
    return Status::InvalidArgument(fmt::format("{}.row: must not be empty", name));
  }
  if (get.max_ts_exclusive < 0) {
    return Status::InvalidArgument(
        fmt::format("{}.max_ts_exclusive: must be >= 0, got {}", name, get.max_ts_exclusive));
  }
  if (get.max_versions < 1) {
    return Status::InvalidArgument(
        fmt::format("{}.max_versions: must be >= 1, got {}", name, get.max_versions));
  }
  return Status::Ok();
}

hbase::TGet ToTGet(const HBaseGet& get) {
  hbase::TGet tget;
  tget.__set_row(get.row);
  if (!get.family.empty()) {
    hbase::TColumn column;
    column.__set_family(get.family);
    tget.__set_columns({std::move(column)});
  }
  hbase::TTimeRange range;
  range.__set_minStamp(0);
  range.__set_maxStamp(get.max_ts_exclusive);
  tget.__set_timeRange(range);
  tget.__set_maxVersions(get.max_versions);
  return tget;
}

HBaseRow FromTResult(const std::string& row, hbase::TResult&& result) {
  HBaseRow out{row, {}};
  out.cells.reserve(result.columnValues.size());
  for (hbase::TColumnValue& cv : result.columnValues) {
    out.cells.push_back(HBaseCell{std::move(cv.family), std::move(cv.qualifier),
                                  std::move(cv.value), cv.__isset.timestamp ? cv.timestamp : 0});
  }
  return out;
}

}  // namespace

namespace {
// Thrift's global output hook (any thread): into our logger. Its lines are
// errors it also throws ("TSocket::open() connect() <Host: ...>: Connection
// refused"); the first word is the topic repeats are counted by.
void ThriftToLogger(const char* text) {
  const std::string_view line(text);
  LibraryLog::Log("thrift", line.substr(0, line.find(' ')), spdlog::level::warn, line);
}
}  // namespace

Result<std::unique_ptr<HBaseClient>> HBaseClient::Open(const HBaseClientOptions& options) {
  static std::once_flag hooked;
  std::call_once(hooked, [] { apache::thrift::GlobalOutput.setOutputFunction(ThriftToLogger); });
  CTRJOIN_RETURN_IF_ERROR(options.Validate("hbase"));
  return std::make_unique<HBaseClient>(std::make_unique<HBaseConnectionPool>(options));
}

HBaseClient::HBaseClient(std::unique_ptr<HBaseConnectionPool> pool) : pool_(std::move(pool)) {}

HBaseClient::~HBaseClient() = default;

template <typename Call>
Status HBaseClient::Run(std::string_view method, const std::string& table, Call&& call) {
  const HBaseClientOptions& options = pool_->options();
  std::string context =
      fmt::format("HBase {} on '{}' at {}:{}", method, table, options.host, options.port);
  Result<std::unique_ptr<HBaseConnection>> borrowed = pool_->Borrow(context);
  if (!borrowed.ok()) return borrowed.status();
  std::unique_ptr<HBaseConnection> connection = std::move(borrowed).value();
  std::exception_ptr error;
  bool in_step = true;  // the connection read exactly the replies to its calls
  try {
    call(connection->stub());
  } catch (const hbase::TIOError&) {
    error = std::current_exception();
  } catch (...) {
    error = std::current_exception();
    in_step = false;
  }
  if (in_step) {
    pool_->Return(std::move(connection));
  } else {
    pool_->Discard(std::move(connection));
  }
  return error ? HBaseThriftStatus(error, context) : Status::Ok();
}

Result<std::vector<HBaseRow>> HBaseClient::GetMultiple(const std::string& table,
                                                       const std::vector<HBaseGet>& gets) {
  if (gets.empty()) return std::vector<HBaseRow>{};
  std::vector<hbase::TGet> tgets;
  tgets.reserve(gets.size());
  for (size_t i = 0; i < gets.size(); ++i) {
    CTRJOIN_RETURN_IF_ERROR(CheckGet(gets[i], fmt::format("gets[{}]", i)));
    tgets.push_back(ToTGet(gets[i]));
  }
  std::vector<hbase::TResult> results;
  CTRJOIN_RETURN_IF_ERROR(Run("getMultiple", table, [&](hbase::THBaseServiceClient& stub) {
    stub.getMultiple(results, table, tgets);
  }));
  if (results.size() != gets.size()) {
    return Status::Internal(fmt::format("HBase getMultiple on '{}': {} results for {} gets", table,
                                        results.size(), gets.size()),
                            Effect::kNoEffect);
  }
  std::vector<HBaseRow> rows;
  rows.reserve(results.size());
  for (size_t i = 0; i < results.size(); ++i) {
    rows.push_back(FromTResult(gets[i].row, std::move(results[i])));
  }
  return rows;
}

Result<HBaseRow> HBaseClient::Get(const std::string& table, const HBaseGet& get) {
  CTRJOIN_RETURN_IF_ERROR(CheckGet(get, "get"));
  hbase::TGet tget = ToTGet(get);
  hbase::TResult result;
  CTRJOIN_RETURN_IF_ERROR(
      Run("get", table, [&](hbase::THBaseServiceClient& stub) { stub.get(result, table, tget); }));
  return FromTResult(get.row, std::move(result));
}

Result<bool> HBaseClient::Exists(const std::string& table, const HBaseGet& get) {
  CTRJOIN_RETURN_IF_ERROR(CheckGet(get, "get"));
  hbase::TGet tget = ToTGet(get);
  bool exists = false;
  CTRJOIN_RETURN_IF_ERROR(Run("exists", table, [&](hbase::THBaseServiceClient& stub) {
    exists = stub.exists(table, tget);
  }));
  return exists;
}

Result<std::optional<HBaseTableDescriptor>> HBaseClient::GetTableDescriptor(
    const std::string& table) {
  hbase::TTableName name;
  if (const size_t colon = table.find(':'); colon != std::string::npos) {
    name.__set_ns(table.substr(0, colon));
    name.__set_qualifier(table.substr(colon + 1));
  } else {
    name.__set_qualifier(table);
  }
  hbase::TTableDescriptor descriptor;
  bool offered = true;
  CTRJOIN_RETURN_IF_ERROR(Run("getTableDescriptor", table, [&](hbase::THBaseServiceClient& stub) {
    try {
      stub.getTableDescriptor(descriptor, name);
    } catch (const TApplicationException& e) {
      // A complete answer: the connection stays in step.
      if (e.getType() != TApplicationException::UNKNOWN_METHOD) throw;
      offered = false;
    }
  }));
  if (!offered) return std::optional<HBaseTableDescriptor>();
  HBaseTableDescriptor out;
  for (const hbase::TColumnFamilyDescriptor& family : descriptor.columns) {
    out.families.push_back(HBaseFamilyDescriptor{
        family.name,
        family.__isset.maxVersions ? std::optional<int32_t>(family.maxVersions) : std::nullopt});
  }
  return std::optional<HBaseTableDescriptor>(std::move(out));
}

Status HBaseClient::PutMultiple(const std::string& table, const std::vector<HBasePut>& puts) {
  if (puts.empty()) return Status::Ok();
  std::vector<hbase::TPut> tputs;
  tputs.reserve(puts.size());
  for (size_t i = 0; i < puts.size(); ++i) {
    const HBasePut& put = puts[i];
    if (put.row.empty()) {
      return Status::InvalidArgument(fmt::format("puts[{}].row: must not be empty", i));
    }
    if (put.family.empty()) {
      return Status::InvalidArgument(fmt::format("puts[{}].family: must not be empty", i));
    }
    hbase::TColumnValue cell;
    cell.__set_family(put.family);
    cell.__set_qualifier(put.qualifier);
    cell.__set_value(put.value);
    if (put.timestamp) cell.__set_timestamp(*put.timestamp);
    hbase::TPut tput;
    tput.__set_row(put.row);
    tput.__set_columnValues({std::move(cell)});
    tputs.push_back(std::move(tput));
  }
  return Run("putMultiple", table,
             [&](hbase::THBaseServiceClient& stub) { stub.putMultiple(table, tputs); });
}

}  // namespace ctrjoin
