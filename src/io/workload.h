#pragma once
// WorkloadGenerator: a deterministic (seeded) synthetic ad-log workload, used
// by `ctrjoin demo`, the tests and the benchmarks.
//
// Impressions arrive at a steady event-time rate with Zipf-distributed users
// and items and a handful of realistic features; a fraction `ctr` of them is
// clicked after an exponential delay (mean mean_click_delay_ms, so some
// clicks fall beyond the window). Records are delivered in *arrival* order:
// each record arrives at its event time plus a uniform disorder in
// [0, max_disorder_ms], except a fraction late_rate that arrives late_by_ms
// later still. duplicate_click_rate of clicks and duplicate_impression_rate
// of impressions are sent twice (identical JSON), malformed_rate of records
// are replaced by broken JSON or records with mistyped fields, and
// orphan_click_rate (per impression) clicks name an impression that never
// comes.
//
// Not thread-safe: owned and called by one thread.

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "src/core/enum_names.h"
#include "src/core/event.h"

namespace ctrjoin {

// How long after its impression a click comes: the mean is
// WorkloadOptions::mean_click_delay_ms.
enum class ClickDelay {
  kExponential,  // memoryless: many early clicks, a long tail
  kUniform,      // evenly over [0, 2 x mean]
  kFixed,        // exactly the mean
};
constexpr auto NamesOf(ClickDelay) {
  return std::to_array<NamedValue<ClickDelay>>({{ClickDelay::kExponential, "exponential"},
                                                {ClickDelay::kUniform, "uniform"},
                                                {ClickDelay::kFixed, "fixed"}});
}

struct WorkloadOptions {
  uint64_t seed = 42;
  int64_t start_ts_ms = 1'767'225'600'000;  // 2026-01-01T00:00:00Z
  double impressions_per_sec = 1'000;       // event-time rate
  uint64_t users = 100'000;
  uint64_t items = 10'000;
  double zipf_exponent = 1.1;
  double ctr = 0.03;
  int64_t mean_click_delay_ms = 60'000;
  ClickDelay click_delay = ClickDelay::kExponential;
  double duplicate_click_rate = 0.01;
  double duplicate_impression_rate = 0.001;
  int64_t max_disorder_ms = 2'000;
  double late_rate = 0.001;
  int64_t late_by_ms = 20'000;
  double malformed_rate = 0.001;
  double orphan_click_rate = 0.0005;  // clicks for impressions that never come
  // Impression shape: further numeric features f0..f<n-1>, and a string
  // feature "pad" that fills the impression's JSON up to payload_bytes (0:
  // none; a record already longer is left as it is).
  uint32_t extra_features = 0;
  uint32_t payload_bytes = 0;
};

struct GeneratedRecord {
  StreamKind stream = StreamKind::kImpression;
  int64_t arrival_ms = 0;  // event-time clock at which the record arrives
  std::string json;
  // An impression's true click probability (the click model below); -1 for
  // a click, a duplicate or a malformed record.
  double p_click = -1;
  std::string impression_id;  // set with p_click
  // The impression id the record is about, also for a click, a duplicate or
  // a malformed record: the Kafka key that co-partitions both topics.
  std::string key;
};

// The click model: an impression is clicked with probability
//   sigmoid(base + user_affinity + item_quality - 0.12 * position
//           + device effect (ios +0.3, android -0.2, web 0) + (ctx[0] - 0.5))
// where user_affinity is the user's as of its newest feature version (it
// drifts from version to version) and item_quality the item's, both hidden
// but shown through the looked-up features user.ctr_7d (sigmoid(base_ctr +
// affinity)) and item.popularity (sigmoid(quality)); base is set so the
// overall click rate is about `ctr`. So a model over position, device, ctx,
// user.ctr_7d and item.popularity can learn it, and p_click says how well
// the best one could do.
double ClickProbability(const WorkloadOptions& options, uint64_t user, uint64_t item,
                        uint64_t position, int device, double ctx0);

// Feature rows for the workload's users and items, in the embedded feature
// store's JSON-lines format (tables user_features and item_features, family
// "f"): each user and item gets two or three versions before start_ts_ms
// (30 days, 7 days and, for some, 1 hour earlier). Deterministic for a seed.
void GenerateFeatureRows(const WorkloadOptions& options,
                         const std::function<void(const std::string& json)>& emit);

class WorkloadGenerator {
 public:
  explicit WorkloadGenerator(WorkloadOptions options);
  ~WorkloadGenerator();

  // The next record in arrival order (never ends).
  GeneratedRecord Next();
  // Ends the workload: the next record already generated (clicks of earlier
  // impressions, delayed records), in arrival order; false when none is left.
  bool Drain(GeneratedRecord& out);
  // Impressions generated so far (duplicates and malformed ones included).
  uint64_t impressions_generated() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ctrjoin
