#pragma once
// What the benchmarks measure of the process and the machine around a run:
// CPU time, RSS, the join state's peaks, the machine's description, and the
// offered loads of a latency sweep. Shared by `ctrjoin bench` and e2e_bench.
//
// Threads: Usage, the RSS readers and MachineJson are called from any
// thread and own nothing. StateSampler owns one sampling thread, started by
// its constructor and joined by Stop(); its fields are read after Stop().

#include <cstdint>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "joins/join_metrics.h"

namespace ctrjoin::bench {

// CPU time (user + system) of this process so far.
struct Usage {
  double cpu_s = 0;
  static Usage Now();
};

// Peak RSS of this process image (VmHWM; not getrusage's ru_maxrss, which
// Linux carries over execve) and the current RSS, in MiB.
double PeakRssMib();
double CurrentRssMib();

// Peaks of the join state gauges and of RSS, sampled every 20 ms; with a
// directory to watch (a run's changelogs), its size on disk and the pending
// entries every 500 ms from the start.
class StateSampler {
 public:
  explicit StateSampler(const JoinMetrics* join, std::filesystem::path watch = {});
  void Stop();
  int64_t entries = 0, hot_bytes = 0, spilled = 0;
  double rss_mib = 0;
  struct DiskPoint {
    double seconds = 0;   // since the sampler started
    uint64_t bytes = 0;   // under `watch`
    int64_t entries = 0;  // join state entries (pending) at that moment
  };
  std::vector<DiskPoint> disk;

 private:
  void Take(const JoinMetrics* join);
  std::jthread thread_;
};

// Bytes of the regular files under dir (0 when it does not exist).
uint64_t DirBytes(const std::filesystem::path& dir);

// {"cores", "cpu", "memory_gib", "kernel", "loadavg"} as a JSON object.
std::string MachineJson();
// The same in one line: "2 cores, <model>, 23.4 GiB, Linux 6.1.0".
std::string MachineLine();
// /proc/loadavg's first three fields ("0.52 0.61 0.70").
std::string LoadAverage();

// One point of a latency-vs-offered-load sweep: records are offered at
// `rate` per second for `limit` records.
struct LoadPoint {
  double fraction = 0;  // of the measured peak
  double rate = 0;      // events/s
  uint64_t limit = 0;   // records of the trace to offer (at most all)
};
// The sweep's points: each fraction of peak_events_per_s, for seconds of
// input each, bounded by the trace's records.
std::vector<LoadPoint> SweepPoints(double peak_events_per_s, const std::vector<double>& fractions,
                                   double seconds, uint64_t records);

}  // namespace ctrjoin::bench
