#include "bench/micro_common.h"

#include <cstdio>
#include <cstdlib>
#include <utility>
#include <variant>

#include <benchmark/benchmark.h>

#include "src/clock.h"
#include "src/event_parser.h"
#include "src/workload.h"

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
                   std::get<std::string>(parsed).c_str());
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

}  // namespace ctrjoin::bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  ctrjoin::bench::ReleaseLabelJoinFixture();
  return 0;
}
