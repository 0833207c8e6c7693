#include "txn/checkpoint_store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "src/core/fs_sync.h"

namespace ctrjoin {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kPrefix = "chk-";
constexpr std::string_view kInProgressSuffix = ".inprogress";

Status FsError(const std::error_code& ec, const std::string& what) {
  return Status::IoError("checkpoints: " + what + ": " + ec.message());
}

Status Errno(const std::string& what) {
  return Status::IoError("checkpoints: " + what + ": " + std::strerror(errno));
}

Status SyncPath(const fs::path& path, bool directory) {
  return FsyncPath(path, directory).WithContext("checkpoints");
}

// The epoch of a file name "chk-<digits>[.inprogress]"; 0 if it is not one.
uint64_t EpochOf(const std::string& name, bool& in_progress) {
  if (!name.starts_with(kPrefix)) return 0;
  std::string digits = name.substr(kPrefix.size());
  in_progress = digits.ends_with(kInProgressSuffix);
  if (in_progress) digits.resize(digits.size() - kInProgressSuffix.size());
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), ::isdigit)) return 0;
  return std::strtoull(digits.c_str(), nullptr, 10);
}

}  // namespace

Result<std::unique_ptr<CheckpointStore>> CheckpointStore::Open(const std::string& dir) {
  if (dir.empty()) return Status::InvalidArgument("checkpoint.dir: must not be empty");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return FsError(ec, "creating " + dir);
  std::unique_ptr<CheckpointStore> store(new CheckpointStore(dir));
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    bool in_progress = false;
    if (EpochOf(e.path().filename().string(), in_progress) != 0 && in_progress) {
      fs::remove_all(e.path(), ec);
      if (ec) return FsError(ec, "removing " + e.path().string());
    }
  }
  if (ec) return FsError(ec, "listing " + dir);
  return store;
}

Result<std::unique_ptr<CheckpointStore>> CheckpointStore::Inspect(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return Status::NotFound(fmt::format("checkpoint.dir: no checkpoint directory at {}", dir));
  }
  return std::unique_ptr<CheckpointStore>(new CheckpointStore(dir));
}

fs::path CheckpointStore::Final(uint64_t epoch) const {
  return dir_ / fmt::format("{}{:020d}", kPrefix, epoch);
}

fs::path CheckpointStore::InProgress(uint64_t epoch) const {
  return dir_ / fmt::format("{}{:020d}{}", kPrefix, epoch, kInProgressSuffix);
}

Status CheckpointStore::Complete(const CheckpointMeta& meta) const {
  const fs::path from = InProgress(meta.epoch);
  {
    std::ofstream out(from, std::ios::binary | std::ios::trunc);
    out << meta.Encode();
    out.close();
    if (!out) return Errno("writing " + from.string());
  }
  CTRJOIN_RETURN_IF_ERROR(SyncPath(from, false));
  std::error_code ec;
  fs::rename(from, Final(meta.epoch), ec);
  if (ec) return FsError(ec, "completing " + from.string());
  return SyncPath(dir_, true);
}

bool CheckpointStore::Exists(uint64_t epoch) const {
  std::error_code ec;
  return fs::exists(Final(epoch), ec);
}

Result<std::vector<uint64_t>> CheckpointStore::List() const {
  std::vector<uint64_t> epochs;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(dir_, ec)) {
    bool in_progress = false;
    const uint64_t epoch = EpochOf(e.path().filename().string(), in_progress);
    if (epoch != 0 && !in_progress) epochs.push_back(epoch);
  }
  if (ec) return FsError(ec, "listing " + dir_.string());
  std::sort(epochs.begin(), epochs.end());
  return epochs;
}

Result<CheckpointMeta> CheckpointStore::Load(uint64_t epoch) const {
  const fs::path path = Final(epoch);
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    return Status::InvalidArgument(fmt::format(
        "checkpoints: {} is a checkpoint of format 1 (RocksDB snapshots of each shard), which "
        "this version cannot restore (it restores format {}: changelogs). Finish the job with "
        "the version that wrote it, or start it over (an empty checkpoint.dir, a new output and "
        "consumer group)",
        path.string(), CheckpointMeta::kFormat));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("checkpoints: no checkpoint " + Final(epoch).string());
  std::stringstream text;
  text << in.rdbuf();
  Result<CheckpointMeta> meta = CheckpointMeta::Decode(text.str());
  if (!meta.ok()) return meta.status().WithContext(path.string());
  if (meta->epoch != epoch) {
    return Status::Corruption(fmt::format("{}: holds epoch {}", path.string(), meta->epoch));
  }
  return meta;
}

Status CheckpointStore::DiscardAbove(uint64_t epoch) const {
  std::error_code ec;
  std::vector<fs::path> doomed;
  for (const fs::directory_entry& e : fs::directory_iterator(dir_, ec)) {
    bool in_progress = false;
    if (EpochOf(e.path().filename().string(), in_progress) > epoch) doomed.push_back(e.path());
  }
  if (ec) return FsError(ec, "listing " + dir_.string());
  for (const fs::path& p : doomed) {
    fs::remove_all(p, ec);
    if (ec) return FsError(ec, "removing " + p.string());
  }
  return Status::Ok();
}

Result<uint64_t> CheckpointStore::Retain(uint64_t committed, uint32_t keep) const {
  Result<std::vector<uint64_t>> epochs = List();
  if (!epochs.ok()) return epochs.status();
  std::vector<uint64_t> old;
  for (uint64_t e : *epochs) {
    if (e <= committed) old.push_back(e);
  }
  std::error_code ec;
  for (size_t i = 0; i + keep < old.size(); ++i) {
    fs::remove_all(Final(old[i]), ec);
    if (ec) return FsError(ec, "removing " + Final(old[i]).string());
  }
  if (old.empty()) return uint64_t{0};
  return old.size() <= keep ? old.front() : old[old.size() - keep];
}

namespace {
constexpr const char* kPoolFile = "TRANSACTIONAL_IDS";
constexpr const char* kNothingCommittedFile = "NOTHING_COMMITTED";
}  // namespace

Result<int> CheckpointStore::RecordedPoolSize(const std::string& dir) {
  const fs::path path = fs::path(dir) / kPoolFile;
  std::error_code ec;
  if (!fs::exists(path, ec)) return 0;
  std::ifstream in(path);
  int pool = 0;
  if (!(in >> pool) || pool < 0) {
    return Status::Corruption(path.string() + ": not a transactional-id pool size");
  }
  return pool;
}

Status CheckpointStore::RecordPoolSize(const std::string& dir, int pool_size) {
  Result<int> recorded = RecordedPoolSize(dir);
  if (!recorded.ok()) return recorded.status();
  if (pool_size <= *recorded) return Status::Ok();
  const fs::path path = fs::path(dir) / kPoolFile;
  const fs::path tmp = fs::path(dir) / (std::string(kPoolFile) + ".tmp");
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << pool_size << "\n";
    if (!out.flush()) return Status::IoError("writing " + tmp.string());
  }
  CTRJOIN_RETURN_IF_ERROR(SyncPath(tmp, false));
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return FsError(ec, "renaming " + tmp.string());
  return SyncPath(dir, true);
}

bool CheckpointStore::NothingCommitted() const {
  std::error_code ec;
  return fs::exists(dir_ / kNothingCommittedFile, ec);
}

Status CheckpointStore::RecordNothingCommitted() const {
  const fs::path path = dir_ / kNothingCommittedFile;
  {
    std::ofstream out(path, std::ios::trunc);
    out << "no epoch of this job has committed yet\n";
    if (!out.flush()) return Status::IoError("writing " + path.string());
  }
  CTRJOIN_RETURN_IF_ERROR(SyncPath(path, false));
  return SyncPath(dir_, true);
}

Status CheckpointStore::ClearNothingCommitted() const {
  const fs::path path = dir_ / kNothingCommittedFile;
  std::error_code ec;
  if (!fs::remove(path, ec) && ec) return FsError(ec, "removing " + path.string());
  return SyncPath(dir_, true);
}

}  // namespace ctrjoin
