// Feature-enrichment micro-benchmarks (Google Benchmark): the cost of a cache
// hit, sustained misses through batched Thrift getMultiple calls to the test
// HBase server, and the latency enrichment adds to a batch when >= 95% of
// lookups hit the cache. They print figures and assert nothing.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <future>

#include "joins/feature_cache.h"
#include "joins/hbase_client.h"
#include "joins/hbase_feature_store.h"
#include "joins/lookup_service.h"
#include "src/core/clock.h"
#include "tests/support/enrich.h"
#include "tests/support/hbase_server.h"

namespace ctrjoin {
namespace {

void BM_CacheHit(benchmark::State& state) {
  LookupCounters metrics;
  FeatureCache cache({}, &metrics);
  constexpr int kRows = 100'000;
  std::vector<std::string> rows;
  for (int i = 0; i < kRows; ++i) {
    rows.push_back("u" + std::to_string(i));
    FetchedRow row{{{"age", "34", 1},
                    {"country", "de", 1},
                    {"ctr_7d", "0.031", 1},
                    {"embedding", "[0.1,0.2,0.3]", 1}}};
    cache.Put(rows.back(), RowVersions::Make(row, "user.", 3, 1000, true), 0);
  }
  size_t i = 0;
  for (auto _ : state) {
    auto hit = cache.Get(rows[i++ % kRows], 5000, 1);
    benchmark::DoNotOptimize(hit);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CacheHit)->ThreadRange(1, 2)->UseRealTime();

// An HBase Thrift2 test server on loopback with n users' features, and a
// LookupService in front of it.
struct Fixture {
  explicit Fixture(int users, LookupServiceOptions options) {
    server = std::move(test_support::TestHBaseServer::Start({})).value();
    HBaseClientOptions client;
    client.port = server->port();
    client.pool_size = options.io_threads;
    auto loader = std::move(HBaseClient::Open(client)).value();
    std::vector<HBasePut> puts;
    for (int u = 0; u < users; ++u) {
      const std::string row = "u" + std::to_string(u);
      puts.push_back({row, "f", "age", std::to_string(20 + u % 50), 1});
      puts.push_back({row, "f", "country", "de", 1});
      puts.push_back({row, "f", "ctr_7d", "0.031", 1});
      if (puts.size() >= 3000) {
        (void)loader->PutMultiple("user_features", puts);
        puts.clear();
      }
    }
    (void)loader->PutMultiple("user_features", puts);
    store = std::move(HBaseFeatureStore::Open(client)).value();
    LookupSpec spec{"user", "user_features", "f", LookupKey::kUserId, 3, {}};
    service = std::make_unique<LookupService>(options, std::vector<LookupSpec>{spec}, store.get(),
                                              &metrics);
  }

  // Enriches one batch and waits for it; returns the time it took.
  double EnrichSeconds(std::vector<Impression>& batch) {
    const auto start = std::chrono::steady_clock::now();
    test_support::EnrichAsync(*service, batch).wait();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }

  LookupMetrics metrics;
  std::unique_ptr<test_support::TestHBaseServer> server;
  std::unique_ptr<HBaseFeatureStore> store;
  std::unique_ptr<LookupService> service;
};

Impression UserImpression(int user, int64_t ts) {
  Impression imp;
  imp.user_id = "u" + std::to_string(user);
  imp.ts = EventTime{ts};
  return imp;
}

// Every lookup a miss (each user asked once): rows per second through
// batched getMultiple calls over Thrift.
void BM_MissesThroughThrift(benchmark::State& state) {
  constexpr int kUsers = 400'000;
  LookupServiceOptions options;
  options.io_threads = 4;
  options.max_batch = static_cast<size_t>(state.range(0));
  Fixture f(kUsers, options);
  const int64_t now = WallClockMs();
  int next_user = 0;
  for (auto _ : state) {
    std::vector<Impression> batch;
    for (int i = 0; i < 1024; ++i) batch.push_back(UserImpression(next_user++ % kUsers, now));
    f.EnrichSeconds(batch);
  }
  state.SetItemsProcessed(state.iterations() * 1024);
  state.counters["store_calls"] = static_cast<double>(f.metrics.Sum(&LookupCounters::store_calls));
  state.counters["rows_per_call"] =
      static_cast<double>(f.metrics.Sum(&LookupCounters::requests)) /
      std::max<uint64_t>(1, f.metrics.Sum(&LookupCounters::store_calls));
}
BENCHMARK(BM_MissesThroughThrift)->Arg(64)->Arg(256)->UseRealTime()->Unit(benchmark::kMillisecond);

// Batches of 512 impressions, 95% of them for users already cached: the
// latency enrichment adds to a batch, p50 and p99.
void BM_EnrichLatencyAt95PercentHits(benchmark::State& state) {
  constexpr int kHot = 10'000, kCold = 200'000;
  LookupServiceOptions options;
  Fixture f(kHot + kCold, options);
  const int64_t now = WallClockMs();
  {
    std::vector<Impression> warm;
    for (int u = 0; u < kHot; ++u) warm.push_back(UserImpression(u, now));
    f.EnrichSeconds(warm);
  }
  std::vector<double> latencies;
  const double warm_hits = static_cast<double>(f.metrics.Sum(&LookupCounters::cache_hits));
  const double warm_misses = static_cast<double>(f.metrics.Sum(&LookupCounters::cache_misses));
  int cold = kHot;
  uint64_t i = 0;
  for (auto _ : state) {
    std::vector<Impression> batch;
    for (int k = 0; k < 512; ++k, ++i) {
      const bool miss = i % 20 == 0;  // 5%
      batch.push_back(UserImpression(miss ? cold++ : static_cast<int>(i * 7919 % kHot), now));
    }
    latencies.push_back(f.EnrichSeconds(batch));
  }
  std::sort(latencies.begin(), latencies.end());
  const auto pct = [&](double p) {
    return latencies[std::min(latencies.size() - 1, static_cast<size_t>(p * latencies.size()))];
  };
  state.counters["p50_ms"] = pct(0.50) * 1e3;
  state.counters["p99_ms"] = pct(0.99) * 1e3;
  const double hits = f.metrics.Sum(&LookupCounters::cache_hits) - warm_hits;
  const double misses = f.metrics.Sum(&LookupCounters::cache_misses) - warm_misses;
  state.counters["hit_ratio"] = hits / (hits + misses);
  state.SetItemsProcessed(state.iterations() * 512);
}
BENCHMARK(BM_EnrichLatencyAt95PercentHits)
    ->Iterations(400)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace ctrjoin

BENCHMARK_MAIN();
