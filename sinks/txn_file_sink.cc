#include "sinks/txn_file_sink.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "sinks/gzip_file.h"
#include "sinks/json_encoder.h"
#include "src/core/clock.h"
#include "src/core/fs_sync.h"

namespace ctrjoin {

namespace fs = std::filesystem;

namespace {

// In an epoch's staging directory: how much of the open part it committed.
constexpr const char* kPosition = "POSITION";
constexpr const char* kDeadLettersInProgress = "dead-letters.inprogress";
constexpr const char* kDeadLettersPreCommitted = "dead-letters.precommitted";
// How much of the open part Write lets accumulate before it starts the
// kernel's write-back of it.
constexpr uint64_t kWriteBehindBytes = 4 << 20;
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

// "part-<F>.inprogress" or "part-<F>.precommitted" -> F (nullopt: another name).
std::optional<EpochId> PartFirstEpoch(const std::string& name, std::string_view suffix) {
  if (!name.starts_with("part-") || !name.ends_with(suffix)) return std::nullopt;
  const std::string digits = name.substr(5, name.size() - 5 - suffix.size());
  char* end = nullptr;
  const uint64_t value = std::strtoull(digits.c_str(), &end, 10);
  if (digits.empty() || *end != '\0') return std::nullopt;
  return EpochId{value};
}

std::string PartName(EpochId first, std::string_view suffix) {
  return fmt::format("part-{}{}", EpochName(first), suffix);
}

// The highest epoch of the part-<20 digits>.* (or, written before parts
// rolled, epoch-<20 digits>.*) files in dir (0: none, or no dir).
Result<EpochId> HighestPublished(const fs::path& dir) {
  std::error_code ec;
  EpochId highest;
  if (!fs::exists(dir, ec)) return highest;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    for (const std::string_view prefix : {"part-", "epoch-"}) {
      if (!name.starts_with(prefix) || name.size() < prefix.size() + 20) continue;
      const std::string digits = name.substr(prefix.size(), 20);
      highest = std::max(highest, EpochId{std::strtoull(digits.c_str(), nullptr, 10)});
    }
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

// An epoch's POSITION: the open part's first epoch and its committed size.
struct Position {
  EpochId first;
  uint64_t bytes = 0;
};

// Reads <epoch dir>/POSITION; nullopt when there is none or it is torn (its
// pre-commit did not finish).
std::optional<Position> ReadPosition(const fs::path& dir) {
  std::ifstream in(dir / kPosition);
  unsigned long long first = 0, bytes = 0;
  std::string end;
  if (!(in >> first >> bytes >> end) || end != "end") return std::nullopt;
  return Position{EpochId{first}, bytes};
}

// Writes <epoch dir>/POSITION durably (the caller syncs the directory).
Status WritePosition(const fs::path& dir, const Position& position) {
  const fs::path path = dir / kPosition;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return Errno("creating " + path.string());
  const bool ok =
      std::fprintf(f, "%llu %llu end\n", static_cast<unsigned long long>(position.first.value),
                   static_cast<unsigned long long>(position.bytes)) > 0 &&
      std::fflush(f) == 0 && ::fsync(fileno(f)) == 0;
  std::fclose(f);
  if (!ok) return Errno("writing " + path.string());
  return Status::Ok();
}

// The closed part in an epoch's staging directory, if any.
std::optional<std::pair<EpochId, fs::path>> ClosedPart(const fs::path& dir) {
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (auto first = PartFirstEpoch(name, ".precommitted")) return std::pair(*first, e.path());
  }
  return std::nullopt;
}

Status Truncate(const fs::path& path, uint64_t bytes) {
  if (::truncate(path.c_str(), static_cast<off_t>(bytes)) != 0) {
    return Errno("cutting " + path.string() + " back to its committed " + std::to_string(bytes) +
                 " bytes");
  }
  return FsyncPath(path, /*directory=*/false);
}

}  // namespace

Status TransactionalFileSinkOptions::Validate() const {
  if (dir.empty()) return Status::InvalidArgument("sink.path: the output directory must be set");
  if (roll_ms < 0) {
    return Status::InvalidArgument("sink.roll_ms: must not be negative, got " +
                                   std::to_string(roll_ms));
  }
  return Status::Ok();
}

TransactionalFileSink::TransactionalFileSink(TransactionalFileSinkOptions options,
                                             std::unique_ptr<DirectoryLock> lock, uint64_t owner)
    : options_(std::move(options)),
      dir_(options_.dir),
      staging_(dir_ / "_staging"),
      lock_(std::move(lock)),
      owner_(owner) {}

fs::path TransactionalFileSink::InProgressPath(EpochId first) const {
  return staging_ / PartName(first, ".inprogress");
}

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
  return dir_ / fmt::format("part-{}.{}", EpochName(epoch),
                            FileExtension(options_.format, options_.compression));
}

fs::path TransactionalFileSink::CommittedDeadLettersPath(EpochId epoch) const {
  return dir_ / kDeadLettersDir / fmt::format("epoch-{}.jsonl", EpochName(epoch));
}

EpochId TransactionalFileSink::OpenEpoch() const {
  std::lock_guard lock(mu_);
  return open_;
}

Status TransactionalFileSink::OpenPart(EpochId first, uint64_t bytes) {
  const fs::path path = InProgressPath(first);
  file_ = std::fopen(path.c_str(), bytes == 0 ? "wb" : "ab");
  if (file_ == nullptr) return Errno("opening " + path.string());
  part_first_ = first;
  part_bytes_ = bytes;
  part_flushed_ = bytes;
  part_opened_ms_ = MonotonicMs();
  return Status::Ok();
}

Status TransactionalFileSink::WriteBehind() {
  if (part_bytes_ - part_flushed_ < kWriteBehindBytes) return Status::Ok();
  if (std::fflush(file_) != 0) return Errno("writing epoch " + EpochName(OpenEpoch()));
  // Only a hint: an error here shows again at the pre-commit's fsync.
  ::sync_file_range(fileno(file_), static_cast<off_t>(part_flushed_),
                    static_cast<off_t>(part_bytes_ - part_flushed_), SYNC_FILE_RANGE_WRITE);
  part_flushed_ = part_bytes_;
  return Status::Ok();
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
  if (file_ == nullptr) CTRJOIN_RETURN_IF_ERROR(OpenPart(epoch, 0));
  epoch_start_ = part_bytes_;
  std::lock_guard lock(mu_);
  open_ = epoch;
  return Status::Ok();
}

bool TransactionalFileSink::RollDue() const {
  if (end_of_output_ || (options_.roll_bytes == 0 && options_.roll_ms == 0)) return true;
  if (options_.roll_bytes > 0 && part_bytes_ >= options_.roll_bytes) return true;
  return options_.roll_ms > 0 && MonotonicMs() - part_opened_ms_ >= options_.roll_ms;
}

Status TransactionalFileSink::Write(std::span<const Sample> samples) {
  if (file_ == nullptr) return Status::InvalidArgument("write outside an open epoch");
  buffer_.clear();
  for (const Sample& s : samples) AppendSampleRecord(options_.format, s, buffer_);
  if (std::fwrite(buffer_.data(), 1, buffer_.size(), file_) != buffer_.size()) {
    return Errno("writing epoch " + EpochName(OpenEpoch()));
  }
  part_bytes_ += buffer_.size();
  return WriteBehind();
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

Status TransactionalFileSink::SyncFile(EpochId epoch, std::FILE* file) {
  if (std::fflush(file) != 0 || ::fsync(fileno(file)) != 0) {
    return Errno("flushing epoch " + EpochName(epoch));
  }
  return Status::Ok();
}

Status TransactionalFileSink::CloseFile(EpochId epoch, std::FILE*& file) {
  Status synced = SyncFile(epoch, file);
  std::fclose(file);
  file = nullptr;
  return synced;
}

Status TransactionalFileSink::PreCommit(EpochId epoch) {
  if (epoch != OpenEpoch() || file_ == nullptr) {
    return Status::InvalidArgument(
        fmt::format("pre-commit of epoch {}, which is not open", epoch.value));
  }
  const bool dead_letters = dead_letters_file_ != nullptr;
  const bool roll = RollDue();
  const EpochId first = part_first_;
  CTRJOIN_RETURN_IF_ERROR(roll ? CloseFile(epoch, file_) : SyncFile(epoch, file_));
  if (dead_letters) CTRJOIN_RETURN_IF_ERROR(CloseFile(epoch, dead_letters_file_));
  CTRJOIN_RETURN_IF_ERROR(CheckOwner());
  const fs::path dir = StagingDir(epoch);
  if (dead_letters && std::rename((dir / kDeadLettersInProgress).c_str(),
                                  (dir / kDeadLettersPreCommitted).c_str()) != 0) {
    return Errno("pre-committing the dead letters of epoch " + EpochName(epoch));
  }
  if (roll) {
    if (std::rename(InProgressPath(first).c_str(),
                    (dir / PartName(first, ".precommitted")).c_str()) != 0) {
      return Errno("pre-committing epoch " + EpochName(epoch));
    }
  } else {
    CTRJOIN_RETURN_IF_ERROR(WritePosition(dir, Position{first, part_bytes_}));
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
  CTRJOIN_RETURN_IF_ERROR(Publish(epoch, dir / kDeadLettersPreCommitted,
                                  CommittedDeadLettersPath(epoch), /*gzip=*/false));
  if (auto closed = ClosedPart(dir)) {
    CTRJOIN_RETURN_IF_ERROR(Publish(epoch, closed->second, CommittedPath(epoch),
                                    options_.compression == FileCompression::kGzip));
  }
  // The newest committed position stays until a later epoch commits: it
  // says how much of the open part recovery keeps.
  const bool keep = ReadPosition(dir).has_value();
  std::error_code ec;
  if (kept_.value != 0 && kept_ < epoch) {
    fs::remove_all(StagingDir(kept_), ec);
    if (ec) return FsError(ec, "cleaning staged epoch " + EpochName(kept_));
    kept_ = EpochId{};
  }
  if (keep) {
    kept_ = epoch;
    fs::remove(dir / kDeadLettersPreCommitted, ec);
    return Status::Ok();
  }
  // Already committed (a retry) or empty: only the staging directory is left.
  fs::remove_all(dir, ec);
  if (ec) return FsError(ec, "cleaning staged epoch " + EpochName(epoch));
  return Status::Ok();
}

Status TransactionalFileSink::Publish(EpochId epoch, const fs::path& staged,
                                      const fs::path& published, bool gzip) {
  std::error_code ec;
  if (!fs::exists(staged, ec) || fs::file_size(staged, ec) == 0) return Status::Ok();
  CTRJOIN_RETURN_IF_ERROR(CheckOwner());
  const fs::path parent = published.parent_path();
  if (fs::create_directories(parent, ec)) CTRJOIN_RETURN_IF_ERROR(SyncDir(parent.parent_path()));
  if (ec) return FsError(ec, "creating " + parent.string());
  fs::path from = staged;
  if (gzip) {
    from = staged.parent_path() / "compressed.tmp";
    CTRJOIN_RETURN_IF_ERROR(GzipFile(staged, from));
  }
  if (std::rename(from.c_str(), published.c_str()) != 0) {
    return Errno("committing epoch " + EpochName(epoch));
  }
  CTRJOIN_RETURN_IF_ERROR(SyncDir(parent));
  // The plain part once its compressed copy is published.
  if (gzip) fs::remove(staged, ec);
  return Status::Ok();
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
  // Only the open epoch has files open, and only the sink thread aborts it.
  if (was_open) {
    if (dead_letters_file_ != nullptr) {
      std::fclose(dead_letters_file_);
      dead_letters_file_ = nullptr;
    }
    if (file_ != nullptr) {
      // The part keeps what earlier epochs wrote; one this epoch began goes.
      std::fclose(file_);
      file_ = nullptr;
      CTRJOIN_RETURN_IF_ERROR(CheckOwner());
      if (part_first_ == epoch) {
        std::error_code ec;
        fs::remove(InProgressPath(part_first_), ec);
      } else {
        CTRJOIN_RETURN_IF_ERROR(Truncate(InProgressPath(part_first_), epoch_start_));
        CTRJOIN_RETURN_IF_ERROR(OpenPart(part_first_, epoch_start_));
      }
    }
  }
  // A newer owner may stage the same epoch number: leave its files alone.
  CTRJOIN_RETURN_IF_ERROR(CheckOwner());
  // A part this epoch closed may hold earlier, committed epochs: recovery
  // cuts it back, so it stays.
  if (auto closed = ClosedPart(StagingDir(epoch)); closed && closed->first < epoch) {
    return Status::Ok();
  }
  std::error_code ec;
  fs::remove_all(StagingDir(epoch), ec);
  if (ec) return FsError(ec, "aborting epoch " + EpochName(epoch));
  return Status::Ok();
}

Result<EpochId> TransactionalFileSink::Recover(EpochId last_checkpoint) {
  std::error_code ec;
  std::vector<EpochId> staged;
  std::vector<std::pair<EpochId, fs::path>> open_parts;
  for (const fs::directory_entry& e : fs::directory_iterator(staging_, ec)) {
    const std::string name = e.path().filename().string();
    if (name == kLockFile || name == kOwnerFile) continue;
    if (auto first = PartFirstEpoch(name, ".inprogress")) {
      open_parts.emplace_back(*first, e.path());
      continue;
    }
    char* end = nullptr;
    const uint64_t value = std::strtoull(name.c_str(), &end, 10);
    if (name.empty() || *end != '\0') {
      return Status::Corruption("unexpected entry in " + staging_.string() + ": " + name);
    }
    staged.push_back(EpochId{value});
  }
  if (ec) return FsError(ec, "listing " + staging_.string());
  std::sort(staged.begin(), staged.end());
  // The newest committed position: how much of a part that is still open
  // (or was closed by an epoch that will not commit) is committed.
  std::optional<Position> committed;
  EpochId committed_epoch;
  for (EpochId epoch : staged) {
    if (epoch > last_checkpoint) break;
    const fs::path dir = StagingDir(epoch);
    const std::optional<Position> position = ReadPosition(dir);
    const auto closed = ClosedPart(dir);
    if (!position && !closed && !fs::exists(dir / kDeadLettersPreCommitted)) {
      CTRJOIN_RETURN_IF_ERROR(Abort(epoch));  // never pre-committed
      continue;
    }
    if (position) committed = position;
    if (closed) committed.reset();  // that part is published whole
    committed_epoch = epoch;
    CTRJOIN_RETURN_IF_ERROR(Commit(epoch));
  }
  // Epochs above the checkpoint go; a part one of them closed holds the
  // committed epochs before it too, and is open again.
  for (EpochId epoch : staged) {
    if (epoch <= last_checkpoint) continue;
    if (auto closed = ClosedPart(StagingDir(epoch));
        closed && committed && closed->first == committed->first) {
      if (std::rename(closed->second.c_str(), InProgressPath(closed->first).c_str()) != 0) {
        return Errno("reopening " + closed->second.string());
      }
      open_parts.emplace_back(closed->first, InProgressPath(closed->first));
    }
    fs::remove_all(StagingDir(epoch), ec);
    if (ec) return FsError(ec, "aborting epoch " + EpochName(epoch));
  }
  bool reopened = false;
  for (const auto& [first, path] : open_parts) {
    if (committed && first == committed->first && !reopened) {
      CTRJOIN_RETURN_IF_ERROR(Truncate(path, committed->bytes));
      CTRJOIN_RETURN_IF_ERROR(OpenPart(first, committed->bytes));
      reopened = true;
    } else {
      fs::remove(path, ec);
      if (ec) return FsError(ec, "removing " + path.string());
    }
  }
  if (committed && !reopened) {
    return Status::Corruption(fmt::format(
        "{}: epoch {} committed {} bytes of the part begun at epoch {}, which is gone",
        staging_.string(), committed_epoch.value, committed->bytes, committed->first.value));
  }
  CTRJOIN_RETURN_IF_ERROR(SyncDir(staging_));
  // An epoch may have published dead letters only, or committed a position.
  Result<EpochId> samples = HighestPublished(dir_);
  if (!samples.ok()) return samples.status();
  Result<EpochId> dead_letters = HighestPublished(dir_ / kDeadLettersDir);
  if (!dead_letters.ok()) return dead_letters.status();
  return std::max({*samples, *dead_letters, committed_epoch});
}

}  // namespace ctrjoin
