#include "bench/micro_common.h"

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <utility>
#include <variant>
#include <vector>

#include "src/core/clock.h"
#include "src/io/workload.h"
#include "src/pipeline/event_parser.h"

namespace ctrjoin::bench {

const WorkloadRecords& Records() {
  static const WorkloadRecords records = [] {
    WorkloadOptions options;
    options.ctr = 0.25;  // clicks come sooner; the records are what matters here
    options.duplicate_click_rate = 0;
    options.duplicate_impression_rate = 0;
    options.malformed_rate = 0;
    WorkloadGenerator generator(options);
    WorkloadRecords r;
    while (r.impressions.size() < 4096 || r.clicks.size() < 4096) {
      GeneratedRecord record = generator.Next();
      auto& to = record.stream == StreamKind::kImpression ? r.impressions : r.clicks;
      to.push_back(std::move(record.json));
    }
    return r;
  }();
  return records;
}

const Impression& TypicalImpression() {
  static const Impression impression = [] {
    EventParser parser({});
    ParseResult parsed =
        parser.Parse(StreamKind::kImpression, Records().impressions.front(), WallClockMs());
    if (!std::holds_alternative<Impression>(parsed)) {
      // The workload's own records must parse; anything else is a broken build.
      std::fprintf(stderr, "micro_bench: workload impression rejected: %s\n",
                   std::get<Rejection>(parsed).message.c_str());
      std::abort();
    }
    Impression imp = std::get<Impression>(std::move(parsed));
    imp.lookup_features = {
        {"user.age", 34.0},          {"user.country", std::string("de")},
        {"user.ctr_7d", 0.0312},     {"user.embedding", std::vector<double>{0.113, 0.582, 0.907}},
        {"item.price", 42.5},        {"item.category", std::string("books")},
        {"item.popularity", 0.4471},
    };
    return imp;
  }();
  return impression;
}

// The console reporter, counting runs that reported an error. Used by main
// on the benchmark thread only.
class ErrorCountingReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) errors_ += r.error_occurred ? 1 : 0;
    ConsoleReporter::ReportRuns(runs);
  }
  int errors() const { return errors_; }

 private:
  int errors_ = 0;
};

}  // namespace ctrjoin::bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  // A benchmark that reports an error (SkipWithError) fails the run, so
  // that the short CTest run catches it.
  ctrjoin::bench::ErrorCountingReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  ctrjoin::bench::ReleaseLabelJoinFixture();
  if (reporter.errors() > 0) {
    std::fprintf(stderr, "micro_bench: %d benchmarks reported errors\n", reporter.errors());
    return 1;
  }
  return 0;
}
