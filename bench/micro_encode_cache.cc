// Micro-benchmarks of sample encoding (JSON line, tf.Example, TFRecord) and
// of feature-cache misses. A cache hit is measured by feature_bench
// (BM_CacheHit, same cache contents: 100k rows of 4 user columns); here is
// the other side, what a lookup costs when the cache cannot answer. They
// print figures and assert nothing.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "bench/micro_common.h"
#include "joins/feature_cache.h"
#include "sinks/json_encoder.h"
#include "sinks/sample_format.h"
#include "sinks/tf_example_encoder.h"

namespace ctrjoin::bench {
namespace {

// A positive sample of the typical impression: 12 features (5 own, 7 looked up).
Sample TypicalSample() {
  Sample s;
  s.sample_id = 0x9e3779b97f4a7c15ull;
  s.label = 1;
  s.impression = TypicalImpression();
  s.click_ts = EventTime{s.impression.ts.ms + 41'000};
  return s;
}

enum class Encoding { kJson, kTfExample, kTfRecord };

void BM_EncodeSample(benchmark::State& state, Encoding encoding) {
  const Sample sample = TypicalSample();
  std::string out;
  int64_t bytes = 0;
  for (auto _ : state) {
    out.clear();
    switch (encoding) {
      case Encoding::kJson: AppendSampleJson(sample, out); break;
      case Encoding::kTfExample: AppendSampleTfExample(sample, out); break;
      case Encoding::kTfRecord: AppendSampleRecord(SampleFormat::kTfExample, sample, out); break;
    }
    benchmark::DoNotOptimize(out.data());
    bytes += static_cast<int64_t>(out.size());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(bytes);
  state.counters["bytes_per_sample"] = static_cast<double>(out.size());
}
BENCHMARK_CAPTURE(BM_EncodeSample, json, Encoding::kJson);
BENCHMARK_CAPTURE(BM_EncodeSample, tf_example, Encoding::kTfExample);
BENCHMARK_CAPTURE(BM_EncodeSample, tfrecord, Encoding::kTfRecord);

enum class Miss {
  kAbsent,  // the row is not cached
  kTooOld,  // cached, but its versions cannot tell the features as of ts
};

// 100k cached rows of 4 columns (as in feature_bench's BM_CacheHit), each
// with one version at 900 from a fetch bounded at 1000 that returned
// max_versions (1) versions: an older version may exist. Lookups as of
// ts 500 then miss, as do lookups of rows never cached.
void BM_FeatureCacheMiss(benchmark::State& state, Miss miss) {
  LookupCounters metrics;
  FeatureCache cache({}, &metrics);
  constexpr int kRows = 100'000;
  std::vector<std::string> cached, absent;
  for (int i = 0; i < kRows; ++i) {
    cached.push_back("u" + std::to_string(i));
    absent.push_back("v" + std::to_string(i));
    FetchedRow row{{{"age", "34", 900},
                    {"country", "de", 900},
                    {"ctr_7d", "0.031", 900},
                    {"embedding", "[0.1,0.2,0.3]", 900}}};
    cache.Put(cached.back(), RowVersions::Make(row, "user.", 1, 1000, false), 0);
  }
  const std::vector<std::string>& rows = miss == Miss::kAbsent ? absent : cached;
  size_t i = 0, answered = 0;
  for (auto _ : state) {
    auto got = cache.Get(rows[i++ % kRows], 500, 1);
    answered += got.has_value() ? 1 : 0;
    benchmark::DoNotOptimize(got);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["hit_ratio"] =
      static_cast<double>(answered) / static_cast<double>(state.iterations());
}
BENCHMARK_CAPTURE(BM_FeatureCacheMiss, absent, Miss::kAbsent);
BENCHMARK_CAPTURE(BM_FeatureCacheMiss, too_old, Miss::kTooOld);

}  // namespace
}  // namespace ctrjoin::bench
