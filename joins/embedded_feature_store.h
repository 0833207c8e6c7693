#pragma once
// EmbeddedFeatureStore: versioned feature cells in a local RocksDB, the
// default store for `demo` and the benchmarks. Keys sort as
// table \0 row \0 family \0 column \0 (inverted version), so one prefix scan
// yields a row's columns with their versions newest first.
//
// Loadable from JSON lines, one row version per line:
//   {"table": "user_features", "row": "u1", "family": "f", "ts": 1767225600000,
//    "columns": {"age": 34, "country": "de", "embedding": [0.1, 0.2]}}
// ("family" defaults to "f"; numbers and arrays are stored as their text).
//
// Thread-safe: RocksDB serialises writers and allows concurrent readers.
// Owns its rocksdb::DB.

#include <rocksdb/db.h>
#include <simdjson.h>

#include <memory>
#include <mutex>
#include <string>

#include "joins/feature_store.h"

namespace ctrjoin {

struct EmbeddedFeatureStoreOptions {
  std::string path = "./ctrjoin-features";  // RocksDB directory (created if missing)
  std::string load;                         // JSON-lines file loaded at start-up, optional
  size_t cache_mb = 64;                     // block cache
  // Not a config key: a replay opens the store read-only (no lock, no load),
  // so that it runs beside the live job that holds it.
  bool read_only = false;

  Status Validate() const;  // "feature_store.embedded.path: ..."
};

class EmbeddedFeatureStore : public FeatureStore {
 public:
  static Result<std::unique_ptr<EmbeddedFeatureStore>> Open(
      const EmbeddedFeatureStoreOptions& options);
  ~EmbeddedFeatureStore() override;

  Result<std::vector<FetchedRow>> GetMultiple(const std::string& table, const std::string& family,
                                              std::span<const FeatureFetch> fetches,
                                              int max_versions) override;
  std::string Describe() const override;

  Status Put(const std::string& table, const std::string& row, const std::string& family,
             const std::string& column, int64_t version, const std::string& value);
  // Writes one row version given as a JSON line in the format above.
  Status PutJson(std::string_view line);
  // Loads a JSON-lines file as described above; returns the cells written.
  // A bad line is an error naming its line number.
  Result<uint64_t> LoadJsonLines(const std::string& path);

 private:
  EmbeddedFeatureStore() = default;
  Result<uint64_t> PutJsonLine(std::string_view line);  // cells written
  std::string path_;
  simdjson::dom::parser parser_;  // for PutJson; guarded by parser_mu_
  std::mutex parser_mu_;
  std::unique_ptr<rocksdb::DB> db_;
};

}  // namespace ctrjoin
