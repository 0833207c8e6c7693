// HBaseClient against TestHBaseServer (in-process, 127.0.0.1, ephemeral
// ports) for every protocol x transport combination: round trips,
// point-in-time reads, request order, injected faults, reconnects, a stopped
// server, concurrency through the pool, and wire mismatches. Plus the Thrift
// error mapping and option validation. Every wait is bounded by a client
// timeout or kWait; CTest's TIMEOUT is the backstop.

#include "joins/hbase_client.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <thrift/TApplicationException.h>
#include <thrift/protocol/TProtocolException.h>
#include <thrift/transport/TTransportException.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <ostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "hbase/hbase_types.h"
#include "tests/support/hbase_server.h"

namespace ctrjoin {

namespace {

using test_support::HBaseServerCounts;
using test_support::HBaseServerFaults;
using test_support::TestHBaseServer;
using test_support::TestHBaseServerOptions;
using Clock = std::chrono::steady_clock;

constexpr auto kWait = std::chrono::seconds(10);  // bound for every polling loop
constexpr char kTable[] = "user_features";

using enum HBaseProtocol;
using enum HBaseTransport;

struct Wire {
  HBaseProtocol protocol;
  HBaseTransport transport;

  std::string Name() const { return fmt::format("{}_{}", NameOf(protocol), NameOf(transport)); }
};

// Readable parameter names in gtest and CTest output.
void PrintTo(const Wire& wire, std::ostream* os) { *os << wire.Name(); }

std::string WireName(const ::testing::TestParamInfo<Wire>& info) { return info.param.Name(); }

std::unique_ptr<TestHBaseServer> StartServer(const Wire& wire) {
  TestHBaseServerOptions options;
  options.protocol = wire.protocol;
  options.transport = wire.transport;
  auto server = TestHBaseServer::Start(options);
  EXPECT_TRUE(server.ok()) << server.status().ToString();
  return server.ok() ? std::move(server).value() : nullptr;
}

HBaseClientOptions ClientOptions(const Wire& wire, int port) {
  HBaseClientOptions options;
  options.port = port;
  options.protocol = wire.protocol;
  options.transport = wire.transport;
  return options;
}

std::unique_ptr<HBaseClient> OpenClient(const HBaseClientOptions& options) {
  auto client = HBaseClient::Open(options);
  EXPECT_TRUE(client.ok()) << client.status().ToString();
  return client.ok() ? std::move(client).value() : nullptr;
}

HBaseGet AsOf(const std::string& row, int64_t max_ts_exclusive, int32_t max_versions = 1) {
  return HBaseGet{row, "f", max_ts_exclusive, max_versions};
}

HBasePut Cell(const std::string& row, const std::string& qualifier, const std::string& value,
              int64_t ts) {
  return HBasePut{row, "f", qualifier, value, ts};
}

// "qualifier=value@ts" per cell, in the order received.
std::vector<std::string> Describe(const HBaseRow& row) {
  std::vector<std::string> out;
  for (const HBaseCell& c : row.cells) {
    out.push_back(c.family + ":" + c.qualifier + "=" + c.value + "@" + std::to_string(c.timestamp));
  }
  return out;
}

bool WaitUntil(const std::function<bool()>& done) {
  auto deadline = Clock::now() + kWait;
  while (!done()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

class HBaseClientTest : public ::testing::TestWithParam<Wire> {
 protected:
  void SetUp() override {
    server_ = StartServer(GetParam());
    ASSERT_NE(server_, nullptr);
    client_ = OpenClient(Options());
    ASSERT_NE(client_, nullptr);
  }

  HBaseClientOptions Options() const { return ClientOptions(GetParam(), server_->port()); }

  // A client with one connection and short timeouts, for the fault tests.
  std::unique_ptr<HBaseClient> FaultClient() const {
    HBaseClientOptions options = Options();
    options.pool_size = 1;
    options.request_timeout_ms = 300;
    return OpenClient(options);
  }

  void Load(const std::vector<HBasePut>& puts) {
    Status status = client_->PutMultiple(kTable, puts);
    ASSERT_TRUE(status.ok()) << status.ToString();
  }

  std::unique_ptr<TestHBaseServer> server_;
  std::unique_ptr<HBaseClient> client_;
};

INSTANTIATE_TEST_SUITE_P(AllWires, HBaseClientTest,
                         ::testing::Values(Wire{kBinary, kBuffered}, Wire{kBinary, kFramed},
                                           Wire{kCompact, kBuffered}, Wire{kCompact, kFramed}),
                         WireName);

TEST_P(HBaseClientTest, PutThenGetGetMultipleAndExistsRoundTrip) {
  Load({Cell("u1", "age", "31", 100), Cell("u1", "city", "Lyon", 100),
        Cell("u2", "age", "27", 100)});
  EXPECT_EQ(server_->counts().put_multiple, 1);

  Result<HBaseRow> u1 = client_->Get(kTable, HBaseGet{"u1", "f"});
  ASSERT_TRUE(u1.ok()) << u1.status().ToString();
  EXPECT_EQ(u1->row, "u1");
  EXPECT_EQ(Describe(*u1), (std::vector<std::string>{"f:age=31@100", "f:city=Lyon@100"}));

  Result<std::vector<HBaseRow>> rows =
      client_->GetMultiple(kTable, {HBaseGet{"u2", "f"}, HBaseGet{"u1", "f"}});
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ(Describe((*rows)[0]), (std::vector<std::string>{"f:age=27@100"}));
  EXPECT_EQ(Describe((*rows)[1]), (std::vector<std::string>{"f:age=31@100", "f:city=Lyon@100"}));

  Result<bool> exists = client_->Exists(kTable, HBaseGet{"u2", "f"});
  ASSERT_TRUE(exists.ok()) << exists.status().ToString();
  EXPECT_TRUE(*exists);
  Result<bool> missing = client_->Exists(kTable, HBaseGet{"u3", "f"});
  ASSERT_TRUE(missing.ok()) << missing.status().ToString();
  EXPECT_FALSE(*missing);

  HBaseServerCounts counts = server_->counts();
  EXPECT_EQ(counts.get, 1);
  EXPECT_EQ(counts.get_multiple, 1);
  EXPECT_EQ(counts.exists, 2);
  EXPECT_EQ(counts.rows_requested, 5);
}

TEST_P(HBaseClientTest, PutWithoutTimestampTakesTheServerClock) {
  auto now_ms = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  int64_t before = now_ms();
  Load({HBasePut{"u1", "f", "age", "31", std::nullopt}});
  int64_t after = now_ms();
  Result<HBaseRow> row = client_->Get(kTable, HBaseGet{"u1", "f"});
  ASSERT_TRUE(row.ok()) << row.status().ToString();
  ASSERT_EQ(row->cells.size(), 1u);
  EXPECT_GE(row->cells[0].timestamp, before);
  EXPECT_LE(row->cells[0].timestamp, after);
}

TEST_P(HBaseClientTest, PointInTimeReadsHonourTimeRangeAndVersions) {
  Load({Cell("u1", "ctr", "v100", 100), Cell("u1", "ctr", "v200", 200),
        Cell("u1", "ctr", "v300", 300), Cell("u1", "age", "a50", 50)});

  Result<HBaseRow> at_249 = client_->Get(kTable, AsOf("u1", 250));
  ASSERT_TRUE(at_249.ok()) << at_249.status().ToString();
  EXPECT_EQ(Describe(*at_249), (std::vector<std::string>{"f:age=a50@50", "f:ctr=v200@200"}));

  // [0, 100) excludes the version written at 100: nothing for ctr.
  Result<HBaseRow> at_99 = client_->Get(kTable, AsOf("u1", 100));
  ASSERT_TRUE(at_99.ok()) << at_99.status().ToString();
  EXPECT_EQ(Describe(*at_99), (std::vector<std::string>{"f:age=a50@50"}));

  Result<HBaseRow> two_latest = client_->Get(kTable, AsOf("u1", kHBaseLatestTimestamp, 2));
  ASSERT_TRUE(two_latest.ok()) << two_latest.status().ToString();
  EXPECT_EQ(Describe(*two_latest),
            (std::vector<std::string>{"f:age=a50@50", "f:ctr=v300@300", "f:ctr=v200@200"}));

  Result<HBaseRow> two_at_250 = client_->Get(kTable, AsOf("u1", 251, 2));
  ASSERT_TRUE(two_at_250.ok()) << two_at_250.status().ToString();
  EXPECT_EQ(Describe(*two_at_250),
            (std::vector<std::string>{"f:age=a50@50", "f:ctr=v200@200", "f:ctr=v100@100"}));

  // Nothing at all before 50: the row reads as missing.
  Result<HBaseRow> before_all = client_->Get(kTable, AsOf("u1", 50));
  ASSERT_TRUE(before_all.ok()) << before_all.status().ToString();
  EXPECT_EQ(before_all->row, "u1");
  EXPECT_TRUE(before_all->cells.empty());
  Result<bool> exists_before_all = client_->Exists(kTable, AsOf("u1", 50));
  ASSERT_TRUE(exists_before_all.ok());
  EXPECT_FALSE(*exists_before_all);
}

TEST_P(HBaseClientTest, FamilySelectsColumns) {
  Load({Cell("u1", "age", "31", 100), HBasePut{"u1", "g", "other", "x", 100}});
  Result<HBaseRow> f_only = client_->Get(kTable, HBaseGet{"u1", "f"});
  ASSERT_TRUE(f_only.ok()) << f_only.status().ToString();
  EXPECT_EQ(Describe(*f_only), (std::vector<std::string>{"f:age=31@100"}));
  Result<HBaseRow> all = client_->Get(kTable, HBaseGet{"u1", ""});
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(Describe(*all), (std::vector<std::string>{"f:age=31@100", "g:other=x@100"}));
}

TEST_P(HBaseClientTest, MissingRowsComeBackEmpty) {
  Load({Cell("u1", "age", "31", 100)});
  Result<HBaseRow> row = client_->Get(kTable, HBaseGet{"nobody", "f"});
  ASSERT_TRUE(row.ok()) << row.status().ToString();
  EXPECT_EQ(row->row, "nobody");
  EXPECT_TRUE(row->cells.empty());

  Result<std::vector<HBaseRow>> rows =
      client_->GetMultiple(kTable, {HBaseGet{"x", "f"}, HBaseGet{"y", "f"}});
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].row, "x");
  EXPECT_TRUE((*rows)[0].cells.empty());
  EXPECT_EQ((*rows)[1].row, "y");
  EXPECT_TRUE((*rows)[1].cells.empty());
}

TEST_P(HBaseClientTest, GetMultipleKeepsRequestOrder) {
  std::vector<HBasePut> puts;
  for (int i = 0; i < 20; ++i) {
    puts.push_back(Cell("r" + std::to_string(i), "v", "value" + std::to_string(i), 100));
  }
  Load(puts);
  // Descending, with missing rows in between.
  std::vector<HBaseGet> gets;
  for (int i = 21; i >= 0; --i) gets.push_back(HBaseGet{"r" + std::to_string(i), "f"});
  gets.insert(gets.begin() + 5, HBaseGet{"absent", "f"});

  Result<std::vector<HBaseRow>> rows = client_->GetMultiple(kTable, gets);
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), gets.size());
  for (size_t i = 0; i < gets.size(); ++i) {
    const HBaseRow& row = (*rows)[i];
    EXPECT_EQ(row.row, gets[i].row);
    const bool present = gets[i].row != "absent" && gets[i].row != "r20" && gets[i].row != "r21";
    if (present) {
      ASSERT_EQ(row.cells.size(), 1u) << gets[i].row;
      EXPECT_EQ(row.cells[0].value, "value" + gets[i].row.substr(1));
    } else {
      EXPECT_TRUE(row.cells.empty()) << gets[i].row;
    }
  }
  EXPECT_EQ(server_->counts().get_multiple, 1);
  EXPECT_EQ(server_->counts().rows_requested, static_cast<int64_t>(gets.size()));
}

TEST_P(HBaseClientTest, UnknownTableIsIoError) {
  Result<HBaseRow> row = client_->Get("no_such_table", HBaseGet{"u1", "f"});
  ASSERT_FALSE(row.ok());
  EXPECT_EQ(row.status().code(), StatusCode::kIoError) << row.status().ToString();
  EXPECT_NE(row.status().message().find("no_such_table"), std::string::npos);
}

TEST_P(HBaseClientTest, InvalidGetIsRejectedWithoutARequest) {
  Result<HBaseRow> no_versions = client_->Get(kTable, HBaseGet{"u1", "f", 100, 0});
  ASSERT_FALSE(no_versions.ok());
  EXPECT_EQ(no_versions.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(no_versions.status().message().find("max_versions"), std::string::npos);
  Result<std::vector<HBaseRow>> empty_row =
      client_->GetMultiple(kTable, {HBaseGet{"u1", "f"}, HBaseGet{"", "f"}});
  ASSERT_FALSE(empty_row.ok());
  EXPECT_EQ(empty_row.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(empty_row.status().message().find("gets[1].row"), std::string::npos);
  EXPECT_EQ(server_->counts().rows_requested, 0);
}

TEST_P(HBaseClientTest, LatencyBeyondRequestTimeoutIsTimedOut) {
  Load({Cell("u1", "age", "31", 100), Cell("u2", "age", "27", 100)});
  std::unique_ptr<HBaseClient> client = FaultClient();
  ASSERT_NE(client, nullptr);
  server_->SetFaults(HBaseServerFaults{.latency = std::chrono::milliseconds(1500)});
  Result<HBaseRow> slow = client->Get(kTable, HBaseGet{"u1", "f"});
  ASSERT_FALSE(slow.ok());
  EXPECT_EQ(slow.status().code(), StatusCode::kTimedOut) << slow.status().ToString();
  EXPECT_EQ(slow.status().effect(), Effect::kEffectUnknown);

  // The late answer for u1 must not be taken for the next call's answer.
  server_->ClearFaults();
  Result<HBaseRow> next = client->Get(kTable, HBaseGet{"u2", "f"});
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(Describe(*next), (std::vector<std::string>{"f:age=27@100"}));
}

TEST_P(HBaseClientTest, InjectedErrorIsIoErrorAndKeepsTheConnection) {
  Load({Cell("u1", "age", "31", 100)});
  std::unique_ptr<HBaseClient> client = FaultClient();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Get(kTable, HBaseGet{"u1", "f"}).ok());
  const int64_t connections = server_->counts().connections;

  server_->SetFaults(HBaseServerFaults{.error_rate = 1.0});
  Result<std::vector<HBaseRow>> failed = client->GetMultiple(kTable, {HBaseGet{"u1", "f"}});
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kIoError) << failed.status().ToString();
  Status put = client->PutMultiple(kTable, {Cell("u1", "age", "32", 200)});
  EXPECT_EQ(put.code(), StatusCode::kIoError) << put.ToString();
  EXPECT_EQ(put.effect(), Effect::kEffectUnknown);

  server_->ClearFaults();
  Result<HBaseRow> next = client->Get(kTable, HBaseGet{"u1", "f"});
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(Describe(*next), (std::vector<std::string>{"f:age=31@100"}));
  // A TIOError is a complete answer: the same connection served on.
  EXPECT_EQ(server_->counts().connections, connections);
}

TEST_P(HBaseClientTest, DroppedConnectionFailsThenNextCallReconnects) {
  Load({Cell("u1", "age", "31", 100)});
  std::unique_ptr<HBaseClient> client = FaultClient();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Get(kTable, HBaseGet{"u1", "f"}).ok());
  const int64_t connections = server_->counts().connections;

  server_->SetFaults(HBaseServerFaults{.drop_rate = 1.0});
  Result<HBaseRow> dropped = client->Get(kTable, HBaseGet{"u1", "f"});
  ASSERT_FALSE(dropped.ok());
  EXPECT_EQ(dropped.status().code(), StatusCode::kUnavailable) << dropped.status().ToString();
  EXPECT_EQ(dropped.status().effect(), Effect::kEffectUnknown);

  server_->ClearFaults();
  Result<HBaseRow> next = client->Get(kTable, HBaseGet{"u1", "f"});
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(Describe(*next), (std::vector<std::string>{"f:age=31@100"}));
  EXPECT_EQ(server_->counts().connections, connections + 1);
}

TEST_P(HBaseClientTest, StallTimesOutAndStopReleasesStalledRequests) {
  Load({Cell("u1", "age", "31", 100)});
  std::unique_ptr<HBaseClient> client = FaultClient();
  ASSERT_NE(client, nullptr);
  server_->SetFaults(HBaseServerFaults{.stall = true});
  Result<bool> stalled = client->Exists(kTable, HBaseGet{"u1", "f"});
  ASSERT_FALSE(stalled.ok());
  EXPECT_EQ(stalled.status().code(), StatusCode::kTimedOut) << stalled.status().ToString();

  // A patient client's request stays stalled until the server stops.
  HBaseClientOptions patient_options = Options();
  patient_options.request_timeout_ms = 60'000;
  std::unique_ptr<HBaseClient> patient = OpenClient(patient_options);
  ASSERT_NE(patient, nullptr);
  const int64_t gets_before = server_->counts().get;
  Status patient_status;
  std::thread caller([&] { patient_status = patient->Get(kTable, HBaseGet{"u1", "f"}).status(); });
  EXPECT_TRUE(WaitUntil([&] { return server_->counts().get > gets_before; }));
  server_->Stop();
  caller.join();
  EXPECT_EQ(patient_status.code(), StatusCode::kUnavailable) << patient_status.ToString();
}

TEST_P(HBaseClientTest, StoppedServerIsUnavailable) {
  Load({Cell("u1", "age", "31", 100)});
  ASSERT_TRUE(client_->Get(kTable, HBaseGet{"u1", "f"}).ok());  // leaves an idle connection
  server_->Stop();
  Result<HBaseRow> row = client_->Get(kTable, HBaseGet{"u1", "f"});
  ASSERT_FALSE(row.ok());
  EXPECT_EQ(row.status().code(), StatusCode::kUnavailable) << row.status().ToString();
  // The closed idle connection was noticed before sending: nothing was sent.
  EXPECT_EQ(row.status().effect(), Effect::kNoEffect);

  std::unique_ptr<HBaseClient> fresh = OpenClient(Options());
  ASSERT_NE(fresh, nullptr);
  Status put = fresh->PutMultiple(kTable, {Cell("u1", "age", "32", 200)});
  EXPECT_EQ(put.code(), StatusCode::kUnavailable) << put.ToString();
  EXPECT_EQ(put.effect(), Effect::kNoEffect);
}

TEST_P(HBaseClientTest, ConcurrentCallsThroughThePoolAreAllCorrect) {
  constexpr int kThreads = 8;
  constexpr int kCallsPerThread = 200;
  constexpr int kRows = 50;
  std::vector<HBasePut> puts;
  for (int i = 0; i < kRows; ++i) {
    puts.push_back(Cell("r" + std::to_string(i), "v", std::to_string(i * 7), 100));
  }
  Load(puts);
  HBaseClientOptions options = Options();
  options.pool_size = 4;
  std::unique_ptr<HBaseClient> client = OpenClient(options);
  ASSERT_NE(client, nullptr);

  std::atomic<int> correct{0};
  std::vector<std::string> failures(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int call = 0; call < kCallsPerThread; ++call) {
        int i = (t * 31 + call) % kRows;
        std::string row = "r" + std::to_string(i);
        std::string want = std::to_string(i * 7);
        bool ok = false;
        switch (call % 3) {
          case 0: {
            Result<HBaseRow> got = client->Get(kTable, HBaseGet{row, "f"});
            ok = got.ok() && got->row == row && got->cells.size() == 1 &&
                 got->cells[0].value == want;
            if (!got.ok()) failures[t] = got.status().ToString();
            break;
          }
          case 1: {
            std::string other = "r" + std::to_string((i + 1) % kRows);
            Result<std::vector<HBaseRow>> got = client->GetMultiple(
                kTable, {HBaseGet{row, "f"}, HBaseGet{"absent", "f"}, HBaseGet{other, "f"}});
            ok = got.ok() && got->size() == 3 && (*got)[0].row == row &&
                 (*got)[0].cells.size() == 1 && (*got)[0].cells[0].value == want &&
                 (*got)[1].cells.empty() && (*got)[2].row == other && (*got)[2].cells.size() == 1 &&
                 (*got)[2].cells[0].value == std::to_string(((i + 1) % kRows) * 7);
            if (!got.ok()) failures[t] = got.status().ToString();
            break;
          }
          case 2: {
            Result<bool> got = client->Exists(kTable, HBaseGet{row, "f"});
            ok = got.ok() && *got;
            if (!got.ok()) failures[t] = got.status().ToString();
            break;
          }
        }
        if (ok) ++correct;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(correct.load(), kThreads * kCallsPerThread);
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[t], "") << "thread " << t;
  // The fixture's own client opened one connection for Load.
  EXPECT_LE(server_->counts().connections, 1 + options.pool_size);
}

// A client whose protocol or transport differs from the server's gets an
// error within its timeouts (no hang, no crash), and the server keeps
// serving clients that match it.
struct Mismatch {
  Wire client;
  Wire server;
};

void PrintTo(const Mismatch& m, std::ostream* os) {
  PrintTo(m.client, os);
  *os << " client against ";
  PrintTo(m.server, os);
  *os << " server";
}

class HBaseWireMismatchTest : public ::testing::TestWithParam<Mismatch> {};

INSTANTIATE_TEST_SUITE_P(Mismatches, HBaseWireMismatchTest,
                         ::testing::Values(Mismatch{{kBinary, kBuffered}, {kBinary, kFramed}},
                                           Mismatch{{kBinary, kFramed}, {kBinary, kBuffered}},
                                           Mismatch{{kCompact, kFramed}, {kCompact, kBuffered}},
                                           Mismatch{{kBinary, kBuffered}, {kCompact, kBuffered}},
                                           Mismatch{{kCompact, kBuffered}, {kBinary, kBuffered}}),
                         [](const ::testing::TestParamInfo<Mismatch>& info) {
                           return info.param.client.Name() + "_against_" + info.param.server.Name();
                         });

TEST_P(HBaseWireMismatchTest, FailsWithoutHangingAndServerServesOn) {
  std::unique_ptr<TestHBaseServer> server = StartServer(GetParam().server);
  ASSERT_NE(server, nullptr);
  HBaseClientOptions options = ClientOptions(GetParam().client, server->port());
  options.request_timeout_ms = 500;
  std::unique_ptr<HBaseClient> wrong = OpenClient(options);
  ASSERT_NE(wrong, nullptr);
  Result<HBaseRow> row = wrong->Get(kTable, HBaseGet{"u1", "f"});
  EXPECT_FALSE(row.ok());

  std::unique_ptr<HBaseClient> right = OpenClient(ClientOptions(GetParam().server, server->port()));
  ASSERT_NE(right, nullptr);
  Status put = right->PutMultiple(kTable, {Cell("u1", "age", "31", 100)});
  EXPECT_TRUE(put.ok()) << put.ToString();
}

// HBaseThriftStatus, case by case.
struct MappingCase {
  std::string name;
  std::exception_ptr error;
  StatusCode code;
  Effect effect;
};

std::vector<MappingCase> MappingCases() {
  using apache::thrift::TApplicationException;
  using apache::thrift::protocol::TProtocolException;
  using apache::thrift::transport::TTransportException;
  hbase::TIOError io_error;
  io_error.__set_message("region offline");
  hbase::TIllegalArgument illegal;
  illegal.__set_message("bad scanner id");
  auto transport = [](TTransportException::TTransportExceptionType type) {
    return std::make_exception_ptr(TTransportException(type, "transport detail"));
  };
  auto protocol = [](TProtocolException::TProtocolExceptionType type) {
    return std::make_exception_ptr(TProtocolException(type, "protocol detail"));
  };
  auto application = [](TApplicationException::TApplicationExceptionType type) {
    return std::make_exception_ptr(TApplicationException(type, "application detail"));
  };
  const Effect none = Effect::kNoEffect;
  const Effect unknown = Effect::kEffectUnknown;
  return {
      {"TIOError", std::make_exception_ptr(io_error), StatusCode::kIoError, unknown},
      {"TIllegalArgument", std::make_exception_ptr(illegal), StatusCode::kInvalidArgument, none},
      {"transport UNKNOWN", transport(TTransportException::UNKNOWN), StatusCode::kIoError, unknown},
      {"transport NOT_OPEN", transport(TTransportException::NOT_OPEN), StatusCode::kUnavailable,
       none},
      {"transport TIMED_OUT", transport(TTransportException::TIMED_OUT), StatusCode::kTimedOut,
       unknown},
      {"transport END_OF_FILE", transport(TTransportException::END_OF_FILE),
       StatusCode::kUnavailable, unknown},
      {"transport INTERRUPTED", transport(TTransportException::INTERRUPTED),
       StatusCode::kUnavailable, unknown},
      {"transport BAD_ARGS", transport(TTransportException::BAD_ARGS), StatusCode::kInvalidArgument,
       none},
      {"transport CORRUPTED_DATA", transport(TTransportException::CORRUPTED_DATA),
       StatusCode::kInternal, unknown},
      {"transport INTERNAL_ERROR", transport(TTransportException::INTERNAL_ERROR),
       StatusCode::kInternal, unknown},
      {"transport CLIENT_DISCONNECT", transport(TTransportException::CLIENT_DISCONNECT),
       StatusCode::kUnavailable, unknown},
      {"protocol UNKNOWN", protocol(TProtocolException::UNKNOWN), StatusCode::kInternal, unknown},
      {"protocol INVALID_DATA", protocol(TProtocolException::INVALID_DATA), StatusCode::kInternal,
       unknown},
      {"protocol NEGATIVE_SIZE", protocol(TProtocolException::NEGATIVE_SIZE), StatusCode::kInternal,
       unknown},
      {"protocol SIZE_LIMIT", protocol(TProtocolException::SIZE_LIMIT), StatusCode::kInternal,
       unknown},
      {"protocol BAD_VERSION", protocol(TProtocolException::BAD_VERSION), StatusCode::kInternal,
       unknown},
      {"protocol NOT_IMPLEMENTED", protocol(TProtocolException::NOT_IMPLEMENTED),
       StatusCode::kInternal, unknown},
      {"protocol DEPTH_LIMIT", protocol(TProtocolException::DEPTH_LIMIT), StatusCode::kInternal,
       unknown},
      {"application UNKNOWN", application(TApplicationException::UNKNOWN), StatusCode::kInternal,
       unknown},
      {"application UNKNOWN_METHOD", application(TApplicationException::UNKNOWN_METHOD),
       StatusCode::kInternal, none},
      {"application INVALID_MESSAGE_TYPE", application(TApplicationException::INVALID_MESSAGE_TYPE),
       StatusCode::kInternal, none},
      {"application WRONG_METHOD_NAME", application(TApplicationException::WRONG_METHOD_NAME),
       StatusCode::kInternal, unknown},
      {"application BAD_SEQUENCE_ID", application(TApplicationException::BAD_SEQUENCE_ID),
       StatusCode::kInternal, unknown},
      {"application MISSING_RESULT", application(TApplicationException::MISSING_RESULT),
       StatusCode::kInternal, unknown},
      {"application INTERNAL_ERROR", application(TApplicationException::INTERNAL_ERROR),
       StatusCode::kInternal, unknown},
      {"application PROTOCOL_ERROR", application(TApplicationException::PROTOCOL_ERROR),
       StatusCode::kInternal, none},
      {"application INVALID_TRANSFORM", application(TApplicationException::INVALID_TRANSFORM),
       StatusCode::kInternal, none},
      {"application INVALID_PROTOCOL", application(TApplicationException::INVALID_PROTOCOL),
       StatusCode::kInternal, none},
      {"application UNSUPPORTED_CLIENT_TYPE",
       application(TApplicationException::UNSUPPORTED_CLIENT_TYPE), StatusCode::kInternal, none},
      {"std::exception", std::make_exception_ptr(std::runtime_error("boom")), StatusCode::kInternal,
       unknown},
      {"not an exception class", std::make_exception_ptr(42), StatusCode::kInternal, unknown},
      {"no exception", nullptr, StatusCode::kInternal, unknown},
  };
}

TEST(HBaseThriftStatusTest, MapsEveryKindWithItsEffect) {
  for (const MappingCase& c : MappingCases()) {
    Status status = HBaseThriftStatus(c.error, "HBase get on 't'");
    EXPECT_EQ(status.code(), c.code) << c.name << ": " << status.ToString();
    EXPECT_EQ(status.effect(), c.effect) << c.name << ": " << status.ToString();
    EXPECT_EQ(status.message().rfind("HBase get on 't'", 0), 0u) << c.name;
  }
}

TEST(HBaseThriftStatusTest, CarriesTheServersMessage) {
  hbase::TIOError io_error;
  io_error.__set_message("region offline");
  Status status = HBaseThriftStatus(std::make_exception_ptr(io_error), "ctx");
  EXPECT_NE(status.message().find("region offline"), std::string::npos) << status.ToString();
}

TEST(HBaseClientOptionsTest, DefaultsAreValid) {
  EXPECT_TRUE(HBaseClientOptions{}.Validate("lookups.user.hbase").ok());
}

TEST(HBaseClientOptionsTest, NamesTheBadField) {
  struct Case {
    std::function<void(HBaseClientOptions&)> spoil;
    std::string message;
  };
  const std::string p = "lookups.user.hbase";
  std::vector<Case> cases = {
      {[](auto& o) { o.host = ""; }, p + ".host: must not be empty"},
      {[](auto& o) { o.port = 0; }, p + ".port: must be in [1, 65535], got 0"},
      {[](auto& o) { o.connect_timeout_ms = 0; },
       p + ".connect_timeout_ms: must be positive, got 0"},
      {[](auto& o) { o.request_timeout_ms = -1; },
       p + ".request_timeout_ms: must be positive, got -1"},
      {[](auto& o) { o.pool_size = 0; }, p + ".pool_size: must be positive, got 0"},
  };
  for (const Case& c : cases) {
    HBaseClientOptions options;
    c.spoil(options);
    Status status = options.Validate(p);
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << c.message;
    EXPECT_EQ(status.message(), c.message);
    EXPECT_FALSE(HBaseClient::Open(options).ok()) << c.message;
  }
}

}  // namespace
}  // namespace ctrjoin
