#pragma once
// LibraryLog: log lines of the libraries ctrjoin uses (librdkafka's log
// callback, Thrift's global output, RocksDB's info log) go through ctrjoin's
// logger, so stderr is one stream in one format (--log-format json: one JSON
// object per line). Each line reads "<library>: <text>" at a mapped level.
//
// Repeats are rate-limited per (library, topic) — the topic is what the
// library says the line is about, e.g. librdkafka's facility "FAIL": at most
// kBurst lines per kWindow; the next line of that topic after a window that
// suppressed some says how many ("(37 similar lines suppressed before this
// one)"). A broker outage thus costs a few lines every 10 s, not one per
// reconnect.
//
// Called from any thread (librdkafka's and Thrift's own threads included);
// a mutex guards the counters. Owns nothing but the counters.

#include <spdlog/common.h>

#include <chrono>
#include <string_view>

namespace ctrjoin {

class LibraryLog {
 public:
  static constexpr int kBurst = 5;
  static constexpr std::chrono::seconds kWindow{10};

  // Logs (or counts as suppressed) one library line.
  static void Log(std::string_view library, std::string_view topic, spdlog::level::level_enum level,
                  std::string_view text);

  // syslog severity (librdkafka: 0 emergency .. 7 debug) to a logger level.
  static spdlog::level::level_enum FromSyslog(int severity);
};

}  // namespace ctrjoin
