#include "joins/embedded_feature_store.h"

#include <rocksdb/cache.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <simdjson.h>

#include <charconv>
#include <filesystem>
#include <fstream>

#include "src/core/state_codec.h"
#include "src/state/rocksdb_logger.h"
#include "src/state/spill_store.h"

namespace ctrjoin {

namespace {

std::string RowPrefix(const std::string& table, const std::string& row, const std::string& family) {
  std::string k;
  k.reserve(table.size() + row.size() + family.size() + 3);
  k.append(table).push_back('\0');
  k.append(row).push_back('\0');
  k.append(family).push_back('\0');
  return k;
}

void AppendNumberText(double d, std::string& out) {
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
  out.append(buf, end);
}

// The text form a JSON value is stored as; false for unsupported kinds.
bool CellText(simdjson::dom::element v, std::string& out) {
  out.clear();
  switch (v.type()) {
    case simdjson::dom::element_type::STRING:
      out = std::string(v.get_string().value_unsafe());
      return true;
    case simdjson::dom::element_type::INT64:
    case simdjson::dom::element_type::UINT64:
    case simdjson::dom::element_type::DOUBLE:
      AppendNumberText(v.get_double().value_unsafe(), out);
      return true;
    case simdjson::dom::element_type::ARRAY: {
      simdjson::dom::array array;
      if (v.get_array().get(array)) return false;
      out.push_back('[');
      bool first = true;
      for (simdjson::dom::element x : array) {
        double d = 0;
        if (x.get_double().get(d)) return false;
        if (!first) out.push_back(',');
        first = false;
        AppendNumberText(d, out);
      }
      out.push_back(']');
      return true;
    }
    default: return false;
  }
}

}  // namespace

Status EmbeddedFeatureStoreOptions::Validate() const {
  if (path.empty())
    return Status::InvalidArgument("feature_store.embedded.path: must not be empty");
  if (cache_mb == 0) return Status::InvalidArgument("feature_store.embedded.cache_mb: must be > 0");
  return Status::Ok();
}

Result<std::unique_ptr<EmbeddedFeatureStore>> EmbeddedFeatureStore::Open(
    const EmbeddedFeatureStoreOptions& options) {
  CTRJOIN_RETURN_IF_ERROR(options.Validate());
  std::error_code ec;
  if (!options.read_only) std::filesystem::create_directories(options.path, ec);
  if (ec) {
    return Status::InvalidArgument("feature_store.embedded.path: cannot create " + options.path +
                                   ": " + ec.message());
  }
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(options.cache_mb << 20);
  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.info_log = RocksDbLogger("feature store " + options.path);
  db_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  rocksdb::DB* raw = nullptr;
  if (options.read_only) {
    db_options.create_if_missing = false;
    CTRJOIN_RETURN_IF_ERROR(
        FromRocksDb(rocksdb::DB::OpenForReadOnly(db_options, options.path, &raw),
                    "feature store " + options.path + " (read-only, as a replay opens it)"));
  } else {
    CTRJOIN_RETURN_IF_ERROR(FromRocksDb(rocksdb::DB::Open(db_options, options.path, &raw),
                                        "feature store " + options.path));
  }
  std::unique_ptr<EmbeddedFeatureStore> store(new EmbeddedFeatureStore());
  store->path_ = options.path;
  store->db_.reset(raw);
  if (!options.load.empty() && !options.read_only) {
    Result<uint64_t> loaded = store->LoadJsonLines(options.load);
    if (!loaded.ok()) return loaded.status().WithContext("feature_store.embedded.load");
  }
  return store;
}

EmbeddedFeatureStore::~EmbeddedFeatureStore() {
  if (db_) db_->Close().PermitUncheckedError();
}

std::string EmbeddedFeatureStore::Describe() const { return "embedded feature store " + path_; }

Status EmbeddedFeatureStore::Put(const std::string& table, const std::string& row,
                                 const std::string& family, const std::string& column,
                                 int64_t version, const std::string& value) {
  for (const std::string* name : {&table, &row, &family, &column}) {
    if (name->find('\0') != std::string::npos) {
      return Status::InvalidArgument("feature names must not contain NUL bytes");
    }
  }
  std::string key = RowPrefix(table, row, family);
  key.append(column).push_back('\0');
  PutBigEndian64(key, ~static_cast<uint64_t>(version));
  return FromRocksDb(db_->Put(rocksdb::WriteOptions(), key, value), "feature store put");
}

Result<std::vector<FetchedRow>> EmbeddedFeatureStore::GetMultiple(
    const std::string& table, const std::string& family, std::span<const FeatureFetch> fetches,
    int max_versions) {
  std::vector<FetchedRow> rows(fetches.size());
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (size_t i = 0; i < fetches.size(); ++i) {
    const std::string prefix = RowPrefix(table, fetches[i].row, family);
    std::string current;
    int taken = 0;
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      std::string_view rest(it->key().data() + prefix.size(), it->key().size() - prefix.size());
      if (rest.size() < 9 || rest[rest.size() - 9] != '\0') {
        return Status::Corruption("feature store: malformed key under " + fetches[i].row);
      }
      const std::string_view column = rest.substr(0, rest.size() - 9);
      const auto version = static_cast<int64_t>(~ReadBigEndian64(rest.data() + rest.size() - 8));
      if (column != current) {
        current.assign(column);
        taken = 0;
      }
      if (version >= fetches[i].upper_exclusive || taken >= max_versions) continue;
      ++taken;
      rows[i].cells.push_back(FeatureCell{current, it->value().ToString(), version});
    }
    CTRJOIN_RETURN_IF_ERROR(FromRocksDb(it->status(), "feature store read"));
  }
  return rows;
}

Status EmbeddedFeatureStore::PutJson(std::string_view line) {
  Result<uint64_t> cells = PutJsonLine(line);
  return cells.ok() ? Status::Ok() : cells.status();
}

Result<uint64_t> EmbeddedFeatureStore::PutJsonLine(std::string_view line) {
  std::lock_guard<std::mutex> lock(parser_mu_);
  simdjson::dom::element doc;
  if (auto err = parser_.parse(line.data(), line.size()).get(doc)) {
    return Status::InvalidArgument(simdjson::error_message(err));
  }
  std::string_view table, row, family = "f";
  int64_t ts = 0;
  simdjson::dom::object columns;
  if (doc["table"].get(table)) return Status::InvalidArgument("table: missing or not a string");
  if (doc["row"].get(row)) return Status::InvalidArgument("row: missing or not a string");
  if (doc["ts"].get(ts)) return Status::InvalidArgument("ts: missing or not an integer");
  if (doc["columns"].get(columns)) {
    return Status::InvalidArgument("columns: missing or not an object");
  }
  if (doc["family"].error() != simdjson::NO_SUCH_FIELD && doc["family"].get(family)) {
    return Status::InvalidArgument("family: not a string");
  }
  uint64_t cells = 0;
  std::string text;
  for (auto [name, value] : columns) {
    if (!CellText(value, text)) {
      return Status::InvalidArgument("columns." + std::string(name) +
                                     ": expected a number, string or array of numbers");
    }
    CTRJOIN_RETURN_IF_ERROR(Put(std::string(table), std::string(row), std::string(family),
                                std::string(name), ts, text));
    ++cells;
  }
  return cells;
}

Result<uint64_t> EmbeddedFeatureStore::LoadJsonLines(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::InvalidArgument("cannot read " + path);
  uint64_t cells = 0;
  int64_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.empty()) continue;
    Result<uint64_t> written = PutJsonLine(line);
    if (!written.ok()) {
      return Status::InvalidArgument(path + ":" + std::to_string(line_no) + ": " +
                                     written.status().message());
    }
    cells += *written;
  }
  return cells;
}

}  // namespace ctrjoin
