#include "src/app/replay_progress.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <cstdio>

namespace ctrjoin {

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kTerminalInterval{1000};

std::string Hms(double seconds) {
  if (seconds < 0 || seconds > 99 * 3600.0) return "--:--:--";
  const int64_t s = std::llround(seconds);
  return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
}

double Percent(const KafkaSource::PartitionProgress& p) {
  if (p.end <= p.start) return 100.0;
  return 100.0 * static_cast<double>(p.position - p.start) / static_cast<double>(p.end - p.start);
}

}  // namespace

ReplayProgress::ReplayProgress(const KafkaSource* source, const Metrics* metrics, bool terminal,
                               std::chrono::milliseconds log_interval)
    : source_(source),
      metrics_(metrics),
      terminal_(terminal),
      interval_(terminal ? kTerminalInterval : log_interval),
      start_(Clock::now()),
      last_time_(start_),
      thread_([this] { Loop(); }) {}

ReplayProgress::~ReplayProgress() { Stop(); }

void ReplayProgress::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  Report(/*last=*/true);
}

void ReplayProgress::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!cv_.wait_for(lock, interval_, [this] { return stop_; })) {
    lock.unlock();
    Report(/*last=*/false);
    lock.lock();
  }
}

std::vector<std::string> ReplayProgress::Format(
    const std::vector<KafkaSource::PartitionProgress>& parts, double rate, double elapsed_s) {
  uint64_t total = 0, done = 0;
  for (const auto& p : parts) {
    total += static_cast<uint64_t>(std::max<int64_t>(p.end - p.start, 0));
    done += static_cast<uint64_t>(std::max<int64_t>(p.position - p.start, 0));
  }
  const double pct = total > 0 ? 100.0 * static_cast<double>(done) / total : 100.0;
  const double eta = rate > 0 ? static_cast<double>(total - std::min(done, total)) / rate : -1;
  std::vector<std::string> lines;
  // Clicks end at their end offset at most: the replay stops as soon as the
  // range's windows are closed, so the ETA is an upper bound.
  lines.push_back(
      fmt::format("replay: {:.1f}% of {} records read, {:.0f} records/s, elapsed {}, ETA <= {}",
                  pct, total, rate, Hms(elapsed_s), Hms(eta)));
  for (StreamKind stream : {StreamKind::kImpression, StreamKind::kClick}) {
    std::string line = fmt::format("  {:<11}", StreamName(stream));
    for (const auto& p : parts) {
      if (p.id.stream == stream) line += fmt::format(" [{}] {:.1f}%", p.id.partition, Percent(p));
    }
    lines.push_back(std::move(line));
  }
  return lines;
}

void ReplayProgress::Report(bool last) {
  const std::vector<KafkaSource::PartitionProgress> parts = source_->Progress();
  const Clock::time_point now = Clock::now();
  uint64_t records = 0;
  for (const auto& p : parts)
    records += static_cast<uint64_t>(std::max<int64_t>(p.position - p.start, 0));
  const double dt = std::chrono::duration<double>(now - last_time_).count();
  if (dt > 0 && records >= last_records_) {
    const double instant = static_cast<double>(records - last_records_) / dt;
    rate_ = rate_ == 0 ? instant : 0.7 * rate_ + 0.3 * instant;
  }
  last_records_ = records;
  last_time_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  std::vector<std::string> lines = Format(parts, rate_, elapsed);
  lines[0] += fmt::format("; samples out {}", metrics_->pipeline.samples_out.Get());
  if (!terminal_) {
    std::string joined = lines[0];
    for (size_t i = 1; i < lines.size(); ++i) joined += ";" + lines[i];
    spdlog::info("{}", joined);
    return;
  }
  // Redraw in place: move up over the previous report, clear each line.
  std::string out;
  if (lines_drawn_ > 0) out += fmt::format("\x1b[{}A", lines_drawn_);
  for (const std::string& l : lines) out += "\r\x1b[2K" + l + "\n";
  lines_drawn_ = last ? 0 : lines.size();
  std::fputs(out.c_str(), stderr);
  std::fflush(stderr);
}

}  // namespace ctrjoin
