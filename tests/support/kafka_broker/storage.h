#pragma once
// File helpers for the broker's optional data directory: an append-only file
// (one per partition log) and whole-file reads and atomic replacement for the
// small state files. fsync is deliberately skipped: the fixture needs to
// survive a broker restart, not a machine crash.
//
// Used on the event-loop thread, and during TestBroker::Start on the caller's
// thread before the loop starts.

#include <cstdint>
#include <string>

#include "src/core/status.h"
#include "tests/support/kafka_broker/wire.h"

namespace ctrjoin::testbroker {

// An open file that only grows. Owns its descriptor.
class AppendOnlyFile {
 public:
  // Opens (creating if needed) |path| for appending.
  static Result<AppendOnlyFile> Open(const std::string& path);

  AppendOnlyFile(AppendOnlyFile&& other) noexcept;
  AppendOnlyFile& operator=(AppendOnlyFile&& other) noexcept;
  AppendOnlyFile(const AppendOnlyFile&) = delete;
  AppendOnlyFile& operator=(const AppendOnlyFile&) = delete;
  ~AppendOnlyFile();

  // Appends all of |data| or, on failure, leaves the file as it was.
  Status Append(Bytes data);
  // Cuts the file to |size| bytes (drops a torn tail found during recovery).
  Status Truncate(std::uint64_t size);
  const std::string& path() const { return path_; }

 private:
  AppendOnlyFile(int fd, std::string path, std::uint64_t size)
      : fd_(fd), path_(std::move(path)), size_(size) {}

  int fd_ = -1;
  std::string path_;
  std::uint64_t size_ = 0;  // bytes in the file
};

// The whole content of |path|; NotFound if it does not exist.
Result<std::string> ReadWholeFile(const std::string& path);

// Replaces |path| with |contents| via "<path>.tmp" and rename.
Status WriteFileAtomically(const std::string& path, const std::string& contents);

// Creates |path| and its parents.
Status MakeDirectories(const std::string& path);

}  // namespace ctrjoin::testbroker
