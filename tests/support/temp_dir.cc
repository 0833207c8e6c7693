#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>
#include <unistd.h>

namespace ctrjoin::test_support {

TempDir::TempDir() {
  const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = "ctrjoin";
  if (test != nullptr) name += std::string("-") + test->test_suite_name() + "." + test->name();
  name += "-" + std::to_string(::getpid());
  for (char& c : name) {
    if (c == '/') c = '_';  // parameterised test names
  }
  path_ = std::filesystem::temp_directory_path() / name;
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace ctrjoin::test_support
