// The cost of one oneTBB flow-graph hop per event, by batch size: why the
// pipeline moves batches, not events (STYLE.md, rule 9).
//
// A graph of function_nodes (both serial or both unlimited) passes
// shared_ptr batches of KeyedEvents (clicks), as the pipeline does; each
// node reads every event's key, so the hop includes handing the batch's
// memory to whichever thread runs the next node. One iteration puts 64
// batches into the first node and waits for the graph. nodes:1 is a put into
// one node (the baseline), nodes:2 adds one function_node -> function_node
// edge: the hop is the difference. Real time, as the graph runs on oneTBB's
// worker threads. They print figures and assert nothing.
#include <benchmark/benchmark.h>
#include <oneapi/tbb/flow_graph.h>

#include <atomic>
#include <memory>
#include <vector>

#include "src/pipeline/shard.h"

namespace ctrjoin::bench {
namespace {

namespace flow = oneapi::tbb::flow;

using HopBatch = std::shared_ptr<const std::vector<KeyedEvent>>;

constexpr int kBatchesPerIteration = 64;
constexpr size_t kDistinctBatches = 4;  // reused: nodes only read them

uint64_t SumKeys(const std::vector<KeyedEvent>& events) {
  uint64_t sum = 0;
  for (const KeyedEvent& e : events) sum += e.key;
  return sum;
}

void BM_FlowGraphHop(benchmark::State& state, size_t concurrency) {
  const auto batch_size = static_cast<size_t>(state.range(0));
  const bool second_node = state.range(1) == 2;
  std::vector<HopBatch> batches;
  for (size_t b = 0; b < kDistinctBatches; ++b) {
    auto events = std::make_shared<std::vector<KeyedEvent>>();
    for (size_t i = 0; i < batch_size; ++i) {
      events->push_back(KeyedEvent{b * batch_size + i, Click{"i", EventTime{0}}});
    }
    batches.push_back(std::move(events));
  }

  std::atomic<uint64_t> consumed{0};
  flow::graph g;
  flow::function_node<HopBatch, HopBatch> first(g, concurrency, [&](HopBatch in) {
    const uint64_t sum = SumKeys(*in);
    if (!second_node) consumed.fetch_add(sum, std::memory_order_relaxed);
    return in;
  });
  flow::function_node<HopBatch, flow::continue_msg> second(g, concurrency, [&](HopBatch in) {
    consumed.fetch_add(SumKeys(*in), std::memory_order_relaxed);
    return flow::continue_msg();
  });
  if (second_node) flow::make_edge(first, second);

  for (auto _ : state) {
    for (int b = 0; b < kBatchesPerIteration; ++b) first.try_put(batches[b % kDistinctBatches]);
    g.wait_for_all();
  }
  benchmark::DoNotOptimize(consumed.load());
  const int64_t hops = state.iterations() * kBatchesPerIteration;
  state.SetItemsProcessed(hops * static_cast<int64_t>(batch_size));
  state.counters["s_per_batch"] = benchmark::Counter(
      static_cast<double>(hops), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void HopArgs(benchmark::internal::Benchmark* b) {
  b->ArgNames({"batch", "nodes"});
  for (int64_t batch : {1, 16, 64, 512, 4096}) {
    for (int64_t nodes : {1, 2}) b->Args({batch, nodes});
  }
  b->UseRealTime()->Unit(benchmark::kMicrosecond);
}
BENCHMARK_CAPTURE(BM_FlowGraphHop, serial, flow::serial)->Apply(HopArgs);
BENCHMARK_CAPTURE(BM_FlowGraphHop, unlimited, flow::unlimited)->Apply(HopArgs);

}  // namespace
}  // namespace ctrjoin::bench
