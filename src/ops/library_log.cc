#include "src/ops/library_log.h"

#include <spdlog/spdlog.h>

#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace ctrjoin {

namespace {

struct Repeats {
  std::chrono::steady_clock::time_point window_start;
  int logged = 0;      // in the current window
  int suppressed = 0;  // in the current window
};

std::mutex& Mutex() {
  static std::mutex mu;
  return mu;
}

std::map<std::pair<std::string, std::string>, Repeats>& Counters() {
  static std::map<std::pair<std::string, std::string>, Repeats> counters;
  return counters;
}

// A library line may end in a newline and carry control bytes: one line out.
std::string OneLine(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  std::string out(text);
  for (char& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

}  // namespace

void LibraryLog::Log(std::string_view library, std::string_view topic,
                     spdlog::level::level_enum level, std::string_view text) {
  if (!spdlog::should_log(level)) return;
  int suppressed_before = 0;
  {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(Mutex());
    Repeats& r = Counters()[{std::string(library), std::string(topic)}];
    if (now - r.window_start >= kWindow) {
      suppressed_before = r.suppressed;
      r = Repeats{now, 0, 0};
    }
    if (r.logged >= kBurst) {
      ++r.suppressed;
      return;
    }
    ++r.logged;
  }
  if (suppressed_before > 0) {
    spdlog::log(level, "{}: {} ({} similar lines suppressed before this one)", library,
                OneLine(text), suppressed_before);
  } else {
    spdlog::log(level, "{}: {}", library, OneLine(text));
  }
}

spdlog::level::level_enum LibraryLog::FromSyslog(int severity) {
  if (severity <= 3) return spdlog::level::err;   // emergency, alert, critical, error
  if (severity == 4) return spdlog::level::warn;  // warning
  if (severity <= 6) return spdlog::level::info;  // notice, informational
  return spdlog::level::debug;
}

}  // namespace ctrjoin
