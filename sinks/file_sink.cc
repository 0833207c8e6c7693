#include "sinks/file_sink.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "sinks/gzip_file.h"
#include "sinks/json_encoder.h"
#include "src/core/clock.h"
#include "src/core/fs_sync.h"

namespace ctrjoin {

namespace {
constexpr size_t kBufferBytes = 1 << 20;
}

LineWriter::LineWriter(std::FILE* file, std::string name, bool owned)
    : file_(file), name_(std::move(name)), owned_(owned), durable_(false) {
  std::setvbuf(file_, nullptr, _IOFBF, kBufferBytes);
  struct stat st;
  durable_ = owned_ && ::fstat(fileno(file_), &st) == 0 && S_ISREG(st.st_mode);
}

LineWriter::~LineWriter() {
  if (owned_) std::fclose(file_);
}

Result<std::unique_ptr<LineWriter>> LineWriter::OpenFile(const std::string& path, bool append) {
  std::error_code ec;
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  std::FILE* f = std::fopen(path.c_str(), append ? "ab" : "wb");
  if (f == nullptr) {
    return Status::InvalidArgument("cannot open " + path + " for writing: " + std::strerror(errno));
  }
  return std::unique_ptr<LineWriter>(new LineWriter(f, path, true));
}

std::unique_ptr<LineWriter> LineWriter::Stdout() {
  return std::unique_ptr<LineWriter>(new LineWriter(stdout, "stdout", false));
}

std::unique_ptr<LineWriter> LineWriter::Stderr() {
  return std::unique_ptr<LineWriter>(new LineWriter(stderr, "stderr", false));
}

Status LineWriter::WriteLine(const std::string& line) {
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() ||
      std::fputc('\n', file_) == EOF) {
    return Status::IoError("writing " + name_ + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

Status LineWriter::Flush() {
  if (std::fflush(file_) != 0) {
    return Status::IoError("flushing " + name_ + ": " + std::strerror(errno));
  }
  if (durable_ && ::fsync(fileno(file_)) != 0) {
    return Status::IoError("fsync " + name_ + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

Status LineWriter::Write(std::string_view bytes) {
  if (std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size()) {
    return Status::IoError("writing " + name_ + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

Status FileSampleSink::Write(std::span<const Sample> samples) {
  buffer_.clear();
  for (const Sample& s : samples) AppendSampleRecord(format_, s, buffer_);
  return out_->Write(buffer_);
}

std::string FileSampleSink::Describe() const {
  return std::string(format_ == SampleFormat::kJson ? "JSON lines" : "TFRecords of tf.Example") +
         " to " + out_->name();
}

namespace fs = std::filesystem;

Result<std::unique_ptr<RolledFileSampleSink>> RolledFileSampleSink::Open(
    RolledFileSinkOptions options) {
  std::error_code ec;
  fs::create_directories(fs::path(options.dir) / "_staging", ec);
  if (ec)
    return Status::InvalidArgument("sink.path: cannot create " + options.dir + ": " + ec.message());
  // Numbers go on from the parts already there (an earlier run's).
  uint64_t next = 0;
  for (const fs::directory_entry& e : fs::directory_iterator(options.dir, ec)) {
    const std::string name = e.path().filename().string();
    if (!name.starts_with("part-") || name.size() < 25) continue;
    next = std::max<uint64_t>(next, std::strtoull(name.substr(5, 20).c_str(), nullptr, 10) + 1);
  }
  if (ec) return Status::IoError("listing " + options.dir + ": " + ec.message());
  return std::unique_ptr<RolledFileSampleSink>(new RolledFileSampleSink(std::move(options), next));
}

RolledFileSampleSink::RolledFileSampleSink(RolledFileSinkOptions options, uint64_t next)
    : options_(std::move(options)), next_(next) {}

RolledFileSampleSink::~RolledFileSampleSink() {
  if (file_ != nullptr) std::fclose(file_);
}

Status RolledFileSampleSink::Write(std::span<const Sample> samples) {
  const fs::path open = fs::path(options_.dir) / "_staging" / "part.inprogress";
  if (file_ == nullptr) {
    file_ = std::fopen(open.c_str(), "wb");
    if (file_ == nullptr)
      return Status::IoError("creating " + open.string() + ": " + std::strerror(errno));
    std::setvbuf(file_, nullptr, _IOFBF, kBufferBytes);
    bytes_ = 0;
    opened_ms_ = MonotonicMs();
  }
  buffer_.clear();
  for (const Sample& s : samples) AppendSampleRecord(options_.format, s, buffer_);
  if (std::fwrite(buffer_.data(), 1, buffer_.size(), file_) != buffer_.size()) {
    return Status::IoError("writing " + open.string() + ": " + std::strerror(errno));
  }
  bytes_ += buffer_.size();
  const bool full = options_.roll_bytes > 0 && bytes_ >= options_.roll_bytes;
  const bool old = options_.roll_ms > 0 && MonotonicMs() - opened_ms_ >= options_.roll_ms;
  return full || old ? Roll() : Status::Ok();
}

Status RolledFileSampleSink::Roll() {
  if (file_ == nullptr) return Status::Ok();
  const fs::path staging = fs::path(options_.dir) / "_staging";
  const fs::path open = staging / "part.inprogress";
  const bool ok = std::fflush(file_) == 0 && ::fsync(fileno(file_)) == 0;
  std::fclose(file_);
  file_ = nullptr;
  if (!ok) return Status::IoError("flushing " + open.string() + ": " + std::strerror(errno));
  fs::path from = open;
  if (options_.compression == FileCompression::kGzip) {
    from = staging / "part.gz.inprogress";
    CTRJOIN_RETURN_IF_ERROR(GzipFile(open, from));
  }
  const fs::path part =
      fs::path(options_.dir) /
      fmt::format("part-{:020d}.{}", next_, FileExtension(options_.format, options_.compression));
  if (std::rename(from.c_str(), part.c_str()) != 0) {
    return Status::IoError("publishing " + part.string() + ": " + std::strerror(errno));
  }
  ++next_;
  return FsyncPath(options_.dir, /*directory=*/true);
}

std::string RolledFileSampleSink::Describe() const {
  return std::string(options_.format == SampleFormat::kJson ? "JSON lines"
                                                            : "TFRecords of tf.Example") +
         " in rolled parts in " + options_.dir;
}

Status JsonLinesDeadLetterSink::Write(const DeadLetter& letter) {
  line_.clear();
  AppendDeadLetterJson(letter, line_);
  return out_->WriteLine(line_);
}

}  // namespace ctrjoin
