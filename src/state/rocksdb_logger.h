#pragma once
// RocksDB's info log into ctrjoin's logger (LibraryLog) instead of a LOG file
// in each database directory: warnings and errors always, RocksDB's info
// lines only when the logger is at debug. Set as Options::info_log by every
// RocksDB ctrjoin opens (the spill store, the embedded feature store);
// RocksDB calls it from its own threads.

#include <rocksdb/env.h>

#include <memory>
#include <string>

namespace ctrjoin {

// `name` tells the databases apart in the log ("rocksdb: spill: ...").
std::shared_ptr<rocksdb::Logger> RocksDbLogger(std::string name);

}  // namespace ctrjoin
