#include "tests/support/kafka_broker/storage.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

namespace ctrjoin::testbroker {
namespace {

std::string Errno(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

Status WriteAll(int fd, const void* data, std::size_t len, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (len > 0) {
    ssize_t n = ::write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::IoError(Errno("writing", path));
    }
    p += n;
    len -= static_cast<std::size_t>(n);
  }
  return Status::Ok();
}

}  // namespace

Result<AppendOnlyFile> AppendOnlyFile::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IoError(Errno("opening", path), Effect::kNoEffect);
  off_t size = ::lseek(fd, 0, SEEK_END);
  if (size < 0) {
    Status st = Status::IoError(Errno("seeking", path), Effect::kNoEffect);
    ::close(fd);
    return st;
  }
  return AppendOnlyFile(fd, path, static_cast<std::uint64_t>(size));
}

AppendOnlyFile::AppendOnlyFile(AppendOnlyFile&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)), size_(other.size_) {}

AppendOnlyFile& AppendOnlyFile::operator=(AppendOnlyFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
    size_ = other.size_;
  }
  return *this;
}

AppendOnlyFile::~AppendOnlyFile() {
  if (fd_ >= 0) ::close(fd_);
}

Status AppendOnlyFile::Append(Bytes data) {
  Status st = WriteAll(fd_, data.data(), data.size(), path_);
  if (!st.ok()) {
    // Drop a partial write so later appends do not follow a torn batch.
    Status undo = Truncate(size_);
    return undo.ok() ? st : st.WithContext(undo.message());
  }
  size_ += data.size();
  return Status::Ok();
}

Status AppendOnlyFile::Truncate(std::uint64_t size) {
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
    return Status::IoError(Errno("truncating", path_));
  }
  size_ = size;
  return Status::Ok();
}

Result<std::string> ReadWholeFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound(path);
    return Status::IoError(Errno("opening", path), Effect::kNoEffect);
  }
  std::string out;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      Status st = Status::IoError(Errno("reading", path), Effect::kNoEffect);
      ::close(fd);
      return st;
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

Status WriteFileAtomically(const std::string& path, const std::string& contents) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IoError(Errno("creating", tmp), Effect::kNoEffect);
  Status st = WriteAll(fd, contents.data(), contents.size(), tmp);
  ::close(fd);
  if (!st.ok()) return st;
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Status::IoError(Errno("renaming", tmp));
  return Status::Ok();
}

Status MakeDirectories(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return Status::IoError("creating " + path + ": " + ec.message(), Effect::kNoEffect);
  return Status::Ok();
}

}  // namespace ctrjoin::testbroker
