#pragma once
// FeatureStore: where historical user/item features live — HBase through its
// Thrift2 server in production, an embedded RocksDB store for the demo,
// tests and benchmarks. A feature is one cell (table, row, family, column)
// with versions (cell timestamps, epoch ms); values are text: a number
// ("34", "0.25"), a JSON array of numbers ("[1,2.5]") or any other string.
//
// GetMultiple is blocking and thread-safe: the lookup service calls it from
// several I/O threads at once.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "src/core/status.h"

namespace ctrjoin {

// Fetch every column of one row in one family, versions with ts < upper.
struct FeatureFetch {
  std::string row;
  int64_t upper_exclusive = 0;
};

struct FeatureCell {
  std::string column;
  std::string value;
  int64_t version = 0;  // cell timestamp, ms
};

// Cells of one row: per column at most max_versions versions, newest first,
// columns in any order. Empty when the row has nothing below the bound.
struct FetchedRow {
  std::vector<FeatureCell> cells;
};

// What a store says, at start, of the table and family a lookup reads.
struct StoreTableInfo {
  enum class Missing { kNothing, kTable, kFamily };
  Missing missing = Missing::kNothing;
  std::string problem;                     // when something is missing: what the store said
  std::optional<int> family_max_versions;  // versions the family keeps, if the store says
};

class FeatureStore {
 public:
  virtual ~FeatureStore() = default;
  // One result per fetch, in order. An error means none of them is known.
  virtual Result<std::vector<FetchedRow>> GetMultiple(const std::string& table,
                                                      const std::string& family,
                                                      std::span<const FeatureFetch> fetches,
                                                      int max_versions) = 0;
  // Asks once, at start, whether the table and family exist. Errors:
  // InvalidArgument (the server's answers cannot be read: a protocol or
  // transport mismatch), Unavailable or TimedOut (not reachable now). The
  // default has nothing to check.
  virtual Result<StoreTableInfo> Probe(const std::string& /*table*/,
                                       const std::string& /*family*/) {
    return StoreTableInfo{};
  }
  virtual std::string Describe() const = 0;
};

}  // namespace ctrjoin
