#include "src/ops/prometheus.h"

#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

#include "src/core/clock.h"

namespace ctrjoin {

namespace {

// Initialised when the binary is loaded, i.e. as the process starts.
const int64_t kProcessStartMs = WallClockMs();

std::string Number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);  // shortest form that reads back exactly
}

// The standard process_* families of Prometheus' client libraries, from
// /proc/self (Linux); a figure that cannot be read is left out.
void WriteProcessFamilies(Exposition& e) {
  // /proc/self/stat: utime and stime (fields 14 and 15, in clock ticks)
  // follow the parenthesised command name, which may hold spaces.
  std::ifstream stat("/proc/self/stat");
  std::string line;
  if (std::getline(stat, line)) {
    const size_t close = line.rfind(')');
    std::istringstream rest(close == std::string::npos ? "" : line.substr(close + 1));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    int read = 2;  // fields 1 (pid) and 2 (comm) end at the ')'
    while (read < 15 && rest >> field) {
      ++read;
      if (read == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
      if (read == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
    }
    const long ticks = sysconf(_SC_CLK_TCK);
    if (read == 15 && ticks > 0) {
      e.Single("process_cpu_seconds_total", "counter", "User and system CPU time, in seconds.",
               static_cast<double>(utime + stime) / static_cast<double>(ticks));
    }
  }
  std::ifstream statm("/proc/self/statm");
  unsigned long long size_pages = 0, resident_pages = 0;
  if (statm >> size_pages >> resident_pages) {
    const auto page = static_cast<unsigned long long>(sysconf(_SC_PAGESIZE));
    e.Single("process_resident_memory_bytes", "gauge", "Resident memory size, in bytes.",
             static_cast<uint64_t>(resident_pages * page));
    e.Single("process_virtual_memory_bytes", "gauge", "Virtual memory size, in bytes.",
             static_cast<uint64_t>(size_pages * page));
  }
  std::error_code ec;
  uint64_t fds = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++fds;
  }
  if (!ec) e.Single("process_open_fds", "gauge", "Open file descriptors.", fds);
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    e.Single("process_max_fds", "gauge", "The limit on open file descriptors.",
             static_cast<uint64_t>(limit.rlim_cur));
  }
  e.Single("process_start_time_seconds", "gauge",
           "When the process started, in seconds since the Unix epoch.", Seconds(kProcessStartMs));
}

}  // namespace

int64_t ProcessStartMs() { return kProcessStartMs; }

void Exposition::Family(std::string_view name, std::string_view type, std::string_view help) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  Escape(help, /*quotes=*/false);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void Exposition::Sample(std::string_view name, std::initializer_list<Label> labels, double value) {
  Series(name, labels, {});
  out_ += ' ';
  out_ += Number(value);
  out_ += '\n';
}

void Exposition::Sample(std::string_view name, std::initializer_list<Label> labels,
                        uint64_t value) {
  Series(name, labels, {});
  fmt::format_to(std::back_inserter(out_), " {}\n", value);
}

void Exposition::Sample(std::string_view name, std::initializer_list<Label> labels, int64_t value) {
  Series(name, labels, {});
  fmt::format_to(std::back_inserter(out_), " {}\n", value);
}

void Exposition::Histogram(std::string_view name, std::initializer_list<Label> labels,
                           const LatencyHistogram& h) {
  const std::string bucket = std::string(name) + "_bucket";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < LatencyHistogram::kBuckets; ++i) {
    cumulative += h.bucket(i);
    const std::string le = i + 1 < LatencyHistogram::kBuckets
                               ? Number(LatencyHistogram::kBoundsMs[i] / 1000)
                               : std::string("+Inf");
    Series(bucket, labels, Label{"le", le});
    fmt::format_to(std::back_inserter(out_), " {}\n", cumulative);
  }
  Sample(std::string(name) + "_sum", labels, h.sum_seconds());
  // The buckets' total, not count(): the two may differ by a concurrent
  // Record, and +Inf must equal _count.
  Sample(std::string(name) + "_count", labels, cumulative);
}

void Exposition::Series(std::string_view name, std::initializer_list<Label> labels, Label extra) {
  out_ += name;
  if (labels.size() == 0 && extra.first.empty()) return;
  out_ += '{';
  bool first = true;
  auto add = [&](const Label& l) {
    if (!first) out_ += ',';
    first = false;
    out_ += l.first;
    out_ += "=\"";
    Escape(l.second, /*quotes=*/true);
    out_ += '"';
  };
  for (const Label& l : labels) add(l);
  if (!extra.first.empty()) add(extra);
  out_ += '}';
}

// HELP text escapes backslash and newline; label values also '"'.
void Exposition::Escape(std::string_view text, bool quotes) {
  for (char c : text) {
    switch (c) {
      case '\\': out_ += "\\\\"; break;
      case '\n': out_ += "\\n"; break;
      case '"': out_ += quotes ? "\\\"" : "\""; break;
      default: out_ += c;
    }
  }
}

std::string MetricRegistry::Render(int64_t now_ms) const {
  std::string out;
  out.reserve(32 << 10);
  Exposition e(out, now_ms);
  e.Single("ctrjoin_up", "gauge", "1: the ctrjoin process is up and serving metrics.", int64_t{1});
  e.Single("ctrjoin_process_start_time_seconds", "gauge",
           "When the process started, in seconds since the Unix epoch.", Seconds(kProcessStartMs));
  e.Family("ctrjoin_build_info", "gauge", "1, labelled with the version and the git commit built.");
  e.Sample("ctrjoin_build_info", {{"version", CTRJOIN_VERSION}, {"commit", CTRJOIN_COMMIT}},
           int64_t{1});
  WriteProcessFamilies(e);
  for (const Writer& w : writers_) w(e);
  return out;
}

}  // namespace ctrjoin
