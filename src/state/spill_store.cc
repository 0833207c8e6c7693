#include "src/state/spill_store.h"

#include <rocksdb/cache.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/write_buffer_manager.h>

#include <algorithm>
#include <filesystem>

#include "src/state/rocksdb_logger.h"

namespace ctrjoin {

namespace fs = std::filesystem;

Status FromRocksDb(const rocksdb::Status& s, const std::string& context) {
  using C = rocksdb::Status::Code;
  const std::string msg = context + ": " + s.ToString();
  switch (s.code()) {
    case C::kOk: return Status::Ok();
    case C::kNotFound: return Status::NotFound(msg);
    case C::kCorruption: return Status::Corruption(msg);
    case C::kNotSupported: return Status::Internal(msg, Effect::kNoEffect);
    case C::kInvalidArgument: return Status::InvalidArgument(msg);
    case C::kIOError: return Status::IoError(msg);
    case C::kMergeInProgress: return Status::Internal(msg, Effect::kEffectUnknown);
    case C::kIncomplete: return Status::Internal(msg, Effect::kEffectUnknown);
    case C::kShutdownInProgress: return Status::Unavailable(msg, Effect::kEffectUnknown);
    case C::kTimedOut: return Status::TimedOut(msg);
    case C::kAborted: return Status::Internal(msg, Effect::kNoEffect);
    case C::kBusy: return Status::Unavailable(msg, Effect::kNoEffect);
    case C::kExpired: return Status::Internal(msg, Effect::kNoEffect);
    case C::kTryAgain: return Status::Unavailable(msg, Effect::kNoEffect);
    case C::kCompactionTooLarge: return Status::Internal(msg, Effect::kNoEffect);
    case C::kColumnFamilyDropped: return Status::Internal(msg, Effect::kNoEffect);
    case C::kMaxCode: return Status::Internal(msg);
  }
  return Status::Internal(msg);
}

Status SpillStoreOptions::Validate() const {
  if (dir.empty()) return Status::InvalidArgument("state.dir: must not be empty");
  if (rocksdb_memory_bytes < (8u << 20)) {
    return Status::InvalidArgument("state: RocksDB share of the memory budget is below 8 MiB");
  }
  return Status::Ok();
}

namespace {
int CacheShardBits(size_t bytes) {
  int bits = 0;
  while (bits < 6 && (bytes >> (bits + 1)) >= (size_t{16} << 20)) ++bits;
  return bits;
}
}  // namespace

SpillMemory::SpillMemory(size_t bytes)
    : bytes_(bytes),
      // At most 2^k shards of at least 16 MiB each: RocksDB does not keep a
      // block bigger than its shard, and a million spilled keys make filter
      // blocks of over a megabyte, which would then be read from disk on every
      // lookup of a spilled key.
      cache_(rocksdb::NewLRUCache(bytes, CacheShardBits(bytes))),
      write_buffers_(std::make_shared<rocksdb::WriteBufferManager>(bytes / 2, cache_)) {}

Result<std::unique_ptr<SpillStore>> SpillStore::Open(const SpillStoreOptions& options,
                                                     std::shared_ptr<SpillMemory> memory) {
  CTRJOIN_RETURN_IF_ERROR(options.Validate());
  const std::string path = (fs::path(options.dir) / options.name).string();
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) return Status::IoError("state.dir: cannot clear " + path + ": " + ec.message());
  // The directory itself too: RocksDB logs an error for a missing one.
  fs::create_directories(path, ec);
  if (ec) return Status::IoError("state.dir: cannot create " + path + ": " + ec.message());
  std::unique_ptr<SpillStore> store(new SpillStore());

  store->memory_ = memory != nullptr ? std::move(memory)
                                     : std::make_shared<SpillMemory>(options.rocksdb_memory_bytes);
  const size_t memory_bytes = store->memory_->bytes();

  rocksdb::BlockBasedTableOptions table;
  table.block_cache = store->memory_->cache();
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.cache_index_and_filter_blocks = true;
  table.cache_index_and_filter_blocks_with_high_priority = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;

  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.info_log = RocksDbLogger("spill " + path);
  db_options.write_buffer_manager = store->memory_->write_buffers();
  db_options.write_buffer_size = std::max<size_t>(memory_bytes / 8, 1 << 20);
  db_options.max_write_buffer_number = 3;
  db_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  db_options.max_background_jobs = 2;
  // Fresh files (spills of entries needed soon) are short-lived:
  // compressing them costs more CPU than it saves; older levels compress.
  db_options.compression_per_level = {rocksdb::kNoCompression, rocksdb::kNoCompression,
                                      rocksdb::kSnappyCompression};

  rocksdb::DB* raw = nullptr;
  CTRJOIN_RETURN_IF_ERROR(
      FromRocksDb(rocksdb::DB::Open(db_options, path, &raw), "opening " + path));
  store->db_.reset(raw);
  store->write_options_.disableWAL = true;
  return store;
}

SpillStore::~SpillStore() {
  if (db_) db_->Close().PermitUncheckedError();
}

Status SpillStore::Write(rocksdb::WriteBatch& batch) {
  return FromRocksDb(db_->Write(write_options_, &batch), "writing spilled state");
}

Status SpillStore::Get(const std::string& key, std::string& value, bool& found) {
  rocksdb::Status s = db_->Get(read_options_, key, &value);
  found = s.ok();
  if (s.IsNotFound()) return Status::Ok();
  return FromRocksDb(s, "reading spilled state");
}

std::unique_ptr<rocksdb::Iterator> SpillStore::NewIterator() {
  return std::unique_ptr<rocksdb::Iterator>(db_->NewIterator(read_options_));
}

size_t SpillStore::MemoryUsage() const { return memory_->Usage(); }

}  // namespace ctrjoin
