#pragma once
// SpillStore: the RocksDB instance behind operator state. Keyed state that
// does not fit its in-memory budget is moved here (see joins/join_state.h).
//
// Memory: the block cache is sized to rocksdb_memory_bytes and the memtables
// are charged to that same cache through a WriteBufferManager, so RocksDB's
// own memory stays within its share of the state budget.
//
// Durability: this is working state, not a checkpoint; the WAL is off and the
// directory is wiped at open, or rebuilt from a checkpoint (restore_from).
// Checkpoint() captures it consistently (memtables flushed, SST files hard
// linked, so a checkpoint costs only what changed since the previous one).
// Each shard has its own store, so that a shard can checkpoint at its own
// barrier while the others go on; all of them share one SpillMemory.
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
  // A directory written by Checkpoint(): the store starts with its contents.
  std::string restore_from;

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
  // Writes a consistent copy of the store to `dir` (which must not exist):
  // memtables are flushed, SST files hard linked. new_bytes is the size of
  // the SST files the previous checkpoint of this store did not have.
  Status Checkpoint(const std::string& dir, uint64_t& new_bytes);

 private:
  SpillStore() = default;
  std::shared_ptr<SpillMemory> memory_;
  std::set<std::string> last_checkpoint_files_;
  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::WriteOptions write_options_;
  rocksdb::ReadOptions read_options_;
};

// Maps a RocksDB status to ours (exhaustive over rocksdb::Status::Code).
Status FromRocksDb(const rocksdb::Status& s, const std::string& context);

}  // namespace ctrjoin
