#pragma once
// Test support: an independent, brute-force computation of the labels a
// generated trace must get (no watermarks, no state: only the window rule),
// and a reader for JSON-lines sample output. Valid only for traces whose
// disorder stays within the out-of-orderness bound (nothing late).
// Used by the integration tests from the test thread.

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "src/io/workload.h"

namespace ctrjoin::test_support {

// A workload whose disorder stays within an out-of-orderness of 5 s (nothing
// late), with duplicates, malformed records and orphan clicks, and a mean
// click delay of half the window so that a share of clicks misses it.
WorkloadOptions OracleWorkload(uint64_t seed, int64_t window_ms);

struct Oracle {
  std::map<std::string, int> labels;  // impression id -> expected label
  size_t rejected = 0;                // lines that must be dead-lettered
};

std::vector<std::string> ReadLines(const std::string& path);

// Label 1 iff some valid click for the id has ts in [impression ts,
// impression ts + window_ms]; the first impression of an id wins.
Oracle ComputeOracle(const std::string& impressions_path, const std::string& clicks_path,
                     int64_t window_ms);

struct SampleRow {
  std::string impression_id;
  int64_t label = -1;
  bool operator==(const SampleRow&) const = default;
};

// sample_id -> row; fails the current test on malformed or duplicate samples.
std::map<uint64_t, SampleRow> ReadSamples(const std::string& path);

// Checks samples against the oracle: one sample per impression, right label.
// Returns the number of positives expected.
size_t ExpectMatchesOracle(const Oracle& oracle, const std::map<uint64_t, SampleRow>& samples);

// Checks JSON-lines dead letters (the lines of `path`) against the oracle:
// every rejected record once ("<stream>/<partition>/<offset>" distinct,
// oracle.rejected of them), none twice.
void ExpectDeadLettersOnce(const Oracle& oracle, const std::string& path);

}  // namespace ctrjoin::test_support
