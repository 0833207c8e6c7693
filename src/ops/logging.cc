#include "src/ops/logging.h"

#include <fmt/format.h>
#include <spdlog/formatter.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>
#include <memory>

namespace ctrjoin {

namespace {

void AppendEscaped(std::string& out, const char* data, size_t size) {
  for (size_t i = 0; i < size; ++i) {
    const unsigned char c = static_cast<unsigned char>(data[i]);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += fmt::format("\\u{:04x}", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
}

std::string UtcMillis(std::chrono::system_clock::time_point t) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03}Z", buf, ms % 1000);
}

// spdlog formatter writing JsonLogLine; called by the logger's sink, under
// the sink's lock.
class JsonFormatter : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto level = spdlog::level::to_string_view(msg.level);
    const std::string line =
        JsonLogLine(UtcMillis(msg.time), std::string(level.data(), level.size()),
                    std::string(msg.payload.data(), msg.payload.size()));
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

}  // namespace

std::string JsonLogLine(const std::string& ts, const std::string& level, const std::string& msg) {
  std::string out = "{\"ts\":\"" + ts + "\",\"level\":\"" + level + "\",\"msg\":\"";
  AppendEscaped(out, msg.data(), msg.size());
  out += "\"}\n";
  return out;
}

Status ConfigureLogging(const std::string& format, const std::string& level) {
  const spdlog::level::level_enum lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") {
    return Status::InvalidArgument(
        fmt::format("--log-level: expected trace, debug, info, warn or error, got '{}'", level));
  }
  if (format != "text" && format != "json") {
    return Status::InvalidArgument(
        fmt::format("--log-format: expected 'text' or 'json', got '{}'", format));
  }
  // Logs on stderr: stdout carries samples when sink.type is stdout.
  // Not registered by name, so that configuring twice replaces it.
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      "ctrjoin", std::make_shared<spdlog::sinks::stderr_color_sink_mt>()));
  spdlog::set_level(lvl);
  if (format == "text") {
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  } else {
    spdlog::set_formatter(std::make_unique<JsonFormatter>());
  }
  return Status::Ok();
}

}  // namespace ctrjoin
