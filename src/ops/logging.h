#pragma once
// Log output of the ctrjoin binary: spdlog's default logger on stderr, as
// readable text or as one JSON object per line (structured logs for log
// shippers): {"ts":"2026-11-21T10:00:00.123Z","level":"info","msg":"..."}.
// Called once from main's thread before anything logs.

#include <string>

#include "src/core/status.h"

namespace ctrjoin {

// format: "text" | "json"; level: trace | debug | info | warn | error.
// The message names the bad option.
Status ConfigureLogging(const std::string& format, const std::string& level);

// One JSON log line for a message (exposed for tests).
std::string JsonLogLine(const std::string& ts, const std::string& level, const std::string& msg);

}  // namespace ctrjoin
