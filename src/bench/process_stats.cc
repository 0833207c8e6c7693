#include "src/bench/process_stats.h"

#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "src/bench/json_writer.h"

namespace ctrjoin::bench {

namespace fs = std::filesystem;

Usage Usage::Now() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return Usage{s(u.ru_utime) + s(u.ru_stime)};
}

namespace {

// Reads a "Name:   123 kB" line of /proc/self/status, in MiB.
double StatusMib(const char* name) {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind(name, 0) == 0 && line[std::strlen(name)] == ':') {
      return std::strtod(line.c_str() + std::strlen(name) + 1, nullptr) / 1024.0;
    }
  }
  return 0;
}

std::string FirstLine(const char* path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

}  // namespace

double PeakRssMib() { return StatusMib("VmHWM"); }
double CurrentRssMib() { return StatusMib("VmRSS"); }

StateSampler::StateSampler(const JoinMetrics* join, fs::path watch)
    : thread_([this, join, watch = std::move(watch)](std::stop_token stop) {
        const auto start = std::chrono::steady_clock::now();
        auto next_disk = start;
        auto take_disk = [&](std::chrono::steady_clock::time_point now) {
          if (watch.empty()) return;
          disk.push_back({std::chrono::duration<double>(now - start).count(), DirBytes(watch),
                          join->state_entries.Get()});
          next_disk = now + std::chrono::milliseconds(500);
        };
        while (!stop.stop_requested()) {
          Take(join);
          const auto now = std::chrono::steady_clock::now();
          if (now >= next_disk) take_disk(now);
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        Take(join);
        take_disk(std::chrono::steady_clock::now());
      }) {}

void StateSampler::Stop() {
  if (!thread_.joinable()) return;
  thread_.request_stop();
  thread_.join();
}

void StateSampler::Take(const JoinMetrics* m) {
  entries = std::max(entries, m->state_entries.Get());
  hot_bytes = std::max(hot_bytes, m->state_memory_bytes.Get());
  spilled = std::max(spilled, m->spilled_entries.Get());
  rss_mib = std::max(rss_mib, CurrentRssMib());
}

uint64_t DirBytes(const fs::path& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_regular_file(ec)) total += it->file_size(ec);
  }
  return total;
}

std::string LoadAverage() {
  std::istringstream fields(FirstLine("/proc/loadavg"));
  std::string a, b, c;
  fields >> a >> b >> c;
  return a + " " + b + " " + c;
}

namespace {

struct Machine {
  int64_t cores = 0;
  std::string cpu, kernel;
  double memory_gib = 0;
};

Machine ThisMachine() {
  Machine m;
  utsname u{};
  uname(&u);
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) {
      m.cpu = line.substr(line.find(':') + 2);
      break;
    }
  }
  m.cores = static_cast<int64_t>(std::thread::hardware_concurrency());
  m.memory_gib = static_cast<double>(sysconf(_SC_PHYS_PAGES)) *
                 static_cast<double>(sysconf(_SC_PAGESIZE)) / (1 << 30);
  m.kernel = std::string(u.sysname) + " " + u.release;
  return m;
}

}  // namespace

std::string MachineJson() {
  const Machine m = ThisMachine();
  JsonWriter j;
  j.BeginObject()
      .Int("cores", m.cores)
      .String("cpu", m.cpu)
      .Number("memory_gib", m.memory_gib)
      .String("kernel", m.kernel)
      .String("loadavg_at_start", LoadAverage())
      .EndObject();
  return j.str();
}

std::string MachineLine() {
  const Machine m = ThisMachine();
  std::ostringstream s;
  s << m.cores << " cores, " << m.cpu << ", ";
  s.precision(3);
  s << m.memory_gib << " GiB, " << m.kernel;
  return s.str();
}

std::vector<LoadPoint> SweepPoints(double peak_events_per_s, const std::vector<double>& fractions,
                                   double seconds, uint64_t records) {
  std::vector<LoadPoint> points;
  if (peak_events_per_s <= 0) return points;
  for (double f : fractions) {
    const double rate = f * peak_events_per_s;
    points.push_back({f, rate, std::min<uint64_t>(records, static_cast<uint64_t>(rate * seconds))});
  }
  return points;
}

}  // namespace ctrjoin::bench
