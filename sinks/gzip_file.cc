#include "sinks/gzip_file.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

namespace ctrjoin {

Status GzipFile(const std::filesystem::path& from, const std::filesystem::path& to) {
  const auto io_error = [](const std::string& what, const std::filesystem::path& path) {
    return Status::IoError(what + " " + path.string() + ": " + std::strerror(errno));
  };
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> in(std::fopen(from.c_str(), "rb"), std::fclose);
  if (!in) return io_error("reading", from);
  const int fd = ::open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return io_error("creating", to);
  // gzclose closes the descriptor it was given: hand it a duplicate and keep
  // fd for the fsync.
  const int gz_fd = ::dup(fd);
  gzFile gz = gz_fd < 0 ? nullptr : gzdopen(gz_fd, "wb6");
  if (gz == nullptr) {
    if (gz_fd >= 0) ::close(gz_fd);
    ::close(fd);
    return io_error("compressing into", to);
  }
  std::vector<char> buffer(1 << 20);
  bool ok = true;
  while (ok) {
    const size_t n = std::fread(buffer.data(), 1, buffer.size(), in.get());
    if (n > 0 && gzwrite(gz, buffer.data(), static_cast<unsigned>(n)) != static_cast<int>(n)) {
      ok = false;
    }
    if (n < buffer.size()) {
      ok = ok && std::ferror(in.get()) == 0;
      break;
    }
  }
  ok = gzclose(gz) == Z_OK && ok;
  ok = ok && ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  errno = saved;
  if (!ok) return io_error("compressing into", to);
  return Status::Ok();
}

}  // namespace ctrjoin
