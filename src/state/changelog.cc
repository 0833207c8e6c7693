#include "src/state/changelog.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <vector>

#include "src/core/crash_point.h"
#include "src/core/crc32c.h"
#include "src/core/fs_sync.h"
#include "src/core/state_codec.h"

namespace ctrjoin {

namespace fs = std::filesystem;

namespace {

constexpr size_t kHeaderBytes = 8;  // u32 length, u32 crc32c
// The shard thread hands its buffer over at markers, and in between once
// it holds this much, so that writing overlaps processing.
constexpr size_t kHandOffBytes = 1 << 20;
constexpr std::string_view kSuffix = ".log";

void PutFixed32At(std::string& out, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) out[at + i] = static_cast<char>(v >> (8 * i));
}

uint32_t ReadFixed32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

int64_t ReadFixed64Signed(std::string_view& in) {
  uint64_t v = 0;
  GetFixed64(in, v);
  return static_cast<int64_t>(v);
}

Status Errno(const std::string& what, const std::string& path) {
  return Status::IoError(fmt::format("changelog: {} {}: {}", what, path, std::strerror(errno)));
}

// Segments under dir, ascending; files that are not segments are ignored.
Result<std::vector<uint64_t>> ListSegments(const std::string& dir) {
  std::vector<uint64_t> out;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() != 12 + kSuffix.size() || !name.ends_with(kSuffix)) continue;
    if (!std::all_of(name.begin(), name.begin() + 12,
                     [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    out.push_back(std::stoull(name.substr(0, 12)));
  }
  if (ec) return Status::IoError(fmt::format("changelog: listing {}: {}", dir, ec.message()));
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::string ChangelogWriter::SegmentPath(uint64_t segment) const {
  return fmt::format("{}/{:012}{}", options_.dir, segment, kSuffix);
}

Result<std::unique_ptr<ChangelogWriter>> ChangelogWriter::Open(ChangelogOptions options) {
  if (options.dir.empty()) return Status::InvalidArgument("changelog: no directory");
  std::error_code ec;
  fs::create_directories(options.dir, ec);
  if (ec)
    return Status::IoError(fmt::format("changelog: creating {}: {}", options.dir, ec.message()));
  Result<std::vector<uint64_t>> existing = ListSegments(options.dir);
  if (!existing.ok()) return existing.status();
  if (!existing->empty()) {
    return Status::Internal(
        fmt::format("changelog: {} already holds segments; a writer starts a new log", options.dir),
        Effect::kNoEffect);
  }
  std::unique_ptr<ChangelogWriter> w(new ChangelogWriter(std::move(options)));
  CTRJOIN_RETURN_IF_ERROR(w->OpenSegment(0));
  // The directory's own entry, in its parent, as well as the segment's.
  CTRJOIN_RETURN_IF_ERROR(FsyncPath(fs::path(w->options_.dir).parent_path(), true));
  w->io_ = std::thread([raw = w.get()] { raw->IoLoop(); });
  return w;
}

std::unique_ptr<ChangelogWriter> ChangelogWriter::OpenOutbox() {
  return std::unique_ptr<ChangelogWriter>(new ChangelogWriter(ChangelogOptions{}, true));
}

ChangelogWriter::~ChangelogWriter() {
  if (!buffer_.empty() && !outbox_mode_) HandOff(Chunk{std::move(buffer_), 0, false});
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (io_.joinable()) io_.join();
  if (fd_ >= 0) ::close(fd_);
}

size_t ChangelogWriter::BeginRecord(char type) {
  const size_t at = buffer_.size();
  buffer_.append(kHeaderBytes, '\0');
  buffer_.push_back(type);
  return at;
}

void ChangelogWriter::EndRecord(size_t at) {
  const size_t length = buffer_.size() - at - kHeaderBytes;
  PutFixed32At(buffer_, at, static_cast<uint32_t>(length));
  PutFixed32At(
      buffer_, at + 4,
      Crc32c(reinterpret_cast<const uint8_t*>(buffer_.data() + at + kHeaderBytes), length));
  segment_size_ += buffer_.size() - at;
  appended_ += buffer_.size() - at;
}

void ChangelogWriter::Put(uint64_t key, int64_t horizon, std::string_view head,
                          std::string_view tail) {
  const size_t at = BeginRecord('p');
  PutFixed64(buffer_, key);
  PutFixed64(buffer_, static_cast<uint64_t>(horizon));
  buffer_.append(head);
  buffer_.append(tail);
  EndRecord(at);
  segment_horizon_ = std::max(segment_horizon_, horizon);
  outbox_horizon_ = std::max(outbox_horizon_, horizon);
  if (buffer_.size() >= (outbox_mode_ ? kOutboxChunkBytes : kHandOffBytes)) {
    HandOff(Chunk{TakeBuffer(), 0, false});
  }
}

std::string ChangelogWriter::TakeBuffer() {
  std::string full = std::exchange(buffer_, {});
  // The next one starts at its usual size rather than growing to it again.
  const size_t usual = outbox_mode_ ? kOutboxChunkBytes : kHandOffBytes;
  buffer_.reserve(usual + usual / 4);
  return full;
}

Result<ChangelogPosition> ChangelogWriter::Mark(uint64_t epoch, int64_t watermark) {
  const size_t record = BeginRecord('m');
  PutFixed64(buffer_, epoch);
  PutFixed64(buffer_, static_cast<uint64_t>(watermark));
  EndRecord(record);
  const ChangelogPosition at{segment_, segment_size_};
  if (outbox_mode_) {
    outbox_.push_back({TakeBuffer(),
                       std::exchange(outbox_horizon_, std::numeric_limits<int64_t>::min()),
                       watermark});
    return at;
  }
  const bool roll = segment_size_ >= options_.segment_bytes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!error_.ok()) return error_;
    markers_.push_back(Marker{epoch, watermark});
    if (roll) closed_.push_back(Closed{segment_, epoch, segment_horizon_});
  }
  HandOff(Chunk{TakeBuffer(), epoch, roll});
  if (roll) {
    ++segment_;
    segment_size_ = 0;
    segment_horizon_ = std::numeric_limits<int64_t>::min();
  }
  return at;
}

void ChangelogWriter::HandOff(Chunk chunk) {
  if (outbox_mode_) {
    outbox_.push_back({std::move(chunk.bytes),
                       std::exchange(outbox_horizon_, std::numeric_limits<int64_t>::min()),
                       {}});
    return;
  }
  std::unique_lock<std::mutex> lock(mu_);
  // Backpressure: the disk is slower than the shard; holding more in memory
  // would only grow the process past its budget.
  cv_.wait(lock, [&] {
    return queued_bytes_ < options_.max_queued_bytes || !error_.ok() || queue_.empty();
  });
  queued_bytes_ += chunk.bytes.size();
  queue_.push_back(std::move(chunk));
  cv_.notify_all();
}

Status ChangelogWriter::WaitDurable(uint64_t epoch) {
  if (outbox_mode_) return Status::Ok();  // durable with the epoch's transaction
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return durable_epoch_ >= epoch || !error_.ok(); });
  return error_;
}

Status ChangelogWriter::OpenSegment(uint64_t segment) {
  const std::string path = SegmentPath(segment);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("creating", path);
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
  // A marker in this segment is durable only with the segment's name.
  return FsyncPath(options_.dir, true);
}

Status ChangelogWriter::WriteChunk(const Chunk& chunk) {
  const char* p = chunk.bytes.data();
  size_t left = chunk.bytes.size();
  // In two halves, with the crash tests' hook between them: a kill there
  // leaves a torn record behind, as a kill during a write can.
  size_t half = left / 2;
  while (left > 0) {
    const size_t n = half > 0 ? half : left;
    const ssize_t w = ::write(fd_, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return Errno("writing", SegmentPath(writing_));
    p += w;
    left -= static_cast<size_t>(w);
    if (half > 0) {
      half -= std::min(half, static_cast<size_t>(w));
      if (half == 0) CrashPoint("changelog_write");
    }
  }
  if (chunk.sync_epoch != 0 && ::fdatasync(fd_) != 0)
    return Errno("syncing", SegmentPath(writing_));
  return Status::Ok();
}

void ChangelogWriter::IoLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return !queue_.empty() || stopping_; });
    if (queue_.empty()) return;
    Chunk chunk = std::move(queue_.front());
    queue_.pop_front();
    const bool failed = !error_.ok();
    lock.unlock();
    // After a failure nothing more is written: the log ends where it broke.
    Status st = failed ? error_ : WriteChunk(chunk);
    if (st.ok() && chunk.roll) st = OpenSegment(++writing_);
    lock.lock();
    queued_bytes_ -= chunk.bytes.size();
    if (!st.ok() && error_.ok()) {
      error_ = st;
      spdlog::error("{}", st.ToString());
    }
    if (st.ok() && chunk.sync_epoch != 0) durable_epoch_ = chunk.sync_epoch;
    cv_.notify_all();
  }
}

Status ChangelogWriter::Release(uint64_t epoch) {
  std::vector<uint64_t> doomed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto marker = std::find_if(markers_.begin(), markers_.end(),
                               [&](const Marker& m) { return m.epoch == epoch; });
    if (marker == markers_.end()) return Status::Ok();  // not this log's epoch
    const int64_t wm = marker->watermark;
    const bool final = wm == std::numeric_limits<int64_t>::max();
    for (const Closed& c : closed_) {
      if (c.last_epoch < epoch && (final || c.max_horizon < wm)) doomed.push_back(c.segment);
    }
    markers_.erase(markers_.begin(), marker);
  }
  // Forgotten only once deleted: a failed deletion is tried again next time.
  for (uint64_t segment : doomed) {
    CrashPoint("changelog_delete");
    std::error_code ec;
    fs::remove(SegmentPath(segment), ec);
    if (ec) {
      return Status::IoError(
          fmt::format("changelog: deleting {}: {}", SegmentPath(segment), ec.message()));
    }
    std::lock_guard<std::mutex> lock(mu_);
    std::erase_if(closed_, [&](const Closed& c) { return c.segment == segment; });
  }
  return Status::Ok();
}

namespace {
Status ReadSegment(const std::string& path, std::string& data) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return Errno("opening", path);
  data.resize(static_cast<size_t>(in.tellg()));
  in.seekg(0);
  if (!in.read(data.data(), static_cast<std::streamsize>(data.size()))) {
    return Errno("reading", path);
  }
  return Status::Ok();
}
}  // namespace

Status ReadChangelog(const std::string& dir, uint64_t epoch,
                     const std::function<Status(const ChangelogRecord&)>& on_record) {
  Result<std::vector<uint64_t>> segments = ListSegments(dir);
  if (!segments.ok()) return segments.status();
  std::string data;
  for (size_t i = 0; i < segments->size(); ++i) {
    const uint64_t segment = (*segments)[i];
    const std::string path = fmt::format("{}/{:012}{}", dir, segment, kSuffix);
    CTRJOIN_RETURN_IF_ERROR(ReadSegment(path, data));
    std::string_view rest(data);
    while (!rest.empty()) {
      const uint32_t length = rest.size() >= kHeaderBytes ? ReadFixed32(rest.data()) : 0;
      const uint32_t crc = rest.size() >= kHeaderBytes ? ReadFixed32(rest.data() + 4) : 0;
      const bool torn =
          length < 1 || rest.size() - std::min(rest.size(), kHeaderBytes) < length ||
          Crc32c(reinterpret_cast<const uint8_t*>(rest.data() + kHeaderBytes), length) != crc;
      if (torn) {
        if (i + 1 == segments->size() && epoch != kChangelogEnd) break;  // the tail a kill left
        return Status::Corruption(
            fmt::format("changelog {}: a damaged record at byte {} before the marker of epoch {}",
                        path, data.size() - rest.size(), epoch));
      }
      std::string_view body = rest.substr(kHeaderBytes, length);
      ChangelogRecord r;
      r.type = body.front();
      body.remove_prefix(1);
      if (body.size() < 16 || (r.type != 'p' && r.type != 'm')) {
        return Status::Corruption(fmt::format("changelog {}: undecodable record", path));
      }
      uint64_t first = 0;
      GetFixed64(body, first);
      r.key_or_epoch = first;
      r.horizon_or_watermark = ReadFixed64Signed(body);
      r.entry = body;
      r.at = ChangelogLocation{segment, static_cast<uint64_t>(body.data() - data.data()),
                               static_cast<uint32_t>(body.size())};
      rest.remove_prefix(kHeaderBytes + length);
      CTRJOIN_RETURN_IF_ERROR(on_record(r));
      if (r.type == 'm' && r.key_or_epoch == epoch) return Status::Ok();
    }
  }
  if (epoch == kChangelogEnd) return Status::Ok();
  return Status::NotFound(fmt::format(
      "changelog {}: ends before the marker of epoch {} (segments missing or torn before it)", dir,
      epoch));
}

Status ReadChangelogEntries(
    const std::string& dir, const std::vector<ChangelogLocation>& locations,
    const std::function<Status(size_t index, std::string_view entry)>& on_entry) {
  std::string data;
  uint64_t loaded = UINT64_MAX;
  for (size_t i = 0; i < locations.size(); ++i) {
    const ChangelogLocation& at = locations[i];
    const std::string path = fmt::format("{}/{:012}{}", dir, at.segment, kSuffix);
    if (at.segment != loaded) {
      CTRJOIN_RETURN_IF_ERROR(ReadSegment(path, data));
      loaded = at.segment;
    }
    if (at.offset + at.size > data.size()) {
      return Status::Corruption(fmt::format("changelog {}: shorter than at the first read", path));
    }
    CTRJOIN_RETURN_IF_ERROR(on_entry(i, std::string_view(data).substr(at.offset, at.size)));
  }
  return Status::Ok();
}

uint64_t ChangelogDiskBytes(const std::string& dir) {
  uint64_t bytes = 0;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    if (e.path().extension() == kSuffix) bytes += e.file_size(ec);
  }
  return bytes;
}

namespace {
std::string GenerationDir(const std::string& root, uint64_t generation) {
  return fmt::format("{}/gen-{}", root, generation);
}
}  // namespace

Result<std::unique_ptr<ShardChangelogs>> ShardChangelogs::Open(
    const std::string& root, uint32_t shards, uint64_t restored,
    const std::map<uint64_t, uint64_t>& kept, const ChangelogOptions& options) {
  std::unique_ptr<ShardChangelogs> logs(new ShardChangelogs());
  logs->root_ = root;
  logs->kept_ = kept;
  // Above every generation a kept checkpoint names: never one of theirs.
  logs->generation_ = restored + 1;
  for (const auto& [epoch, g] : kept) logs->generation_ = std::max(logs->generation_, g + 1);
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) return Status::IoError(fmt::format("changelog: creating {}: {}", root, ec.message()));
  // Generations no complete checkpoint names: a run that died before its
  // first checkpoint completed, or whose checkpoints were all deleted.
  for (const fs::directory_entry& e : fs::directory_iterator(root, ec)) {
    const std::string name = e.path().filename().string();
    if (!name.starts_with("gen-")) continue;
    const bool named = std::any_of(kept.begin(), kept.end(), [&](const auto& k) {
      return name == fmt::format("gen-{}", k.second);
    });
    if (named) continue;
    fs::remove_all(e.path(), ec);
    if (ec) {
      return Status::IoError(
          fmt::format("changelog: removing {}: {}", e.path().string(), ec.message()));
    }
  }
  if (ec) return Status::IoError(fmt::format("changelog: listing {}: {}", root, ec.message()));
  for (uint32_t i = 0; i < shards; ++i) {
    ChangelogOptions o = options;
    o.dir = fmt::format("{}/shard-{}", GenerationDir(root, logs->generation_), i);
    auto w = ChangelogWriter::Open(o);
    if (!w.ok()) return w.status();
    logs->writers_.push_back(std::move(w).value());
  }
  CTRJOIN_RETURN_IF_ERROR(FsyncPath(root, true));
  return logs;
}

std::string ShardChangelogs::ReadDir(uint64_t generation, uint32_t shard) const {
  return fmt::format("{}/shard-{}", GenerationDir(root_, generation), shard);
}

Status ShardChangelogs::Release(uint64_t oldest_kept) {
  Status first;
  for (const auto& w : writers_) {
    Status st = w->Release(oldest_kept);
    if (first.ok()) first = st;
  }
  // Generations only checkpoints older than oldest_kept named are done.
  const size_t before = kept_.size();
  std::erase_if(kept_, [&](const auto& e) { return e.first < oldest_kept; });
  if (kept_.size() == before) return first;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(root_, ec)) {
    const std::string name = e.path().filename().string();
    if (!name.starts_with("gen-") || name == fmt::format("gen-{}", generation_)) continue;
    const bool named = std::any_of(kept_.begin(), kept_.end(), [&](const auto& k) {
      return name == fmt::format("gen-{}", k.second);
    });
    if (!named) fs::remove_all(e.path(), ec);
    if (ec) break;
  }
  if (ec && first.ok()) {
    first = Status::IoError(
        fmt::format("changelog: removing old generations under {}: {}", root_, ec.message()));
  }
  return first;
}

uint64_t ShardChangelogs::disk_bytes() const {
  uint64_t bytes = 0;
  for (uint32_t i = 0; i < writers_.size(); ++i) {
    bytes += ChangelogDiskBytes(ReadDir(generation_, i));
  }
  return bytes;
}

}  // namespace ctrjoin
