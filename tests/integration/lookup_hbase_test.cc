// The lookup service against the test HBase Thrift2 server with faults: a
// failing server (errors, dropped connections), a slow one (answers after the
// request timeout), a stalled one, and a dead one — with the default (hold
// and retry: backpressure) and with emit_partial (give up after the deadline).
#include <gtest/gtest.h>

#include <chrono>
#include <future>

#include "joins/hbase_client.h"
#include "joins/hbase_feature_store.h"
#include "joins/lookup_service.h"
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
  EXPECT_GT(metrics_.retries.Get(), 0u);
  EXPECT_GT(metrics_.errors.Get(), 0u);
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
  EXPECT_GT(metrics_.retries.Get(), 0u);
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
  EXPECT_GT(metrics_.retries.Get(), 3u);
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
  EXPECT_GE(metrics_.partial.Get(), 10u);
}

}  // namespace
}  // namespace ctrjoin
