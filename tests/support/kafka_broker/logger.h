#pragma once
// Leveled logging for the test broker, to stderr or to the embedder's sink
// (BrokerOptions::log_sink). Owned by BrokerCore and
// shared by pointer with the components it composes; used on the event-loop
// thread (and by TestBroker on its caller's thread for start/stop events).

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <utility>

namespace ctrjoin::testbroker {

class Logger {
 public:
  // 0 = warnings only, 1 = info, 2 = debug (see BrokerOptions::log_level).
  using Sink = std::function<void(int level, const std::string& message)>;
  explicit Logger(int level, Sink sink = {}) : level_(level), sink_(std::move(sink)) {}

  template <typename... Args>
  void Warn(fmt::format_string<Args...> format, Args&&... args) const {
    Print(0, format, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void Info(fmt::format_string<Args...> format, Args&&... args) const {
    if (level_ >= 1) Print(1, format, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void Debug(fmt::format_string<Args...> format, Args&&... args) const {
    if (level_ >= 2) Print(2, format, std::forward<Args>(args)...);
  }
  bool debug_enabled() const { return level_ >= 2; }

 private:
  template <typename... Args>
  void Print(int level, fmt::format_string<Args...> format, Args&&... args) const {
    if (sink_) {
      sink_(level, fmt::format(format, std::forward<Args>(args)...));
      return;
    }
    static constexpr const char* kTags[] = {"WARN", "INFO", "DEBUG"};
    const char* tag = kTags[level];
    auto now = std::chrono::system_clock::now();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
    std::string line = fmt::format("[testbroker {:%H:%M:%S}.{:03} {}] ",
                                   std::chrono::floor<std::chrono::seconds>(now), ms.count(), tag);
    line += fmt::format(format, std::forward<Args>(args)...);
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stderr);
  }

  int level_;
  Sink sink_;
};

}  // namespace ctrjoin::testbroker
