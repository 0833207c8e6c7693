#pragma once
// Progress of a bounded replay: rate, percentage per partition and ETA.
// On a terminal it redraws a few lines on stderr every second; otherwise it
// logs one line every log_interval.
//
// Owns one reporting thread, started by the constructor and joined by
// Stop() or the destructor. Reads the source's Progress() and the metrics
// (both thread-safe); borrows both, which must outlive it. Created and
// stopped from main's thread.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "src/app/run_metrics.h"
#include "src/io/kafka_source.h"

namespace ctrjoin {

class ReplayProgress {
 public:
  ReplayProgress(const KafkaSource* source, const Metrics* metrics, bool terminal,
                 std::chrono::milliseconds log_interval = std::chrono::seconds(10));
  ~ReplayProgress();
  void Stop();  // prints a last report

  // One report from a snapshot: a headline and one line per topic with the
  // percentage of each partition. rate is records per second.
  static std::vector<std::string> Format(const std::vector<KafkaSource::PartitionProgress>& parts,
                                         double rate, double elapsed_s);

 private:
  void Loop();
  void Report(bool last);

  const KafkaSource* const source_;
  const Metrics* const metrics_;
  const bool terminal_;
  const std::chrono::milliseconds interval_;
  const std::chrono::steady_clock::time_point start_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;       // guarded by mu_
  size_t lines_drawn_ = 0;  // terminal: lines to overwrite (reporting thread only)
  uint64_t last_records_ = 0;
  std::chrono::steady_clock::time_point last_time_;
  double rate_ = 0;  // smoothed records/s
  std::thread thread_;
};

}  // namespace ctrjoin
