#include "tests/support/trace_oracle.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <simdjson.h>

#include <fstream>

#include "src/core/hash.h"

namespace ctrjoin::test_support {

WorkloadOptions OracleWorkload(uint64_t seed, int64_t window_ms) {
  WorkloadOptions w;
  w.seed = seed;
  w.impressions_per_sec = 500;
  w.ctr = 0.05;
  w.mean_click_delay_ms = window_ms / 2;
  w.max_disorder_ms = 2'000;
  w.late_rate = 0;
  w.malformed_rate = 0.002;
  w.duplicate_click_rate = 0.02;
  w.duplicate_impression_rate = 0.01;
  return w;
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

Oracle ComputeOracle(const std::string& impressions_path, const std::string& clicks_path,
                     int64_t window_ms) {
  simdjson::dom::parser parser;
  Oracle oracle;
  std::map<std::string, int64_t> first_ts;
  for (const std::string& line : ReadLines(impressions_path)) {
    simdjson::dom::element doc;
    std::string_view id, user, item;
    int64_t ts = 0;
    if (parser.parse(line).get(doc) || doc["impression_id"].get(id) || doc["user_id"].get(user) ||
        doc["item_id"].get(item) || doc["ts"].get(ts)) {
      ++oracle.rejected;
      continue;
    }
    first_ts.emplace(std::string(id), ts);
  }
  std::multimap<std::string, int64_t> click_ts;
  for (const std::string& line : ReadLines(clicks_path)) {
    simdjson::dom::element doc;
    std::string_view id;
    int64_t ts = 0;
    if (parser.parse(line).get(doc) || doc["impression_id"].get(id) || doc["ts"].get(ts)) {
      ++oracle.rejected;
      continue;
    }
    click_ts.emplace(std::string(id), ts);
  }
  for (const auto& [id, ts] : first_ts) {
    int label = 0;
    auto [lo, hi] = click_ts.equal_range(id);
    for (auto it = lo; it != hi; ++it) {
      if (it->second >= ts && it->second <= ts + window_ms) label = 1;
    }
    oracle.labels[id] = label;
  }
  return oracle;
}

std::map<uint64_t, SampleRow> ReadSamples(const std::string& path) {
  simdjson::dom::parser parser;
  std::map<uint64_t, SampleRow> samples;
  for (const std::string& line : ReadLines(path)) {
    simdjson::dom::element doc;
    EXPECT_FALSE(parser.parse(line).get(doc)) << line;
    std::string_view sid, id;
    int64_t label = -1;
    EXPECT_FALSE(doc["sample_id"].get(sid)) << line;
    EXPECT_FALSE(doc["impression_id"].get(id)) << line;
    EXPECT_FALSE(doc["label"].get(label)) << line;
    const bool inserted =
        samples.emplace(std::stoull(std::string(sid)), SampleRow{std::string(id), label}).second;
    EXPECT_TRUE(inserted) << "duplicate sample " << line;
  }
  return samples;
}

size_t ExpectMatchesOracle(const Oracle& oracle, const std::map<uint64_t, SampleRow>& samples) {
  EXPECT_EQ(samples.size(), oracle.labels.size());
  size_t positives = 0, mismatches = 0;
  for (const auto& [id, label] : oracle.labels) {
    positives += label;
    auto it = samples.find(ImpressionKey(id));
    if (it == samples.end()) {
      if (++mismatches <= 10) ADD_FAILURE() << "no sample for " << id;
      continue;
    }
    EXPECT_EQ(it->second.impression_id, id);
    if (it->second.label != label && ++mismatches <= 10) {
      ADD_FAILURE() << id << ": label " << it->second.label << ", expected " << label;
    }
  }
  EXPECT_EQ(mismatches, 0u);
  return positives;
}

void ExpectDeadLettersOnce(const Oracle& oracle, const std::string& path) {
  simdjson::dom::parser parser;
  std::map<std::string, int> times;  // "<stream>/<partition>/<offset>" -> count
  for (const std::string& line : ReadLines(path)) {
    simdjson::dom::element doc;
    std::string_view stream;
    int64_t partition = -1, offset = -1;
    if (parser.parse(line).get(doc) || doc["stream"].get(stream) ||
        doc["partition"].get(partition) || doc["offset"].get(offset)) {
      ADD_FAILURE() << "not a dead letter: " << line;
      continue;
    }
    ++times[fmt::format("{}/{}/{}", stream, partition, offset)];
  }
  EXPECT_EQ(times.size(), oracle.rejected) << "distinct dead-lettered records";
  size_t repeated = 0;
  for (const auto& [record, n] : times) {
    if (n != 1 && ++repeated <= 10) ADD_FAILURE() << record << " dead-lettered " << n << " times";
  }
  EXPECT_EQ(repeated, 0u);
}

}  // namespace ctrjoin::test_support
