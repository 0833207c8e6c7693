#pragma once
// SpillStore: the RocksDB instance behind operator state. Keyed state that
// does not fit its in-memory budget is moved here (see joins/join_state.h).
//
// Memory: the block cache is sized to rocksdb_memory_bytes and the memtables
// are charged to that same cache through a WriteBufferManager, so RocksDB's
// own memory stays within its share of the state budget.
//
// Durability: none. This is a cache of working state (the changelog is what
// checkpoints keep, src/state/changelog.h); the WAL is off and the
// directory is wiped at open, and a restore spills again from the restored
// state. Each shard has its own store; all share one SpillMemory.
//
// Thread-safety: every method may be called from any thread (RocksDB is
// internally synchronised); in the pipeline one shard thread uses a store.
// Owns the rocksdb::DB; shares the SpillMemory.

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <rocksdb/write_buffer_manager.h>

#include <cstddef>
#include <memory>
#include <set>
#include <string>

#include "src/core/status.h"

namespace ctrjoin {

// The memory every spill store of a job shares: one block cache, with the
// memtables charged to it. Thread-safe; shared by the stores that use it.
class SpillMemory {
 public:
  explicit SpillMemory(size_t bytes);
  size_t bytes() const { return bytes_; }
  size_t Usage() const { return cache_->GetUsage(); }
  const std::shared_ptr<rocksdb::Cache>& cache() const { return cache_; }
  const std::shared_ptr<rocksdb::WriteBufferManager>& write_buffers() const {
    return write_buffers_;
  }

 private:
  const size_t bytes_;
  std::shared_ptr<rocksdb::Cache> cache_;
  std::shared_ptr<rocksdb::WriteBufferManager> write_buffers_;
};

struct SpillStoreOptions {
  std::string dir = "./ctrjoin-state";        // parent of the working directory "live"
  size_t rocksdb_memory_bytes = 64ull << 20;  // block cache + memtables (when not shared)
  std::string name = "live";                  // working directory under dir (wiped at open)

  Status Validate() const;
};

class SpillStore {
 public:
  // memory may be null: the store then has its own, of options.rocksdb_memory_bytes.
  static Result<std::unique_ptr<SpillStore>> Open(const SpillStoreOptions& options,
                                                  std::shared_ptr<SpillMemory> memory = nullptr);
  ~SpillStore();

  Status Write(rocksdb::WriteBatch& batch);
  // Reads key; found is false when absent.
  Status Get(const std::string& key, std::string& value, bool& found);
  std::unique_ptr<rocksdb::Iterator> NewIterator();
  // Bytes held by the block cache (memtables included through the manager).
  size_t MemoryUsage() const;

 private:
  SpillStore() = default;
  std::shared_ptr<SpillMemory> memory_;
  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::WriteOptions write_options_;
  rocksdb::ReadOptions read_options_;
};

// Maps a RocksDB status to ours (exhaustive over rocksdb::Status::Code).
Status FromRocksDb(const rocksdb::Status& s, const std::string& context);

}  // namespace ctrjoin
