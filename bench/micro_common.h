#pragma once
// Inputs shared by the micro-benchmarks (bench/micro_*.cc, one binary
// micro_bench): records of the demo workload and a typical enriched
// impression. Built once, on first use, from the benchmark thread.

#include <string>
#include <vector>

#include "src/core/event.h"

namespace ctrjoin::bench {

// Records of the demo workload generator (src/io/workload.h) with nothing
// malformed or duplicated, split by stream: impressions with their five own
// features, and clicks. At least 4096 of each.
struct WorkloadRecords {
  std::vector<std::string> impressions;
  std::vector<std::string> clicks;
};
const WorkloadRecords& Records();

// The first workload impression, parsed, with the features the demo's
// lookups add to it (user.age, user.country, user.ctr_7d, user.embedding,
// item.price, item.category, item.popularity): 12 features in all.
const Impression& TypicalImpression();

// Frees the label join state kept from one benchmark to the next
// (micro_label_join.cc). main calls it after the run: left to static
// destruction, its RocksDB store would close after RocksDB's own statics.
void ReleaseLabelJoinFixture();

}  // namespace ctrjoin::bench
