// The lookup service against the test HBase Thrift2 server with faults: a
// failing server (errors, dropped connections), a slow one (answers after the
// request timeout), a stalled one, and a dead one — with the default (hold
// and retry: backpressure) and with emit_partial (give up after the deadline);
// the circuit breaker's call rate during an outage; and the start-up probe
// (MakeEnrichment): a missing table or family, a wire mismatch, a dead
// server, and a family that keeps fewer versions than max_versions.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <future>

#include "joins/hbase_client.h"
#include "joins/hbase_feature_store.h"
#include "joins/lookup_service.h"
#include "src/app/app.h"
#include "src/core/clock.h"
#include "tests/support/enrich.h"
#include "tests/support/hbase_server.h"

namespace ctrjoin {
namespace {

using namespace std::chrono_literals;

class LookupHBaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::move(test_support::TestHBaseServer::Start({})).value();
    client_options_.port = server_->port();
    client_options_.request_timeout_ms = 200;
    auto loader = std::move(HBaseClient::Open(client_options_)).value();
    std::vector<HBasePut> puts;
    for (int u = 0; u < 100; ++u) {
      puts.push_back({"u" + std::to_string(u), "f", "id", std::to_string(u), 1});
    }
    ASSERT_TRUE(loader->PutMultiple("user_features", puts).ok());
    store_ = std::move(HBaseFeatureStore::Open(client_options_)).value();
  }

  void StartService(LookupServiceOptions options) {
    options.retry_initial_ms = 5;
    options.retry_max_ms = 50;
    LookupSpec spec{"user", "user_features", "f", LookupKey::kUserId, 1, {}};
    // A short TTL: every round goes back to the server.
    spec.cache.expire_after_write_ms = 1;
    spec.cache.negative_ttl_ms = 1;
    service_ = std::make_unique<LookupService>(options, std::vector<LookupSpec>{spec}, store_.get(),
                                               &metrics_);
  }

  std::future<Status> Enrich(std::vector<Impression>& imps) {
    return test_support::EnrichAsync(*service_, imps);
  }

  static std::vector<Impression> Batch(int n) {
    std::vector<Impression> imps(n);
    const int64_t now = WallClockMs();
    for (int i = 0; i < n; ++i) {
      imps[i].user_id = "u" + std::to_string(i % 100);
      imps[i].ts = EventTime{now};
    }
    return imps;
  }

  static void ExpectOwnFeatures(const std::vector<Impression>& imps) {
    for (const Impression& imp : imps) {
      ASSERT_EQ(imp.lookup_features.size(), 1u) << imp.user_id;
      EXPECT_EQ("u" + std::to_string(std::get<int64_t>(imp.lookup_features[0].value)), imp.user_id);
      EXPECT_FALSE(imp.features_partial);
    }
  }

  HBaseClientOptions client_options_;
  std::unique_ptr<test_support::TestHBaseServer> server_;
  std::unique_ptr<HBaseFeatureStore> store_;
  LookupMetrics metrics_;
  std::unique_ptr<LookupService> service_;
};

TEST_F(LookupHBaseTest, FailingServerIsRetriedUntilEveryLookupSucceeds) {
  StartService({});
  test_support::HBaseServerFaults faults;
  faults.error_rate = 0.3;
  faults.drop_rate = 0.2;
  server_->SetFaults(faults);
  for (int round = 0; round < 5; ++round) {
    auto imps = Batch(300);
    auto done = Enrich(imps);
    ASSERT_EQ(done.wait_for(30s), std::future_status::ready);
    ASSERT_TRUE(done.get().ok());
    ExpectOwnFeatures(imps);
  }
  EXPECT_GT(metrics_.Sum(&LookupCounters::retries), 0u);
  EXPECT_GT(metrics_.Sum(&LookupCounters::errors), 0u);
}

TEST_F(LookupHBaseTest, SlowServerPastTheTimeoutHoldsTheBatchUntilItIsFastAgain) {
  StartService({});
  test_support::HBaseServerFaults slow;
  slow.latency = 400ms;  // beyond the 200 ms request timeout
  server_->SetFaults(slow);
  auto imps = Batch(50);
  auto done = Enrich(imps);
  EXPECT_EQ(done.wait_for(1s), std::future_status::timeout) << "held: backpressure";
  server_->ClearFaults();
  ASSERT_EQ(done.wait_for(30s), std::future_status::ready);
  ASSERT_TRUE(done.get().ok());
  ExpectOwnFeatures(imps);
  EXPECT_GT(metrics_.Sum(&LookupCounters::retries), 0u);
}

TEST_F(LookupHBaseTest, StalledServerRecovers) {
  StartService({});
  test_support::HBaseServerFaults stall;
  stall.stall = true;
  server_->SetFaults(stall);
  auto imps = Batch(20);
  auto done = Enrich(imps);
  EXPECT_EQ(done.wait_for(700ms), std::future_status::timeout);
  server_->ClearFaults();
  ASSERT_EQ(done.wait_for(30s), std::future_status::ready);
  ASSERT_TRUE(done.get().ok());
  ExpectOwnFeatures(imps);
}

TEST_F(LookupHBaseTest, DeadServerHoldsByDefaultAndCancelReleases) {
  StartService({});
  server_->Stop();
  auto imps = Batch(10);
  auto done = Enrich(imps);
  EXPECT_EQ(done.wait_for(1s), std::future_status::timeout);
  EXPECT_GT(metrics_.Sum(&LookupCounters::retries), 3u);
  service_->Cancel();
  ASSERT_EQ(done.wait_for(5s), std::future_status::ready);
  EXPECT_FALSE(done.get().ok());
}

TEST_F(LookupHBaseTest, DeadServerWithEmitPartialGivesUpAfterTheDeadline) {
  LookupServiceOptions options;
  options.emit_partial = true;
  options.deadline_ms = 300;
  StartService(options);
  server_->Stop();
  auto imps = Batch(10);
  auto done = Enrich(imps);
  ASSERT_EQ(done.wait_for(10s), std::future_status::ready);
  ASSERT_TRUE(done.get().ok());
  for (const Impression& imp : imps) {
    EXPECT_TRUE(imp.features_partial);
    EXPECT_TRUE(imp.lookup_features.empty());
  }
  EXPECT_GE(metrics_.Sum(&LookupCounters::partial), 10u);
}

TEST_F(LookupHBaseTest, AnOpenBreakerCallsTheDeadStoreOncePerBackoffNotOncePerRow) {
  LookupServiceOptions options;
  options.max_batch = 4;
  options.max_batch_delay_us = 0;
  StartService(options);  // retries back off from 5 to 50 ms
  test_support::HBaseServerFaults down;
  down.error_rate = 1.0;
  server_->SetFaults(down);
  auto imps = Batch(100);  // 100 rows: 25 batches
  auto done = Enrich(imps);
  std::this_thread::sleep_for(1s);
  const int64_t calls = server_->counts().get_multiple;
  // Each batch on its own backoff would call about 25 x 1000 / 50 = 500
  // times a second; the breaker calls about once per backoff (10..75 ms,
  // after the 3 failures that open it).
  EXPECT_LE(calls, 60) << "store calls in 1 s of outage";
  EXPECT_GE(metrics_.breaker_openings.Get(), 2u);
  EXPECT_NE(metrics_.breaker_state.Get(), static_cast<int64_t>(BreakerState::kClosed));
  server_->ClearFaults();
  ASSERT_EQ(done.wait_for(30s), std::future_status::ready);
  ASSERT_TRUE(done.get().ok());
  ExpectOwnFeatures(imps);
  EXPECT_EQ(metrics_.breaker_state.Get(), static_cast<int64_t>(BreakerState::kClosed));
}

// MakeEnrichment's start-up probe, against servers configured in the test.
class StartUpProbeTest : public ::testing::Test {
 protected:
  static Config HBaseConfig(int port, LookupSpec spec) {
    Config config;
    config.feature_store.type = FeatureStoreType::kHBase;
    config.feature_store.hbase.port = port;
    config.feature_store.hbase.request_timeout_ms = 300;
    config.lookups = {std::move(spec)};
    config.lookup.retry_initial_ms = 5;
    config.lookup.retry_max_ms = 50;
    return config;
  }
  static LookupSpec Spec(const std::string& table, const std::string& family = "f",
                         int max_versions = 3) {
    LookupSpec spec{"user", table, family, LookupKey::kUserId, max_versions, {}};
    return spec;
  }
  Metrics metrics_;
};

TEST_F(StartUpProbeTest, AMissingTableOrFamilyIsRefusedNamingItsKey) {
  for (bool descriptors : {true, false}) {
    SCOPED_TRACE(descriptors ? "server with getTableDescriptor" : "HBase 1.x server");
    test_support::TestHBaseServerOptions options;
    options.offer_descriptors = descriptors;
    auto server = std::move(test_support::TestHBaseServer::Start(options)).value();
    ASSERT_TRUE(server->CreateTable("user_features", {{"f", 3}}).ok());

    auto missing_table =
        MakeEnrichment(HBaseConfig(server->port(), Spec("usr_features")), metrics_);
    ASSERT_FALSE(missing_table.ok());
    EXPECT_EQ(missing_table.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(missing_table.status().message().find("lookups[0].table: table 'usr_features' does "
                                                    "not exist"),
              std::string::npos)
        << missing_table.status().ToString();

    auto missing_family =
        MakeEnrichment(HBaseConfig(server->port(), Spec("user_features", "g")), metrics_);
    ASSERT_FALSE(missing_family.ok());
    EXPECT_EQ(missing_family.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(missing_family.status().message().find("lookups[0].family: table 'user_features'"),
              std::string::npos)
        << missing_family.status().ToString();

    EXPECT_TRUE(MakeEnrichment(HBaseConfig(server->port(), Spec("user_features")), metrics_).ok());
  }
}

TEST_F(StartUpProbeTest, AProtocolOrTransportMismatchIsRefusedNamingTheKeys) {
  using enum HBaseProtocol;
  using enum HBaseTransport;
  struct Wire {
    HBaseProtocol protocol;
    HBaseTransport transport;
  };
  const std::pair<Wire, Wire> mismatches[] = {
      {{kBinary, kBuffered}, {kBinary, kFramed}},    {{kBinary, kFramed}, {kBinary, kBuffered}},
      {{kCompact, kFramed}, {kCompact, kBuffered}},  {{kBinary, kBuffered}, {kCompact, kBuffered}},
      {{kCompact, kBuffered}, {kBinary, kBuffered}},
  };
  for (const auto& [client, server_wire] : mismatches) {
    SCOPED_TRACE(fmt::format("client {} {}, server {} {}", NameOf(client.protocol),
                             NameOf(client.transport), NameOf(server_wire.protocol),
                             NameOf(server_wire.transport)));
    test_support::TestHBaseServerOptions options;
    options.protocol = server_wire.protocol;
    options.transport = server_wire.transport;
    auto server = std::move(test_support::TestHBaseServer::Start(options)).value();
    Config config = HBaseConfig(server->port(), Spec("user_features"));
    config.feature_store.hbase.protocol = client.protocol;
    config.feature_store.hbase.transport = client.transport;
    auto enrichment = MakeEnrichment(config, metrics_);
    ASSERT_FALSE(enrichment.ok());
    EXPECT_EQ(enrichment.status().code(), StatusCode::kInvalidArgument)
        << enrichment.status().ToString();
    EXPECT_NE(enrichment.status().message().find("feature_store.hbase.protocol"), std::string::npos)
        << enrichment.status().ToString();
  }
}

TEST_F(StartUpProbeTest, ADeadServerIsAnOutageStartUpWaitsFor) {
  auto server = std::move(test_support::TestHBaseServer::Start({})).value();
  const int port = server->port();
  server->Stop();
  auto enrichment = MakeEnrichment(HBaseConfig(port, Spec("user_features")), metrics_);
  ASSERT_FALSE(enrichment.ok());
  EXPECT_EQ(enrichment.status().code(), StatusCode::kUnavailable) << enrichment.status().ToString();
}

// HBase keeps VERSIONS versions per column (default 1). A live read then
// returns one version, which must not be taken for the column's whole
// history: an older impression still finds the older version a time-range
// read returns.
TEST_F(StartUpProbeTest, AFamilyKeepingFewerVersionsIsReadWithItsCountOrRefused) {
  auto server = std::move(test_support::TestHBaseServer::Start({})).value();
  ASSERT_TRUE(server->CreateTable("user_features", {{"f", 1}}).ok());
  HBaseClientOptions client_options;
  client_options.port = server->port();
  auto loader = std::move(HBaseClient::Open(client_options)).value();
  ASSERT_TRUE(loader
                  ->PutMultiple("user_features",
                                {{"u1", "f", "age", "30", 100}, {"u1", "f", "age", "31", 200}})
                  .ok());

  Config config = HBaseConfig(server->port(), Spec("user_features", "f", 3));
  config.feature_store.versions_check = VersionsCheck::kRefuse;
  auto refused = MakeEnrichment(config, metrics_);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("lookups[0].max_versions is 3 but family 'f' of "
                                            "table 'user_features' keeps 1 version(s)"),
            std::string::npos)
      << refused.status().ToString();

  config.feature_store.versions_check = VersionsCheck::kWarn;
  auto enrichment = MakeEnrichment(config, metrics_);
  ASSERT_TRUE(enrichment.ok()) << enrichment.status().ToString();
  std::vector<Impression> live(1), old(1);
  live[0].user_id = old[0].user_id = "u1";
  live[0].ts = EventTime{WallClockMs()};
  old[0].ts = EventTime{150};
  ASSERT_TRUE(test_support::EnrichAsync(*enrichment->service, live).get().ok());
  ASSERT_TRUE(test_support::EnrichAsync(*enrichment->service, old).get().ok());
  ASSERT_EQ(live[0].lookup_features.size(), 1u);
  EXPECT_EQ(std::get<int64_t>(live[0].lookup_features[0].value), 31);
  ASSERT_EQ(old[0].lookup_features.size(), 1u) << "the version of ts 100 exists in the store";
  EXPECT_EQ(std::get<int64_t>(old[0].lookup_features[0].value), 30);
}

}  // namespace
}  // namespace ctrjoin
