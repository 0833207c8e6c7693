#pragma once
// SpillStore: the RocksDB instance behind operator state. Keyed state that
// does not fit its in-memory budget is moved here (see joins/join_state.h).
//
// Memory: the block cache is sized to rocksdb_memory_bytes and the memtables
// are charged to that same cache through a WriteBufferManager, so RocksDB's
// own memory stays within its share of the state budget.
//
// Durability: this is working state, not a checkpoint; the WAL is off and the
// directory is wiped at open (checkpoints will be taken from it by txn/).
//
// Thread-safety: every method may be called from any shard thread at once
// (RocksDB is internally synchronised; shards use disjoint key prefixes).
// Owns the rocksdb::DB, its cache and write-buffer manager.

#include <cstddef>
#include <memory>
#include <string>

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include "src/status.h"

namespace ctrjoin {

struct SpillStoreOptions {
  std::string dir = "./ctrjoin-state";  // working directory (wiped at open)
  size_t rocksdb_memory_bytes = 64ull << 20;  // block cache + memtables

  Status Validate() const;
};

class SpillStore {
 public:
  static Result<std::unique_ptr<SpillStore>> Open(const SpillStoreOptions& options);
  ~SpillStore();

  Status Write(rocksdb::WriteBatch& batch);
  // Reads key; found is false when absent.
  Status Get(const std::string& key, std::string& value, bool& found);
  std::unique_ptr<rocksdb::Iterator> NewIterator();
  // Bytes held by the block cache (memtables included through the manager).
  size_t MemoryUsage() const;

 private:
  SpillStore() = default;
  std::shared_ptr<rocksdb::Cache> cache_;
  std::shared_ptr<rocksdb::WriteBufferManager> write_buffers_;
  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::WriteOptions write_options_;
  rocksdb::ReadOptions read_options_;
};

// Maps a RocksDB status to ours (exhaustive over rocksdb::Status::Code).
Status FromRocksDb(const rocksdb::Status& s, const std::string& context);

}  // namespace ctrjoin
