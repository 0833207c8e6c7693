// The synthetic workload's shape flags (src/io/workload.h): payload size,
// extra features, click-delay distributions.

#include "src/io/workload.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace ctrjoin {
namespace {

// A workload without noise: no duplicates, orphans, late or malformed
// records, so that every click belongs to one impression.
WorkloadOptions Clean() {
  WorkloadOptions w;
  w.seed = 5;
  w.ctr = 0.2;
  w.duplicate_click_rate = 0;
  w.duplicate_impression_rate = 0;
  w.late_rate = 0;
  w.malformed_rate = 0;
  w.orphan_click_rate = 0;
  w.mean_click_delay_ms = 10'000;
  return w;
}

struct Generated {
  std::vector<std::string> impressions;
  std::map<std::string, int64_t> impression_ts;  // id -> ts
  std::vector<int64_t> delays;                   // click ts - its impression's ts
};

Generated Generate(const WorkloadOptions& w, int impressions) {
  Generated g;
  WorkloadGenerator gen(w);
  simdjson::dom::parser parser;
  std::vector<std::pair<std::string, int64_t>> clicks;
  auto take = [&](const GeneratedRecord& r) {
    simdjson::dom::element doc;
    EXPECT_EQ(parser.parse(r.json).get(doc), simdjson::SUCCESS) << r.json;
    std::string_view id;
    int64_t ts = 0;
    EXPECT_EQ(doc["impression_id"].get(id), simdjson::SUCCESS);
    EXPECT_EQ(doc["ts"].get(ts), simdjson::SUCCESS);
    if (r.stream == StreamKind::kImpression) {
      g.impressions.push_back(r.json);
      g.impression_ts[std::string(id)] = ts;
    } else {
      clicks.emplace_back(std::string(id), ts);
    }
  };
  while (gen.impressions_generated() < static_cast<uint64_t>(impressions)) take(gen.Next());
  GeneratedRecord tail;
  while (gen.Drain(tail)) take(tail);
  for (const auto& [id, ts] : clicks) g.delays.push_back(ts - g.impression_ts.at(id));
  return g;
}

TEST(WorkloadTest, ImpressionsArePaddedToPayloadBytesWithTheExtraFeatures) {
  WorkloadOptions w = Clean();
  w.extra_features = 5;
  w.payload_bytes = 400;
  const Generated g = Generate(w, 500);
  ASSERT_EQ(g.impressions.size(), 500u);
  simdjson::dom::parser parser;
  for (const std::string& json : g.impressions) {
    EXPECT_EQ(json.size(), 400u) << json;
    simdjson::dom::element features;
    ASSERT_EQ(parser.parse(json)["features"].get(features), simdjson::SUCCESS);
    for (const char* name : {"position", "device", "hour", "ctx", "f0", "f4", "pad"}) {
      simdjson::dom::element v;
      EXPECT_EQ(features[name].get(v), simdjson::SUCCESS) << name << " in " << json;
    }
    simdjson::dom::element none;
    EXPECT_NE(features["f5"].get(none), simdjson::SUCCESS);
  }
  // A size below the record's own leaves it unpadded.
  w.payload_bytes = 20;
  for (const std::string& json : Generate(w, 50).impressions) {
    EXPECT_GT(json.size(), 20u);
    EXPECT_EQ(json.find("\"pad\""), std::string::npos);
  }
}

// Kafka keys co-partition the two topics (`source.kafka.mode: group`): every
// record, duplicates and orphan clicks included, is keyed by the impression
// id it carries; a malformed one by the id it was made for.
TEST(WorkloadTest, EveryRecordIsKeyedByItsImpressionId) {
  WorkloadOptions w;  // with duplicates, orphans, late and malformed records
  w.seed = 11;
  w.ctr = 0.3;
  w.malformed_rate = 0.05;
  WorkloadGenerator gen(w);
  simdjson::dom::parser parser;
  std::map<StreamKind, int> well_formed;
  int malformed = 0;
  auto check = [&](const GeneratedRecord& r) {
    ASSERT_FALSE(r.key.empty()) << r.json;
    simdjson::dom::element doc;
    std::string_view id;
    if (parser.parse(r.json).get(doc) == simdjson::SUCCESS &&
        doc["impression_id"].get(id) == simdjson::SUCCESS && doc["ts"].is_int64()) {
      EXPECT_EQ(r.key, id) << r.json;
      ++well_formed[r.stream];
    } else {
      ++malformed;
      EXPECT_TRUE(r.key.starts_with("imp-11-") || r.key.starts_with("ghost-11-")) << r.key;
    }
  };
  while (gen.impressions_generated() < 5000) check(gen.Next());
  GeneratedRecord tail;
  while (gen.Drain(tail)) check(tail);
  EXPECT_GT(well_formed[StreamKind::kImpression], 4000);
  EXPECT_GT(well_formed[StreamKind::kClick], 500);
  EXPECT_GT(malformed, 100);
}

TEST(WorkloadTest, ClickDelaysFollowTheChosenDistribution) {
  WorkloadOptions w = Clean();
  w.click_delay = ClickDelay::kFixed;
  Generated g = Generate(w, 2'000);
  ASSERT_GT(g.delays.size(), 200u);
  for (int64_t d : g.delays) EXPECT_EQ(d, 10'000);

  w.click_delay = ClickDelay::kUniform;
  g = Generate(w, 4'000);
  double sum = 0;
  int64_t late_half = 0;
  for (int64_t d : g.delays) {
    EXPECT_GE(d, 0);
    EXPECT_LE(d, 20'000);
    sum += static_cast<double>(d);
    late_half += d > 10'000;
  }
  const double n = static_cast<double>(g.delays.size());
  EXPECT_NEAR(sum / n, 10'000, 1'000);
  EXPECT_NEAR(static_cast<double>(late_half) / n, 0.5, 0.08);

  // Exponential: about 37% come after the mean (e^-1), none before 0.
  w.click_delay = ClickDelay::kExponential;
  g = Generate(w, 4'000);
  int64_t after_mean = 0;
  for (int64_t d : g.delays) {
    EXPECT_GE(d, 0);
    after_mean += d > 10'000;
  }
  EXPECT_NEAR(static_cast<double>(after_mean) / static_cast<double>(g.delays.size()), 0.368, 0.06);
}

// Clicks follow the click model: the overall rate is about ctr, the true
// probability of every impression is recorded, and impressions with a high
// one are clicked far more often than those with a low one. The user's
// looked-up ctr_7d moves with it.
TEST(WorkloadSignalTest, ClicksFollowTheRecordedProbability) {
  WorkloadOptions w = Clean();
  w.ctr = 0.03;
  WorkloadGenerator gen(w);
  std::map<std::string, double> p;  // impression id -> p_click
  std::set<std::string> clicked;
  simdjson::dom::parser parser;
  auto take = [&](const GeneratedRecord& r) {
    if (r.stream == StreamKind::kImpression) {
      ASSERT_GE(r.p_click, 0) << r.json;
      p[r.impression_id] = r.p_click;
      return;
    }
    simdjson::dom::element doc;
    ASSERT_EQ(parser.parse(r.json).get(doc), simdjson::SUCCESS);
    clicked.insert(std::string(doc["impression_id"].get_string().value()));
  };
  while (gen.impressions_generated() < 60'000) take(gen.Next());
  GeneratedRecord tail;
  while (gen.Drain(tail)) take(tail);
  double sum = 0;
  std::vector<double> all;
  for (const auto& [id, prob] : p) {
    sum += prob;
    all.push_back(prob);
  }
  std::sort(all.begin(), all.end());
  const double low = all[all.size() / 4], high = all[3 * all.size() / 4];
  double clicks_low = 0, n_low = 0, clicks_high = 0, n_high = 0;
  for (const auto& [id, prob] : p) {
    if (prob <= low) {
      ++n_low;
      clicks_low += clicked.contains(id);
    } else if (prob >= high) {
      ++n_high;
      clicks_high += clicked.contains(id);
    }
  }
  const double rate = static_cast<double>(clicked.size()) / static_cast<double>(p.size());
  EXPECT_NEAR(rate, 0.03, 0.01);
  EXPECT_NEAR(sum / static_cast<double>(p.size()), rate, 0.004) << "p_click is the true rate";
  EXPECT_GT(clicks_high / n_high, 4 * (clicks_low / n_low))
      << "top quartile " << clicks_high / n_high << ", bottom " << clicks_low / n_low;
}

}  // namespace
}  // namespace ctrjoin
