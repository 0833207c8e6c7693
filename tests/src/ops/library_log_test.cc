// Library lines through our logger: prefixed, one line each, rate-limited per
// library and topic.
#include "src/ops/library_log.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <vector>

namespace ctrjoin {
namespace {

// Captures what the default logger writes while it lives.
class CapturedLog {
 public:
  CapturedLog() : sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1000)) {
    previous_ = spdlog::default_logger();
    auto logger = std::make_shared<spdlog::logger>("captured", sink_);
    logger->set_pattern("%l %v");
    logger->set_level(spdlog::level::info);
    spdlog::set_default_logger(logger);
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  std::vector<std::string> Lines() const { return sink_->last_formatted(); }

 private:
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
  std::shared_ptr<spdlog::logger> previous_;
};

TEST(LibraryLogTest, RepeatsArePassedOnlyUpToTheBurstPerTopic) {
  CapturedLog log;
  for (int i = 0; i < 100; ++i) {
    LibraryLog::Log("testlib", "FAIL", spdlog::level::err, "connect failed\n");
  }
  LibraryLog::Log("testlib", "OTHER", spdlog::level::warn, "a\nb");
  LibraryLog::Log("testlib", "DEBUGGY", spdlog::level::debug, "below the level");
  const std::vector<std::string> lines = log.Lines();
  ASSERT_EQ(lines.size(), static_cast<size_t>(LibraryLog::kBurst) + 1);
  for (int i = 0; i < LibraryLog::kBurst; ++i) {
    EXPECT_EQ(lines[i], "error testlib: connect failed\n") << "one line, newline stripped";
  }
  EXPECT_EQ(lines.back(), "warning testlib: a b\n") << "another topic has its own allowance";
}

TEST(LibraryLogTest, SyslogSeveritiesMapToLevels) {
  EXPECT_EQ(LibraryLog::FromSyslog(0), spdlog::level::err);
  EXPECT_EQ(LibraryLog::FromSyslog(3), spdlog::level::err);
  EXPECT_EQ(LibraryLog::FromSyslog(4), spdlog::level::warn);
  EXPECT_EQ(LibraryLog::FromSyslog(6), spdlog::level::info);
  EXPECT_EQ(LibraryLog::FromSyslog(7), spdlog::level::debug);
}

}  // namespace
}  // namespace ctrjoin
