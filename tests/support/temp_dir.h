#pragma once
// Test support: a fresh, empty directory for the running test (named after
// the test and the process), removed with its contents at destruction.
// Owned by one test; not thread-safe.

#include <filesystem>
#include <string>

namespace ctrjoin::test_support {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string string() const { return path_.string(); }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }
  // The path of `name` inside the directory, as a string.
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace ctrjoin::test_support
