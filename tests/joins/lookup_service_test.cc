// LookupService against an in-memory FeatureStore with fault injection:
// point-in-time values, coalescing and batching (request counts), cache hits,
// retries, back-pressure while the store is down, emit_partial, cancel, and
// completions landing on the right impression under concurrency.
#include "joins/lookup_service.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <map>
#include <thread>

#include "src/core/clock.h"
#include "tests/support/enrich.h"

namespace ctrjoin {
namespace {

using namespace std::chrono_literals;

// Rows per table: row -> cells; versions newest first is done by the service.
class FakeStore : public FeatureStore {
 public:
  void Put(const std::string& table, const std::string& row, const std::string& column,
           int64_t version, const std::string& value) {
    std::lock_guard<std::mutex> lock(mu_);
    data_[table][row].push_back(FeatureCell{column, value, version});
  }

  Result<std::vector<FetchedRow>> GetMultiple(const std::string& table, const std::string&,
                                              std::span<const FeatureFetch> fetches,
                                              int max_versions) override {
    {
      std::unique_lock<std::mutex> lock(mu_);
      ++calls_;
      rows_ += fetches.size();
      max_rows_per_call_ = std::max(max_rows_per_call_, fetches.size());
      gate_cv_.wait(lock, [&] { return gate_open_; });
      if (fail_always_ || failures_left_ > 0) {
        if (failures_left_ > 0) --failures_left_;
        return Status::Unavailable("injected failure");
      }
    }
    std::vector<FetchedRow> out(fetches.size());
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < fetches.size(); ++i) {
      std::map<std::string, std::vector<FeatureCell>> by_column;
      for (const FeatureCell& c : data_[table][fetches[i].row]) {
        if (c.version < fetches[i].upper_exclusive) by_column[c.column].push_back(c);
      }
      for (auto& [column, cells] : by_column) {
        std::sort(cells.begin(), cells.end(),
                  [](const auto& a, const auto& b) { return a.version > b.version; });
        cells.resize(std::min<size_t>(cells.size(), max_versions));
        out[i].cells.insert(out[i].cells.end(), cells.begin(), cells.end());
      }
    }
    return out;
  }
  std::string Describe() const override { return "fake"; }

  void SetGate(bool open) {
    std::lock_guard<std::mutex> lock(mu_);
    gate_open_ = open;
    gate_cv_.notify_all();
  }
  void FailNext(int n) {
    std::lock_guard<std::mutex> lock(mu_);
    failures_left_ = n;
  }
  void FailAlways(bool on) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_always_ = on;
  }
  size_t calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  size_t rows() {
    std::lock_guard<std::mutex> lock(mu_);
    return rows_;
  }
  size_t max_rows_per_call() {
    std::lock_guard<std::mutex> lock(mu_);
    return max_rows_per_call_;
  }

 private:
  std::mutex mu_;
  std::condition_variable gate_cv_;
  std::map<std::string, std::map<std::string, std::vector<FeatureCell>>> data_;
  bool gate_open_ = true;
  bool fail_always_ = false;
  int failures_left_ = 0;
  size_t calls_ = 0, rows_ = 0, max_rows_per_call_ = 0;
};

class LookupServiceTest : public ::testing::Test {
 protected:
  void Start(LookupServiceOptions options = {},
             std::map<std::string, std::string> user_columns = {}) {
    options.retry_initial_ms = 1;
    options.retry_max_ms = 20;
    LookupSpec user{"user", "user_features", "f", LookupKey::kUserId, 2, {}, user_columns};
    LookupSpec item{"item", "item_features", "f", LookupKey::kItemId, 2, {}};
    service_ = std::make_unique<LookupService>(options, std::vector<LookupSpec>{user, item},
                                               &store_, &metrics_);
  }

  static Impression Imp(const std::string& user, const std::string& item, int64_t ts) {
    Impression imp;
    imp.impression_id = user + "@" + std::to_string(ts);
    imp.user_id = user;
    imp.item_id = item;
    imp.ts = EventTime{ts};
    return imp;
  }

  // Starts enrichment; the future resolves when done is called.
  std::future<Status> Enrich(std::vector<Impression>& imps) {
    return test_support::EnrichAsync(*service_, imps);
  }

  static const FeatureValue* Find(const Impression& imp, const std::string& name) {
    for (const Feature& f : imp.lookup_features) {
      if (f.name == name) return &f.value;
    }
    return nullptr;
  }

  FakeStore store_;
  LookupMetrics metrics_;
  std::unique_ptr<LookupService> service_;
};

TEST_F(LookupServiceTest, PointInTimeNeverUsesALaterVersion) {
  store_.Put("user_features", "u1", "age", 100, "30");
  store_.Put("user_features", "u1", "age", 200, "31");
  store_.Put("user_features", "u1", "age", 300, "32");  // written after the impression
  store_.Put("item_features", "i1", "price", 50, "9.5");
  Start();
  std::vector<Impression> imps{Imp("u1", "i1", 250), Imp("u1", "i1", 150), Imp("u1", "i1", 99)};
  auto done = Enrich(imps);
  ASSERT_EQ(done.wait_for(10s), std::future_status::ready);
  ASSERT_TRUE(done.get().ok());
  EXPECT_EQ(std::get<int64_t>(*Find(imps[0], "user.age")), 31);
  EXPECT_EQ(std::get<int64_t>(*Find(imps[1], "user.age")), 30);
  EXPECT_EQ(Find(imps[2], "user.age"), nullptr) << "no version <= 99";
  EXPECT_EQ(std::get<double>(*Find(imps[0], "item.price")), 9.5);
  EXPECT_EQ(std::get<double>(*Find(imps[2], "item.price")), 9.5);
  EXPECT_FALSE(imps[0].features_partial);
}

TEST_F(LookupServiceTest, ConcurrentMissesForOneRowAreCoalesced) {
  store_.Put("user_features", "hot", "age", 1, "40");
  Start();
  store_.SetGate(false);  // hold the first request in flight
  const int64_t now = WallClockMs();
  std::vector<Impression> imps;
  for (int i = 0; i < 100; ++i) imps.push_back(Imp("hot", "i", now - i));
  auto done = Enrich(imps);
  std::this_thread::sleep_for(50ms);
  store_.SetGate(true);
  ASSERT_EQ(done.wait_for(10s), std::future_status::ready);
  ASSERT_TRUE(done.get().ok());
  for (const Impression& imp : imps) EXPECT_EQ(std::get<int64_t>(*Find(imp, "user.age")), 40);
  // One row for "hot" and one for "i" (item): 100 misses each, coalesced.
  EXPECT_EQ(store_.rows(), 2u);
  EXPECT_EQ(metrics_.Sum(&LookupCounters::requests), 2u);
  EXPECT_EQ(metrics_.Sum(&LookupCounters::coalesced), 198u);
}

TEST_F(LookupServiceTest, MissesAreBatchedIntoGetMultiple) {
  LookupServiceOptions o;
  o.max_batch = 64;
  o.max_batch_delay_us = 20'000;
  o.io_threads = 2;
  Start(o);
  const int64_t now = WallClockMs();
  std::vector<Impression> imps;
  for (int i = 0; i < 256; ++i) imps.push_back(Imp("u" + std::to_string(i), "same-item", now));
  auto done = Enrich(imps);
  ASSERT_EQ(done.wait_for(10s), std::future_status::ready);
  ASSERT_TRUE(done.get().ok());
  EXPECT_EQ(store_.rows(), 257u);
  EXPECT_LE(store_.max_rows_per_call(), 64u);
  EXPECT_LE(store_.calls(), 6u) << "256 users in batches of 64, plus the item";
}

TEST_F(LookupServiceTest, SecondLookupOfALiveRowIsACacheHit) {
  store_.Put("user_features", "u1", "age", 1, "40");
  Start();
  const int64_t now = WallClockMs();
  std::vector<Impression> first{Imp("u1", "i1", now)};
  ASSERT_TRUE(Enrich(first).get().ok());
  const size_t calls = store_.calls();
  std::vector<Impression> second{Imp("u1", "i1", now + 10)};
  ASSERT_TRUE(Enrich(second).get().ok());
  EXPECT_EQ(store_.calls(), calls);
  EXPECT_EQ(std::get<int64_t>(*Find(second[0], "user.age")), 40);
  EXPECT_EQ(metrics_.Sum(&LookupCounters::cache_hits), 2u);
}

TEST_F(LookupServiceTest, RetriesUntilTheStoreAnswers) {
  store_.Put("user_features", "u1", "age", 1, "40");
  Start();
  store_.FailNext(3);
  std::vector<Impression> imps{Imp("u1", "i1", WallClockMs())};
  auto done = Enrich(imps);
  ASSERT_EQ(done.wait_for(10s), std::future_status::ready);
  ASSERT_TRUE(done.get().ok());
  EXPECT_EQ(std::get<int64_t>(*Find(imps[0], "user.age")), 40);
  EXPECT_GE(metrics_.Sum(&LookupCounters::retries), 3u);
  EXPECT_FALSE(imps[0].features_partial);
}

TEST_F(LookupServiceTest, StoreDownHoldsTheBatchByDefault) {
  store_.Put("user_features", "u1", "age", 1, "40");
  LookupServiceOptions o;
  o.deadline_ms = 50;  // only matters with emit_partial
  Start(o);
  store_.FailAlways(true);
  std::vector<Impression> imps{Imp("u1", "i1", WallClockMs())};
  auto done = Enrich(imps);
  EXPECT_EQ(done.wait_for(300ms), std::future_status::timeout)
      << "no sample may go out with silently missing features";
  store_.FailAlways(false);
  ASSERT_EQ(done.wait_for(10s), std::future_status::ready);
  ASSERT_TRUE(done.get().ok());
  EXPECT_EQ(std::get<int64_t>(*Find(imps[0], "user.age")), 40);
  EXPECT_GT(metrics_.Sum(&LookupCounters::retries), 2u);
}

TEST_F(LookupServiceTest, EmitPartialGivesUpAfterTheDeadline) {
  LookupServiceOptions o;
  o.emit_partial = true;
  o.deadline_ms = 100;
  Start(o);
  store_.FailAlways(true);
  std::vector<Impression> imps{Imp("u1", "i1", WallClockMs())};
  auto done = Enrich(imps);
  ASSERT_EQ(done.wait_for(10s), std::future_status::ready);
  ASSERT_TRUE(done.get().ok());
  EXPECT_TRUE(imps[0].features_partial);
  EXPECT_TRUE(imps[0].lookup_features.empty());
  EXPECT_EQ(metrics_.Sum(&LookupCounters::partial), 2u);
}

// While the breaker holds the batches back, waiting lookups still give up at
// their deadline, not when their batch is finally sent.
TEST_F(LookupServiceTest, EmitPartialGivesUpHeldBackLookupsAtTheirDeadline) {
  LookupServiceOptions o;
  o.emit_partial = true;
  o.deadline_ms = 200;
  o.max_batch = 2;
  o.max_batch_delay_us = 0;
  o.io_threads = 1;
  o.retry_initial_ms = 200;
  o.retry_max_ms = 400;
  LookupSpec user{"user", "user_features", "f", LookupKey::kUserId, 2, {}};
  service_ = std::make_unique<LookupService>(o, std::vector<LookupSpec>{user}, &store_, &metrics_);
  store_.FailAlways(true);
  std::vector<Impression> imps;
  for (int i = 0; i < 200; ++i) imps.push_back(Imp("u" + std::to_string(i), "i", WallClockMs()));
  auto done = Enrich(imps);
  // Sent two rows per probe, one probe per 200..400 ms, they would take
  // 100 probes: 20 s or more.
  ASSERT_EQ(done.wait_for(5s), std::future_status::ready);
  ASSERT_TRUE(done.get().ok());
  for (const Impression& imp : imps) EXPECT_TRUE(imp.features_partial) << imp.user_id;
  EXPECT_EQ(metrics_.Sum(&LookupCounters::partial), 200u);
  EXPECT_LE(store_.calls(), 10u);
}

// A feature pipeline that lands late: with as_of_offset_ms, a version is
// used only from its timestamp plus the offset.
TEST_F(LookupServiceTest, AsOfOffsetReadsFeaturesAsOfTsMinusTheOffset) {
  store_.Put("user_features", "u1", "age", 100, "30");
  store_.Put("user_features", "u1", "age", 200, "31");
  LookupSpec user{"user", "user_features", "f", LookupKey::kUserId, 2, {}};
  user.as_of_offset_ms = 60;
  service_ = std::make_unique<LookupService>(LookupServiceOptions{}, std::vector<LookupSpec>{user},
                                             &store_, &metrics_);
  std::vector<Impression> imps{Imp("u1", "i", 259), Imp("u1", "i", 260), Imp("u1", "i", 159)};
  auto done = Enrich(imps);
  ASSERT_EQ(done.wait_for(10s), std::future_status::ready);
  ASSERT_TRUE(done.get().ok());
  EXPECT_EQ(std::get<int64_t>(*Find(imps[0], "user.age")), 30) << "as of 199";
  EXPECT_EQ(std::get<int64_t>(*Find(imps[1], "user.age")), 31) << "as of 200";
  EXPECT_EQ(Find(imps[2], "user.age"), nullptr) << "as of 99: no version yet";
}

TEST_F(LookupServiceTest, CancelCompletesPendingLookupsWithAnError) {
  Start();
  store_.FailAlways(true);
  std::vector<Impression> imps{Imp("u1", "i1", WallClockMs())};
  auto done = Enrich(imps);
  EXPECT_EQ(done.wait_for(100ms), std::future_status::timeout);
  service_->Cancel();
  ASSERT_EQ(done.wait_for(5s), std::future_status::ready);
  EXPECT_FALSE(done.get().ok());
}

TEST_F(LookupServiceTest, CompletionsLandOnTheirOwnImpressionUnderConcurrency) {
  for (int u = 0; u < 50; ++u) {
    store_.Put("user_features", "u" + std::to_string(u), "id", 1, std::to_string(u));
  }
  LookupServiceOptions o;
  o.io_threads = 4;
  o.max_batch = 7;
  Start(o);
  const int64_t now = WallClockMs();
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0}, checked{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round) {
        std::vector<Impression> imps;
        for (int i = 0; i < 30; ++i) {
          imps.push_back(Imp("u" + std::to_string((t * 7 + round * 3 + i) % 50), "i", now - i));
        }
        ASSERT_TRUE(Enrich(imps).get().ok());
        for (const Impression& imp : imps) {
          const FeatureValue* id = Find(imp, "user.id");
          ++checked;
          if (id == nullptr ||
              "u" + std::to_string(static_cast<int>(std::get<int64_t>(*id))) != imp.user_id) {
            ++wrong;
          }
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(checked.load(), 8 * 20 * 30);
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(LookupServiceTest, LiveFetchWithCutHistoryFallsBackToAnExactFetch) {
  const int64_t now = WallClockMs();
  // Three versions, max_versions 2: a live fetch sees the two newest only.
  store_.Put("user_features", "u1", "age", now - 30'000, "30");
  store_.Put("user_features", "u1", "age", now - 20'000, "31");
  store_.Put("user_features", "u1", "age", now - 10'000, "32");
  Start();
  std::vector<Impression> imps{Imp("u1", "i1", now - 25'000)};  // within the live horizon
  ASSERT_TRUE(Enrich(imps).get().ok());
  EXPECT_EQ(std::get<int64_t>(*Find(imps[0], "user.age")), 30);
}

// A replay (impressions older than the live horizon) reads each row from the
// store once: the fetch with the wall clock as bound answers every later
// impression of the row whose version it holds, each as of its own ts.
TEST_F(LookupServiceTest, AReplayReadsEachRowOnceAndEachImpressionAsOfItsTs) {
  store_.Put("user_features", "u1", "age", 100, "30");
  store_.Put("user_features", "u1", "age", 200, "31");
  store_.Put("item_features", "i1", "price", 50, "9.5");
  Start();
  for (int64_t ts : {150, 199, 200, 250, 5000}) {
    std::vector<Impression> imps{Imp("u1", "i1", ts)};
    ASSERT_TRUE(Enrich(imps).get().ok());
    EXPECT_EQ(std::get<int64_t>(*Find(imps[0], "user.age")), ts < 200 ? 30 : 31) << ts;
    EXPECT_EQ(std::get<double>(*Find(imps[0], "item.price")), 9.5) << ts;
  }
  EXPECT_EQ(store_.rows(), 2u) << "one read of u1 and one of i1";
  EXPECT_EQ(metrics_.Sum(&LookupCounters::cache_hits), 8u);
}

// The neighbours: a row with more newer versions than max_versions still
// gets the version as of ts (an exact read, which leaves the wall-bound
// entry in place); a historical impression is never served versions older
// than what the store holds as of its ts (no staleness rule for it).
TEST_F(LookupServiceTest, AReplayOfADeepRowReadsExactlyAndKeepsTheWideEntry) {
  for (int v = 1; v <= 5; ++v) {
    store_.Put("user_features", "u1", "age", v * 100, std::to_string(30 + v));
  }
  Start();  // max_versions 2: the wide read holds versions 500 and 400
  std::vector<Impression> old{Imp("u1", "i1", 250)};
  ASSERT_TRUE(Enrich(old).get().ok());
  EXPECT_EQ(std::get<int64_t>(*Find(old[0], "user.age")), 32) << "version 200";
  const size_t rows = store_.rows();
  std::vector<Impression> newer{Imp("u1", "i1", 450)};
  ASSERT_TRUE(Enrich(newer).get().ok());
  EXPECT_EQ(std::get<int64_t>(*Find(newer[0], "user.age")), 34) << "version 400";
  EXPECT_EQ(store_.rows(), rows)
      << "answered by the wide entry";  // Another impression the wide entry cannot tell costs one
                                        // exact read, not
  // a wide one first.
  std::vector<Impression> deep{Imp("u1", "i1", 260)};
  ASSERT_TRUE(Enrich(deep).get().ok());
  EXPECT_EQ(std::get<int64_t>(*Find(deep[0], "user.age")), 32) << "version 200";
  EXPECT_EQ(store_.rows(), rows + 1);
}

TEST_F(LookupServiceTest, AHistoricalImpressionIsNeverServedPastTheFetchBound) {
  LookupServiceOptions o;
  o.live_horizon_ms = 0;  // every impression before now is historical
  Start(o);
  store_.Put("user_features", "u1", "age", 1, "30");
  std::vector<Impression> first{Imp("u1", "i1", 10)};
  ASSERT_TRUE(Enrich(first).get().ok());
  const int64_t fetched_by = WallClockMs();
  std::this_thread::sleep_for(20ms);
  store_.Put("user_features", "u1", "age", fetched_by + 5, "31");
  std::vector<Impression> later{Imp("u1", "i1", WallClockMs() - 1)};
  ASSERT_TRUE(Enrich(later).get().ok());
  EXPECT_EQ(std::get<int64_t>(*Find(later[0], "user.age")), 31)
      << "its ts is past the cached entry's bound: read again, not served the older version";
}

// Declared columns keep their type ("02139" stays text, a 19-digit id an
// int64); a cell not of its type is left out and counted; a row without a
// declared column gets its default.
TEST_F(LookupServiceTest, DeclaredColumnsKeepTheirTypeAndDefaults) {
  store_.Put("user_features", "u1", "zip", 1, "02139");
  store_.Put("user_features", "u1", "id", 1, "1234567890123456789");
  store_.Put("user_features", "u1", "age", 1, "thirty");
  store_.Put("user_features", "u2", "zip", 1, "10001");
  Start({}, {{"zip", "string"}, {"age", "int64=-1"}, {"score", "float=0.5"}});
  std::vector<Impression> imps{Imp("u1", "i1", 10), Imp("u2", "i1", 10), Imp("u3", "i1", 10)};
  ASSERT_TRUE(Enrich(imps).get().ok());
  EXPECT_EQ(*Find(imps[0], "user.zip"), FeatureValue(std::string("02139")));
  EXPECT_EQ(*Find(imps[0], "user.id"), FeatureValue(int64_t{1234567890123456789}))
      << "undeclared: inferred";
  EXPECT_EQ(*Find(imps[0], "user.age"), FeatureValue(int64_t{-1}))
      << "'thirty' is left out; the default stands in";
  EXPECT_EQ(*Find(imps[0], "user.score"), FeatureValue(0.5));
  EXPECT_EQ(*Find(imps[1], "user.zip"), FeatureValue(std::string("10001")));
  EXPECT_EQ(*Find(imps[1], "user.age"), FeatureValue(int64_t{-1}));
  EXPECT_EQ(Find(imps[2], "user.zip"), nullptr) << "no default: absent";
  EXPECT_EQ(*Find(imps[2], "user.age"), FeatureValue(int64_t{-1})) << "an unknown row too";
  EXPECT_EQ(metrics_.Sum(&LookupCounters::cells_rejected), 1u);
  EXPECT_FALSE(imps[0].features_partial);
}

TEST(LookupSpecTest, ColumnDeclarationsAreValidated) {
  LookupSpec spec{"user", "t", "f", LookupKey::kUserId, 2, {}, {{"age", "int"}}};
  const Status status = spec.Validate("lookups[0]");
  EXPECT_NE(status.message().find("lookups[0].columns.age"), std::string::npos)
      << status.ToString();
}

}  // namespace
}  // namespace ctrjoin
