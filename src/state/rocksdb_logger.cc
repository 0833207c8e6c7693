#include "src/state/rocksdb_logger.h"

#include <spdlog/spdlog.h>

#include <cstdarg>
#include <cstdio>
#include <utility>

#include "src/ops/library_log.h"

namespace ctrjoin {

namespace {

// Called by RocksDB's threads; owns only its name.
class LoggerToLibraryLog : public rocksdb::Logger {
 public:
  explicit LoggerToLibraryLog(std::string name)
      : rocksdb::Logger(spdlog::should_log(spdlog::level::debug)
                            ? rocksdb::InfoLogLevel::INFO_LEVEL
                            : rocksdb::InfoLogLevel::WARN_LEVEL),
        name_(std::move(name)) {}

  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel()) return;
    char text[1024];
    std::vsnprintf(text, sizeof text, format, ap);
    // Counted per level too: a burst of info lines must not hide a warning.
    LibraryLog::Log("rocksdb", name_ + "/" + std::to_string(static_cast<int>(level)), Level(level),
                    std::string(name_) + ": " + text);
  }

 private:
  static spdlog::level::level_enum Level(rocksdb::InfoLogLevel level) {
    switch (level) {
      case rocksdb::InfoLogLevel::DEBUG_LEVEL: return spdlog::level::trace;
      case rocksdb::InfoLogLevel::INFO_LEVEL:
      case rocksdb::InfoLogLevel::HEADER_LEVEL: return spdlog::level::debug;
      case rocksdb::InfoLogLevel::WARN_LEVEL: return spdlog::level::warn;
      default: return spdlog::level::err;  // ERROR, FATAL
    }
  }

  const std::string name_;
};

}  // namespace

std::shared_ptr<rocksdb::Logger> RocksDbLogger(std::string name) {
  return std::make_shared<LoggerToLibraryLog>(std::move(name));
}

}  // namespace ctrjoin
