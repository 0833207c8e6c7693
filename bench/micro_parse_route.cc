// Micro-benchmarks of the work the pipeline's parse and route nodes do per
// event (src/pipeline/pipeline.cc): JSON parsing into a typed event, xxh3 of the
// impression id, and routing an event to its shard's batch. They print
// figures and assert nothing.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "bench/micro_common.h"
#include "src/core/clock.h"
#include "src/core/hash.h"
#include "src/pipeline/event_parser.h"
#include "src/pipeline/shard.h"
#include "src/pipeline/watermark.h"

namespace ctrjoin::bench {
namespace {

// EventParser::Parse on workload records, cycling through 4096 of them.
void BM_Parse(benchmark::State& state, StreamKind stream) {
  const std::vector<std::string>& records =
      stream == StreamKind::kImpression ? Records().impressions : Records().clicks;
  EventParser parser({});
  const int64_t now_ms = WallClockMs();
  size_t i = 0;
  int64_t bytes = 0;
  for (auto _ : state) {
    const std::string& record = records[i++ % records.size()];
    ParseResult parsed = parser.Parse(stream, record, now_ms);
    benchmark::DoNotOptimize(parsed);
    bytes += static_cast<int64_t>(record.size());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(bytes);
}
BENCHMARK_CAPTURE(BM_Parse, impression, StreamKind::kImpression);
BENCHMARK_CAPTURE(BM_Parse, click, StreamKind::kClick);

// The impression ids of the workload records ("imp-42-1234", 10 to 14 bytes).
std::vector<std::string> ImpressionIds() {
  EventParser parser({});
  std::vector<std::string> ids;
  for (const std::string& record : Records().impressions) {
    ParseResult parsed = parser.Parse(StreamKind::kImpression, record, WallClockMs());
    if (auto* imp = std::get_if<Impression>(&parsed)) ids.push_back(imp->impression_id);
  }
  return ids;
}

// xxh3-64 of an impression id: the key and the sample id.
void BM_ImpressionKey(benchmark::State& state) {
  const std::vector<std::string> ids = ImpressionIds();
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(ImpressionKey(ids[i++ % ids.size()]));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ImpressionKey);

// xxh3-64 of the id, then its key group (% 256) and that group's shard (a
// multiply and a divide, runtime divisors as in the pipeline).
void BM_ShardOfId(benchmark::State& state) {
  const std::vector<std::string> ids = ImpressionIds();
  const KeyGroups groups{256, static_cast<uint32_t>(state.range(0))};
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(groups.ShardOf(ImpressionKey(ids[i++ % ids.size()])));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ShardOfId)->ArgName("shards")->Arg(2)->Arg(8)->Arg(32);

// What the parse node hands the route node (pipeline.cc's ParsedEvent).
struct RoutedEvent {
  PartitionId partition;
  EventTime ts;
  KeyedEvent keyed;
};

// The route node's per-event work on a batch of 512 parsed events (a source
// batch) from 8 partitions, 97% impressions: the key (xxh3, computed in the
// parse node), the partition's watermark, the event count, and the move into
// its shard's batch; once per batch the watermark advance. Building the
// events and freeing the shard batches are not timed.
void BM_RouteBatch(benchmark::State& state) {
  constexpr size_t kBatch = 512;
  const auto shards = static_cast<uint32_t>(state.range(0));
  const KeyGroups groups{256, shards};
  EventParser parser({});
  const int64_t now_ms = WallClockMs();
  std::vector<RoutedEvent> prototype;
  for (size_t i = 0; prototype.size() < kBatch; ++i) {
    const bool click = i % 32 == 31;
    const auto stream = click ? StreamKind::kClick : StreamKind::kImpression;
    const std::string& record = click ? Records().clicks[i] : Records().impressions[i];
    ParseResult parsed = parser.Parse(stream, record, now_ms);
    const PartitionId partition{stream, static_cast<int32_t>(i % 4)};
    if (auto* imp = std::get_if<Impression>(&parsed)) {
      prototype.push_back(RoutedEvent{partition, imp->ts, KeyedEvent{0, std::move(*imp)}});
    } else if (auto* c = std::get_if<Click>(&parsed)) {
      prototype.push_back(RoutedEvent{partition, c->ts, KeyedEvent{0, std::move(*c)}});
    }
  }
  WatermarkTracker tracker({});
  std::vector<RoutedEvent> events;
  std::vector<ShardBatch> outs;
  uint64_t impressions = 0, clicks = 0;
  int64_t max_ts = 0;
  for (auto _ : state) {
    state.PauseTiming();
    events = prototype;
    outs.assign(shards, ShardBatch{});
    state.ResumeTiming();
    const auto now = WatermarkTracker::Clock::now();
    for (RoutedEvent& e : events) {
      e.keyed.key = ImpressionKey(
          std::visit([](auto& ev) -> std::string_view { return ev.impression_id; }, e.keyed.event));
      max_ts = std::max(max_ts, e.ts.ms);
      tracker.Observe(e.partition, e.ts, now);
      const bool is_impression = std::holds_alternative<Impression>(e.keyed.event);
      impressions += is_impression ? 1 : 0;
      clicks += is_impression ? 0 : 1;
      outs[groups.ShardOf(e.keyed.key)].events.push_back(std::move(e.keyed));
    }
    const EventTime wm = tracker.Advance(now);
    for (ShardBatch& out : outs) out.watermark = wm;
    benchmark::DoNotOptimize(outs.data());
  }
  benchmark::DoNotOptimize(impressions + clicks + static_cast<uint64_t>(max_ts));
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(kBatch));
}
BENCHMARK(BM_RouteBatch)->ArgName("shards")->Arg(2)->Arg(8)->Arg(32);

}  // namespace
}  // namespace ctrjoin::bench
