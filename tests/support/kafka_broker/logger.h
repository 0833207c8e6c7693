#pragma once
// Leveled logging to stderr for the test broker. Owned by BrokerCore and
// shared by pointer with the components it composes; used on the event-loop
// thread (and by TestBroker on its caller's thread for start/stop events).

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <utility>

namespace ctrjoin::testbroker {

class Logger {
 public:
  // 0 = warnings only, 1 = info, 2 = debug (see BrokerOptions::log_level).
  explicit Logger(int level) : level_(level) {}

  template <typename... Args>
  void Warn(fmt::format_string<Args...> format, Args&&... args) const {
    Print("WARN", format, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void Info(fmt::format_string<Args...> format, Args&&... args) const {
    if (level_ >= 1) Print("INFO", format, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void Debug(fmt::format_string<Args...> format, Args&&... args) const {
    if (level_ >= 2) Print("DEBUG", format, std::forward<Args>(args)...);
  }
  bool debug_enabled() const { return level_ >= 2; }

 private:
  template <typename... Args>
  void Print(const char* tag, fmt::format_string<Args...> format, Args&&... args) const {
    auto now = std::chrono::system_clock::now();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
    std::string line = fmt::format("[testbroker {:%H:%M:%S}.{:03} {}] ",
                                   std::chrono::floor<std::chrono::seconds>(now), ms.count(), tag);
    line += fmt::format(format, std::forward<Args>(args)...);
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stderr);
  }

  int level_;
};

}  // namespace ctrjoin::testbroker
