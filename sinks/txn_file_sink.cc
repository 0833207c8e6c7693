#include "sinks/txn_file_sink.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "sinks/json_encoder.h"
#include "src/core/fs_sync.h"

namespace ctrjoin {

namespace fs = std::filesystem;

namespace {

constexpr const char* kInProgress = "samples.inprogress";
constexpr const char* kPreCommitted = "samples.precommitted";
constexpr const char* kDeadLettersInProgress = "dead-letters.inprogress";
constexpr const char* kDeadLettersPreCommitted = "dead-letters.precommitted";
// In <dir>: the committed epochs' dead letters.
constexpr const char* kDeadLettersDir = "dead-letters";
// In _staging beside the staged epochs: the lock, and the owner generation.
constexpr const char* kLockFile = "LOCK";
constexpr const char* kOwnerFile = "OWNER";

std::string EpochName(EpochId epoch) { return fmt::format("{:020d}", epoch.value); }

Status Errno(const std::string& what) {
  return Status::IoError(what + ": " + std::strerror(errno));
}

// Makes a directory's entries (renames, creations) durable.
Status SyncDir(const fs::path& dir) { return FsyncPath(dir, /*directory=*/true); }

Status FsError(const std::error_code& ec, const std::string& what) {
  return Status::IoError(what + ": " + ec.message());
}

// The highest epoch of the epoch-<20 digits>.* files in dir (0: none, or no dir).
Result<EpochId> HighestPublished(const fs::path& dir) {
  std::error_code ec;
  EpochId highest;
  if (!fs::exists(dir, ec)) return highest;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("epoch-", 0) != 0 || name.size() < 26) continue;
    highest = std::max(highest, EpochId{std::strtoull(name.substr(6, 20).c_str(), nullptr, 10)});
  }
  if (ec) return FsError(ec, "listing " + dir.string());
  return highest;
}

// The owner generation in `staging`, 0 when none was taken yet.
Result<uint64_t> ReadOwner(const fs::path& staging) {
  const fs::path path = staging / kOwnerFile;
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    if (ec) return FsError(ec, "reading " + path.string());
    return uint64_t{0};
  }
  std::ifstream in(path);
  if (!in) return Status::IoError("reading " + path.string() + ": cannot open it");
  std::string text;
  std::getline(in, text);
  char* end = nullptr;
  errno = 0;
  const unsigned long long owner = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0) {
    return Status::Corruption(path.string() + ": not an owner generation");
  }
  return uint64_t{owner};
}

// Writes the next owner generation durably (write, fsync, rename, fsync).
Result<uint64_t> TakeOwnership(const fs::path& staging) {
  Result<uint64_t> previous = ReadOwner(staging);
  if (!previous.ok()) return previous.status();
  const uint64_t owner = *previous + 1;
  const fs::path tmp = staging / (std::string(kOwnerFile) + ".tmp");
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return Errno("creating " + tmp.string());
  const bool ok = std::fprintf(f, "%llu\n", static_cast<unsigned long long>(owner)) > 0 &&
                  std::fflush(f) == 0 && ::fsync(fileno(f)) == 0;
  std::fclose(f);
  if (!ok) return Errno("writing " + tmp.string());
  if (std::rename(tmp.c_str(), (staging / kOwnerFile).c_str()) != 0) {
    return Errno("publishing " + tmp.string());
  }
  CTRJOIN_RETURN_IF_ERROR(SyncDir(staging));
  return owner;
}

}  // namespace

Status TransactionalFileSinkOptions::Validate() const {
  if (dir.empty()) return Status::InvalidArgument("sink.path: the output directory must be set");
  return Status::Ok();
}

TransactionalFileSink::TransactionalFileSink(TransactionalFileSinkOptions options,
                                             std::unique_ptr<DirectoryLock> lock, uint64_t owner)
    : options_(std::move(options)),
      dir_(options_.dir),
      staging_(dir_ / "_staging"),
      lock_(std::move(lock)),
      owner_(owner) {}

TransactionalFileSink::~TransactionalFileSink() {
  if (file_ != nullptr) std::fclose(file_);
  if (dead_letters_file_ != nullptr) std::fclose(dead_letters_file_);
}

Result<std::unique_ptr<TransactionalFileSink>> TransactionalFileSink::Open(
    const TransactionalFileSinkOptions& options) {
  CTRJOIN_RETURN_IF_ERROR(options.Validate());
  const fs::path staging = fs::path(options.dir) / "_staging";
  auto lock = DirectoryLock::Acquire(staging, "sink.path", options.lock_wait);
  if (!lock.ok()) return lock.status();
  // The staging directory's own entry is durable before anything is published.
  CTRJOIN_RETURN_IF_ERROR(SyncDir(options.dir).WithContext("sink.path"));
  Result<uint64_t> owner = TakeOwnership(staging);
  if (!owner.ok()) return owner.status().WithContext("sink.path");
  return std::unique_ptr<TransactionalFileSink>(
      new TransactionalFileSink(options, std::move(lock).value(), *owner));
}

Status TransactionalFileSink::CheckOwner() const {
  Result<uint64_t> owner = ReadOwner(staging_);
  if (!owner.ok()) return owner.status();
  if (*owner == owner_) return Status::Ok();
  return Status::Fenced(fmt::format(
      "sink.path: {} belongs to a newer instance (owner generation {}, this one {}); this "
      "instance stops without publishing",
      dir_.string(), *owner, owner_));
}

std::string TransactionalFileSink::Describe() const {
  return "transactional files in " + dir_.string();
}

fs::path TransactionalFileSink::StagingDir(EpochId epoch) const {
  return staging_ / EpochName(epoch);
}

fs::path TransactionalFileSink::CommittedPath(EpochId epoch) const {
  const char* ext = options_.format == SampleFormat::kJson ? "jsonl" : "tfrecord";
  return dir_ / fmt::format("epoch-{}.{}", EpochName(epoch), ext);
}

fs::path TransactionalFileSink::CommittedDeadLettersPath(EpochId epoch) const {
  return dir_ / kDeadLettersDir / fmt::format("epoch-{}.jsonl", EpochName(epoch));
}

EpochId TransactionalFileSink::OpenEpoch() const {
  std::lock_guard lock(mu_);
  return open_;
}

Status TransactionalFileSink::Begin(EpochId epoch) {
  if (const EpochId open = OpenEpoch(); open.value != 0) {
    return Status::InvalidArgument(
        fmt::format("epoch {} begun while {} is open", epoch.value, open.value));
  }
  CTRJOIN_RETURN_IF_ERROR(CheckOwner());
  std::error_code ec;
  fs::create_directories(StagingDir(epoch), ec);
  if (ec) return FsError(ec, "staging epoch " + EpochName(epoch));
  const fs::path path = StagingDir(epoch) / kInProgress;
  file_ = std::fopen(path.c_str(), "wb");
  if (file_ == nullptr) return Errno("creating " + path.string());
  std::lock_guard lock(mu_);
  open_ = epoch;
  return Status::Ok();
}

Status TransactionalFileSink::Write(std::span<const Sample> samples) {
  if (file_ == nullptr) return Status::InvalidArgument("write outside an open epoch");
  buffer_.clear();
  for (const Sample& s : samples) AppendSampleRecord(options_.format, s, buffer_);
  if (std::fwrite(buffer_.data(), 1, buffer_.size(), file_) != buffer_.size()) {
    return Errno("writing epoch " + EpochName(OpenEpoch()));
  }
  return Status::Ok();
}

Status TransactionalFileSink::WriteDeadLetter(const DeadLetter& letter) {
  if (file_ == nullptr) return Status::InvalidArgument("dead letter outside an open epoch");
  const EpochId epoch = OpenEpoch();
  if (dead_letters_file_ == nullptr) {
    const fs::path path = StagingDir(epoch) / kDeadLettersInProgress;
    dead_letters_file_ = std::fopen(path.c_str(), "wb");
    if (dead_letters_file_ == nullptr) return Errno("creating " + path.string());
  }
  buffer_.clear();
  AppendDeadLetterJson(letter, buffer_);
  buffer_ += '\n';
  if (std::fwrite(buffer_.data(), 1, buffer_.size(), dead_letters_file_) != buffer_.size()) {
    return Errno("writing the dead letters of epoch " + EpochName(epoch));
  }
  return Status::Ok();
}

Status TransactionalFileSink::CloseFile(EpochId epoch, std::FILE*& file) {
  const bool ok = std::fflush(file) == 0 && ::fsync(fileno(file)) == 0;
  const int saved = errno;
  std::fclose(file);
  file = nullptr;
  errno = saved;
  if (!ok) return Errno("flushing epoch " + EpochName(epoch));
  return Status::Ok();
}

Status TransactionalFileSink::PreCommit(EpochId epoch) {
  if (epoch != OpenEpoch() || file_ == nullptr) {
    return Status::InvalidArgument(
        fmt::format("pre-commit of epoch {}, which is not open", epoch.value));
  }
  const bool dead_letters = dead_letters_file_ != nullptr;
  CTRJOIN_RETURN_IF_ERROR(CloseFile(epoch, file_));
  if (dead_letters) CTRJOIN_RETURN_IF_ERROR(CloseFile(epoch, dead_letters_file_));
  CTRJOIN_RETURN_IF_ERROR(CheckOwner());
  const fs::path dir = StagingDir(epoch);
  if (dead_letters && std::rename((dir / kDeadLettersInProgress).c_str(),
                                  (dir / kDeadLettersPreCommitted).c_str()) != 0) {
    return Errno("pre-committing the dead letters of epoch " + EpochName(epoch));
  }
  if (std::rename((dir / kInProgress).c_str(), (dir / kPreCommitted).c_str()) != 0) {
    return Errno("pre-committing epoch " + EpochName(epoch));
  }
  CTRJOIN_RETURN_IF_ERROR(SyncDir(dir));
  CTRJOIN_RETURN_IF_ERROR(SyncDir(staging_));
  std::lock_guard lock(mu_);
  open_ = EpochId{};  // from here on the committer's
  return Status::Ok();
}

Status TransactionalFileSink::Commit(EpochId epoch) {
  // Committing the open epoch would delete its staging directory under the
  // sink thread's feet.
  if (epoch.value != 0 && epoch == OpenEpoch()) {
    return Status::InvalidArgument(
        fmt::format("commit of epoch {}, which is still open", epoch.value));
  }
  const fs::path dir = StagingDir(epoch);
  // The dead letters first: once the samples are visible, so are they.
  CTRJOIN_RETURN_IF_ERROR(
      Publish(epoch, dir / kDeadLettersPreCommitted, CommittedDeadLettersPath(epoch)));
  CTRJOIN_RETURN_IF_ERROR(Publish(epoch, dir / kPreCommitted, CommittedPath(epoch)));
  // Already committed (a retry) or empty: only the staging directory is left.
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec) return FsError(ec, "cleaning staged epoch " + EpochName(epoch));
  return Status::Ok();
}

Status TransactionalFileSink::Publish(EpochId epoch, const fs::path& staged,
                                      const fs::path& published) {
  std::error_code ec;
  if (!fs::exists(staged, ec) || fs::file_size(staged, ec) == 0) return Status::Ok();
  CTRJOIN_RETURN_IF_ERROR(CheckOwner());
  const fs::path parent = published.parent_path();
  if (fs::create_directories(parent, ec)) CTRJOIN_RETURN_IF_ERROR(SyncDir(parent.parent_path()));
  if (ec) return FsError(ec, "creating " + parent.string());
  if (std::rename(staged.c_str(), published.c_str()) != 0) {
    return Errno("committing epoch " + EpochName(epoch));
  }
  return SyncDir(parent);
}

Status TransactionalFileSink::Abort(EpochId epoch) {
  bool was_open = false;
  {
    std::lock_guard lock(mu_);
    if (epoch.value != 0 && epoch == open_) {
      was_open = true;
      open_ = EpochId{};
    }
  }
  // Only the open epoch has a file, and only the sink thread aborts it.
  if (was_open) {
    for (std::FILE** f : {&file_, &dead_letters_file_}) {
      if (*f == nullptr) continue;
      std::fclose(*f);
      *f = nullptr;
    }
  }
  // A newer owner may stage the same epoch number: leave its files alone.
  CTRJOIN_RETURN_IF_ERROR(CheckOwner());
  std::error_code ec;
  fs::remove_all(StagingDir(epoch), ec);
  if (ec) return FsError(ec, "aborting epoch " + EpochName(epoch));
  return Status::Ok();
}

Result<EpochId> TransactionalFileSink::Recover(EpochId last_checkpoint) {
  std::error_code ec;
  std::vector<EpochId> staged;
  for (const fs::directory_entry& e : fs::directory_iterator(staging_, ec)) {
    const std::string name = e.path().filename().string();
    if (name == kLockFile || name == kOwnerFile) continue;
    char* end = nullptr;
    const uint64_t value = std::strtoull(name.c_str(), &end, 10);
    if (name.empty() || *end != '\0') {
      return Status::Corruption("unexpected entry in " + staging_.string() + ": " + name);
    }
    staged.push_back(EpochId{value});
  }
  if (ec) return FsError(ec, "listing " + staging_.string());
  std::sort(staged.begin(), staged.end());
  for (EpochId epoch : staged) {
    if (epoch <= last_checkpoint && fs::exists(StagingDir(epoch) / kPreCommitted)) {
      CTRJOIN_RETURN_IF_ERROR(Commit(epoch));
    } else {
      CTRJOIN_RETURN_IF_ERROR(Abort(epoch));
    }
  }
  CTRJOIN_RETURN_IF_ERROR(SyncDir(staging_));
  // An epoch may have published dead letters only.
  Result<EpochId> samples = HighestPublished(dir_);
  if (!samples.ok()) return samples.status();
  Result<EpochId> dead_letters = HighestPublished(dir_ / kDeadLettersDir);
  if (!dead_letters.ok()) return dead_letters.status();
  return std::max(*samples, *dead_letters);
}

}  // namespace ctrjoin
