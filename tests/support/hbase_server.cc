#include "tests/support/hbase_server.h"

#include <fmt/format.h>
#include <thrift/TProcessor.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/protocol/TCompactProtocol.h>
#include <thrift/server/TThreadedServer.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TServerSocket.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <utility>
#include <vector>

#include "hbase/THBaseService.h"
#include "joins/hbase_client.h"

namespace ctrjoin::test_support {

namespace {

using apache::thrift::TConnectionInfo;
using apache::thrift::TProcessor;
using apache::thrift::TProcessorFactory;
using apache::thrift::protocol::TProtocol;
using apache::thrift::transport::TTransport;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The tables. Called from every connection thread; one mutex serialises all
// reads and writes (a test store, not a fast one).
class VersionedStore {
 public:
  // Writes every cell of puts, creating the table. Checks all puts first, so
  // a rejected batch writes nothing.
  Status Put(const std::string& table, const std::vector<hbase::TPut>& puts) {
    for (const hbase::TPut& put : puts) {
      if (put.row.empty()) return Status::InvalidArgument("put with an empty row");
      for (const hbase::TColumnValue& cell : put.columnValues) {
        if (cell.family.empty()) return Status::InvalidArgument("put cell with an empty family");
      }
    }
    int64_t now = NowMs();
    std::lock_guard lock(mu_);
    if (auto declared = families_.find(table); declared != families_.end()) {
      for (const hbase::TPut& put : puts) {
        for (const hbase::TColumnValue& cell : put.columnValues) {
          if (!declared->second.contains(cell.family)) return NoSuchFamily(table, cell.family);
        }
      }
    }
    Table& rows = tables_[table];
    for (const hbase::TPut& put : puts) {
      Row& row = rows[put.row];
      for (const hbase::TColumnValue& cell : put.columnValues) {
        int64_t ts = cell.__isset.timestamp  ? cell.timestamp
                     : put.__isset.timestamp ? put.timestamp
                                             : now;
        row[{cell.family, cell.qualifier}][ts] = cell.value;
      }
    }
    return Status::Ok();
  }

  Result<hbase::TResult> Get(const std::string& table, const hbase::TGet& get) const {
    int64_t min_ts = 0;
    int64_t max_ts = kHBaseLatestTimestamp;  // exclusive
    if (get.__isset.timestamp) {
      min_ts = get.timestamp;
      max_ts = get.timestamp == kHBaseLatestTimestamp ? get.timestamp : get.timestamp + 1;
    } else if (get.__isset.timeRange) {
      min_ts = get.timeRange.minStamp;
      max_ts = get.timeRange.maxStamp;
      if (min_ts < 0 || max_ts < min_ts) {
        return Status::InvalidArgument(fmt::format("bad time range [{}, {})", min_ts, max_ts));
      }
    }
    int32_t max_versions = get.__isset.maxVersions ? get.maxVersions : 1;
    if (max_versions < 1) {
      return Status::InvalidArgument(fmt::format("maxVersions must be >= 1, got {}", max_versions));
    }
    hbase::TResult result;
    result.__set_columnValues({});
    std::lock_guard lock(mu_);
    auto t = tables_.find(table);
    if (t == tables_.end()) return TableNotFound(table);
    const auto declared = families_.find(table);
    if (declared != families_.end() && get.__isset.columns) {
      for (const hbase::TColumn& c : get.columns) {
        if (!declared->second.contains(c.family)) return NoSuchFamily(table, c.family);
      }
    }
    auto r = t->second.find(get.row);
    if (r == t->second.end()) return result;
    for (const auto& [column, versions] : r->second) {
      if (!Selected(get, column.first, column.second)) continue;
      // A family keeps its VERSIONS newest (as after a major compaction).
      int32_t limit = max_versions;
      if (declared != families_.end()) limit = std::min(limit, declared->second.at(column.first));
      int32_t taken = 0;
      for (auto v = versions.lower_bound(max_ts - 1); v != versions.end() && taken < limit;
           ++v, ++taken) {
        if (v->first < min_ts) break;
        hbase::TColumnValue cell;
        cell.__set_family(column.first);
        cell.__set_qualifier(column.second);
        cell.__set_value(v->second);
        cell.__set_timestamp(v->first);
        result.columnValues.push_back(std::move(cell));
      }
    }
    if (!result.columnValues.empty()) result.__set_row(get.row);
    return result;
  }

  // Declares table with its families and the versions each keeps.
  Status CreateTable(const std::string& table, const std::map<std::string, int32_t>& families) {
    std::lock_guard lock(mu_);
    if (tables_.contains(table)) {
      return Status::InvalidArgument(
          fmt::format("org.apache.hadoop.hbase.TableExistsException: {}", table));
    }
    tables_[table];
    families_[table] = families;
    return Status::Ok();
  }

  // A table put created lists the families it has seen, without VERSIONS
  // (it keeps every version).
  Result<hbase::TTableDescriptor> Describe(const hbase::TTableName& name) const {
    const std::string table =
        name.__isset.ns && !name.ns.empty() ? name.ns + ":" + name.qualifier : name.qualifier;
    std::lock_guard lock(mu_);
    auto t = tables_.find(table);
    if (t == tables_.end()) return TableNotFound(table);
    hbase::TTableDescriptor descriptor;
    descriptor.tableName = name;
    descriptor.__isset.columns = true;
    if (auto declared = families_.find(table); declared != families_.end()) {
      for (const auto& [family, versions] : declared->second) {
        hbase::TColumnFamilyDescriptor f;
        f.__set_name(family);
        f.__set_maxVersions(versions);
        descriptor.columns.push_back(std::move(f));
      }
      return descriptor;
    }
    std::set<std::string> seen;
    for (const auto& [row, columns] : t->second) {
      for (const auto& [column, versions] : columns) seen.insert(column.first);
    }
    for (const std::string& family : seen) {
      hbase::TColumnFamilyDescriptor f;
      f.__set_name(family);
      descriptor.columns.push_back(std::move(f));
    }
    return descriptor;
  }

 private:
  // Timestamp -> value, newest first.
  using Versions = std::map<int64_t, std::string, std::greater<>>;
  // (family, qualifier) -> versions; map order is HBase's cell order.
  using Row = std::map<std::pair<std::string, std::string>, Versions>;
  using Table = std::map<std::string, Row>;

  static bool Selected(const hbase::TGet& get, const std::string& family,
                       const std::string& qualifier) {
    if (!get.__isset.columns || get.columns.empty()) return true;
    for (const hbase::TColumn& c : get.columns) {
      if (c.family == family && (!c.__isset.qualifier || c.qualifier == qualifier)) return true;
    }
    return false;
  }

  // HBase's messages name the Java exception; clients look for it.
  static Status TableNotFound(const std::string& table) {
    return Status::NotFound(
        fmt::format("org.apache.hadoop.hbase.TableNotFoundException: {}", table));
  }
  static Status NoSuchFamily(const std::string& table, const std::string& family) {
    return Status::NotFound(
        fmt::format("org.apache.hadoop.hbase.regionserver.NoSuchColumnFamilyException: Column "
                    "family {} does not exist in table {}",
                    family, table));
  }

  mutable std::mutex mu_;  // protects tables_ and families_
  std::map<std::string, Table> tables_;
  // Tables made by CreateTable: family -> versions kept.
  std::map<std::string, std::map<std::string, int32_t>> families_;
};

// What to do with one request, decided by the faults in force when it
// arrived. Admit() runs on connection threads and may block (latency, stall);
// Set() and Stop() come from the test thread and wake the blocked ones.
class FaultInjector {
 public:
  enum class Verdict { kServe, kDrop, kFail };

  void Set(const HBaseServerFaults& faults) {
    {
      std::lock_guard lock(mu_);
      faults_ = faults;
      exempt_ = faults.serve_first;
    }
    changed_.notify_all();
  }

  // Releases every waiting request and drops all later ones.
  void Stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    changed_.notify_all();
  }

  Verdict Admit() {
    std::unique_lock lock(mu_);
    if (exempt_ > 0 && !stopping_) {
      --exempt_;
      return Verdict::kServe;
    }
    if (faults_.latency.count() > 0) {
      changed_.wait_for(lock, faults_.latency, [&] { return stopping_; });
    }
    changed_.wait(lock, [&] { return !faults_.stall || stopping_; });
    if (stopping_) return Verdict::kDrop;
    std::uniform_real_distribution<double> draw(0.0, 1.0);
    if (draw(rng_) < faults_.drop_rate) return Verdict::kDrop;
    if (draw(rng_) < faults_.error_rate) return Verdict::kFail;
    return Verdict::kServe;
  }

 private:
  std::mutex mu_;  // protects faults_, exempt_, rng_ and stopping_
  std::condition_variable changed_;
  HBaseServerFaults faults_;
  int64_t exempt_ = 0;             // requests still to serve despite faults_ (serve_first)
  std::mt19937_64 rng_{20240601};  // fixed seed: reproducible fault sequences
  bool stopping_ = false;
};

struct Counters {
  std::atomic<int64_t> get{0};
  std::atomic<int64_t> get_multiple{0};
  std::atomic<int64_t> exists{0};
  std::atomic<int64_t> put{0};
  std::atomic<int64_t> put_multiple{0};
  std::atomic<int64_t> get_table_descriptor{0};
  std::atomic<int64_t> rows_requested{0};
  std::atomic<int64_t> connections{0};
};

}  // namespace

// Everything the connection handlers share with the test thread. Each part
// is thread-safe on its own.
class HBaseServerState {
 public:
  VersionedStore store;
  FaultInjector faults;
  Counters counters;
  bool offer_descriptors = true;  // set before serving
};

namespace {

[[noreturn]] void ThrowIoError(const std::string& message) {
  hbase::TIOError error;
  error.__set_message(message);
  throw error;
}

// Serves one connection; called only from that connection's server thread.
// Holds the connection's socket so that a drop fault can close it.
class HBaseHandler final : public hbase::THBaseServiceIf {
 public:
  HBaseHandler(std::shared_ptr<HBaseServerState> state, std::shared_ptr<TTransport> connection)
      : state_(std::move(state)), connection_(std::move(connection)) {}

  bool exists(const std::string& table, const hbase::TGet& tget) override {
    Arrive(state_->counters.exists, 1);
    return !Read(table, tget).columnValues.empty();
  }

  void get(hbase::TResult& result, const std::string& table, const hbase::TGet& tget) override {
    Arrive(state_->counters.get, 1);
    result = Read(table, tget);
  }

  void getMultiple(std::vector<hbase::TResult>& results, const std::string& table,
                   const std::vector<hbase::TGet>& tgets) override {
    Arrive(state_->counters.get_multiple, static_cast<int64_t>(tgets.size()));
    results.clear();
    results.reserve(tgets.size());
    for (const hbase::TGet& tget : tgets) results.push_back(Read(table, tget));
  }

  void put(const std::string& table, const hbase::TPut& tput) override {
    Arrive(state_->counters.put, 0);
    Write(table, {tput});
  }

  void putMultiple(const std::string& table, const std::vector<hbase::TPut>& tputs) override {
    Arrive(state_->counters.put_multiple, 0);
    Write(table, tputs);
  }

  void getTableDescriptor(hbase::TTableDescriptor& result,
                          const hbase::TTableName& table) override {
    Arrive(state_->counters.get_table_descriptor, 0);
    Result<hbase::TTableDescriptor> described = state_->store.Describe(table);
    if (!described.ok()) ThrowIoError(described.status().message());
    result = std::move(described).value();
  }

 private:
  // Counts the request, then applies the faults: returns if it is to be
  // served, else throws (a TIOError answer, or after closing the socket).
  void Arrive(std::atomic<int64_t>& method_counter, int64_t rows) {
    ++method_counter;
    state_->counters.rows_requested += rows;
    switch (state_->faults.Admit()) {
      case FaultInjector::Verdict::kServe: return;
      case FaultInjector::Verdict::kFail: ThrowIoError("injected fault");
      case FaultInjector::Verdict::kDrop:
        // The processor's attempt to answer then fails on the closed socket,
        // which ends this connection.
        connection_->close();
        throw std::runtime_error("connection dropped by an injected fault");
    }
  }

  hbase::TResult Read(const std::string& table, const hbase::TGet& tget) {
    Result<hbase::TResult> result = state_->store.Get(table, tget);
    if (!result.ok()) ThrowIoError(result.status().message());
    return std::move(result).value();
  }

  void Write(const std::string& table, const std::vector<hbase::TPut>& tputs) {
    Status status = state_->store.Put(table, tputs);
    if (!status.ok()) ThrowIoError(status.message());
  }

  const std::shared_ptr<HBaseServerState> state_;
  const std::shared_ptr<TTransport> connection_;
};

// The service's processor, but without the methods HBase 1.x lacks when
// offer_descriptors is off: those are answered as a server that does not
// know them answers (an UNKNOWN_METHOD exception, the connection in step).
// Runs on the connection's thread.
class HBaseProcessor final : public hbase::THBaseServiceProcessor {
 public:
  HBaseProcessor(std::shared_ptr<hbase::THBaseServiceIf> handler, bool offer_descriptors)
      : THBaseServiceProcessor(std::move(handler)), offer_descriptors_(offer_descriptors) {}

 protected:
  bool dispatchCall(apache::thrift::protocol::TProtocol* in,
                    apache::thrift::protocol::TProtocol* out, const std::string& name,
                    int32_t seqid, void* context) override {
    if (offer_descriptors_ || name != "getTableDescriptor") {
      return THBaseServiceProcessor::dispatchCall(in, out, name, seqid, context);
    }
    in->skip(apache::thrift::protocol::T_STRUCT);
    in->readMessageEnd();
    in->getTransport()->readEnd();
    const apache::thrift::TApplicationException unknown(
        apache::thrift::TApplicationException::UNKNOWN_METHOD,
        "Invalid method name: '" + name + "'");
    out->writeMessageBegin(name, apache::thrift::protocol::T_EXCEPTION, seqid);
    unknown.write(out);
    out->writeMessageEnd();
    out->getTransport()->writeEnd();
    out->getTransport()->flush();
    return true;
  }

 private:
  const bool offer_descriptors_;
};

// A handler of its own for each connection, so that it knows its socket.
// Called on the accepting thread.
class HandlerPerConnection final : public TProcessorFactory {
 public:
  explicit HandlerPerConnection(std::shared_ptr<HBaseServerState> state)
      : state_(std::move(state)) {}

  std::shared_ptr<TProcessor> getProcessor(const TConnectionInfo& info) override {
    return std::make_shared<HBaseProcessor>(std::make_shared<HBaseHandler>(state_, info.transport),
                                            state_->offer_descriptors);
  }

 private:
  const std::shared_ptr<HBaseServerState> state_;
};

// Tells Listen() when serve() is listening (or failed first), and counts
// connections. Called on the serving thread and connection threads.
class ServerEvents final : public apache::thrift::server::TServerEventHandler {
 public:
  explicit ServerEvents(std::shared_ptr<HBaseServerState> state) : state_(std::move(state)) {}

  std::future<Status> listening() { return listening_.get_future(); }

  // The first call wins: Ok from preServe, or the error serve() threw.
  void Announce(Status status) {
    std::call_once(announced_, [&] { listening_.set_value(std::move(status)); });
  }

  void preServe() override { Announce(Status::Ok()); }

  void* createContext(std::shared_ptr<TProtocol>, std::shared_ptr<TProtocol>) override {
    ++state_->counters.connections;
    return nullptr;
  }

 private:
  const std::shared_ptr<HBaseServerState> state_;
  std::once_flag announced_;
  std::promise<Status> listening_;
};

constexpr auto kListenTimeout = std::chrono::seconds(10);

}  // namespace

Result<std::unique_ptr<TestHBaseServer>> TestHBaseServer::Start(
    const TestHBaseServerOptions& options) {
  auto server = std::make_unique<TestHBaseServer>(Key{}, options);
  CTRJOIN_RETURN_IF_ERROR(server->Listen());
  return server;
}

TestHBaseServer::TestHBaseServer(Key, const TestHBaseServerOptions& options)
    : options_(options), state_(std::make_shared<HBaseServerState>()) {
  state_->offer_descriptors = options.offer_descriptors;
}

TestHBaseServer::~TestHBaseServer() { Stop(); }

std::string TestHBaseServer::address() const { return fmt::format("{}:{}", options_.host, port_); }

Status TestHBaseServer::Listen() {
  using namespace apache::thrift::protocol;
  using namespace apache::thrift::transport;
  std::shared_ptr<TProtocolFactory> protocols;
  switch (options_.protocol) {
    case HBaseProtocol::kBinary: protocols = std::make_shared<TBinaryProtocolFactory>(); break;
    case HBaseProtocol::kCompact: protocols = std::make_shared<TCompactProtocolFactory>(); break;
  }
  std::shared_ptr<TTransportFactory> transports;
  switch (options_.transport) {
    case HBaseTransport::kBuffered:
      transports = std::make_shared<TBufferedTransportFactory>();
      break;
    case HBaseTransport::kFramed: transports = std::make_shared<TFramedTransportFactory>(); break;
  }
  auto socket = std::make_shared<TServerSocket>(options_.host, options_.port);
  server_ = std::make_shared<apache::thrift::server::TThreadedServer>(
      std::make_shared<HandlerPerConnection>(state_), socket, transports, protocols);
  auto events = std::make_shared<ServerEvents>(state_);
  server_->setServerEventHandler(events);
  std::future<Status> listening = events->listening();
  {
    std::lock_guard lock(stop_mu_);
    serve_thread_ = std::thread([server = server_, events, address = options_.host] {
      try {
        server->serve();
      } catch (const std::exception& e) {
        events->Announce(
            Status::Unavailable(fmt::format("test HBase server on {}: {}", address, e.what())));
      }
    });
  }
  if (listening.wait_for(kListenTimeout) != std::future_status::ready) {
    Stop();
    return Status::TimedOut("test HBase server: not listening after 10 s");
  }
  Status status = listening.get();
  if (!status.ok()) {
    Stop();
    return status;
  }
  port_ = socket->getPort();
  return Status::Ok();
}

void TestHBaseServer::Stop() {
  std::lock_guard lock(stop_mu_);
  if (!serve_thread_.joinable()) return;
  state_->faults.Stop();
  server_->stop();
  serve_thread_.join();
}

Status TestHBaseServer::CreateTable(const std::string& table,
                                    const std::map<std::string, int32_t>& families) {
  return state_->store.CreateTable(table, families);
}

void TestHBaseServer::SetFaults(const HBaseServerFaults& faults) { state_->faults.Set(faults); }

HBaseServerCounts TestHBaseServer::counts() const {
  const Counters& c = state_->counters;
  return HBaseServerCounts{c.get.load(),
                           c.get_multiple.load(),
                           c.exists.load(),
                           c.put.load(),
                           c.put_multiple.load(),
                           c.get_table_descriptor.load(),
                           c.rows_requested.load(),
                           c.connections.load()};
}

}  // namespace ctrjoin::test_support
