#pragma once
// Baselines for the end-to-end benchmark, measured in the same run as ctrjoin:
//
//  - HandWritten*: the program a team would write instead of using ctrjoin.
//    One thread: consume (librdkafka consumer, or the trace in memory) ->
//    parse JSON (the same EventParser) -> std::unordered_map join with a
//    std::priority_queue of window deadlines expired by a per-partition
//    watermark -> encode JSON (the same encoder) -> produce (the same
//    producer settings as ctrjoin's plain Kafka sink), or count and discard.
//    No feature lookups, no spill, no checkpoints, no dead-letter output.
//  - Passthrough: consume -> produce every record unchanged, no processing:
//    the ceiling for anything that reads and writes through the broker.
//
// Consumers set queued.min.messages=1000000, as every broker configuration
// does (librdkafka 2.0.2's default of 100000 stalls the fetcher whenever its
// queue fills: e2e_bench measures that separately).
//
// Latency is measured as for ctrjoin: from when the record that made a
// sample was read (returned by the consumer poll, or taken from memory) to
// when the sample was handed to the producer (or encoded); samples that only
// the end of the input closes are left out.
//
// Each function runs on the calling thread (librdkafka has its own threads)
// and returns when the input is consumed and the output delivered.

#include <cstdint>
#include <string>

#include "src/bench/probe.h"
#include "src/bench/trace.h"
#include "src/core/status.h"
#include "src/pipeline/watermark.h"

namespace ctrjoin::bench {

struct BaselineOptions {
  int64_t window_ms = 60'000;           // W
  int64_t out_of_orderness_ms = 5'000;  // L
  int32_t partitions = 4;               // per input topic
  std::string brokers;                  // for the Kafka variants
  std::string group_id = "baseline";
  std::string output_topic = "baseline-samples";
};

struct BaselineResult {
  uint64_t events = 0;  // records consumed
  uint64_t samples = 0;
  uint64_t positives = 0;
  uint64_t negatives = 0;
  uint64_t dead_letters = 0;
  uint64_t flushed_at_end = 0;
  uint64_t output_bytes = 0;
  Histogram latency;
  Histogram negative_delay;
};

// Reads the trace's records in order (payloads are left in place).
Result<BaselineResult> RunHandWrittenFromMemory(const Trace& trace, const BaselineOptions& options);
// Reads the impressions and clicks topics of options.brokers to their end
// offsets as of the start.
Result<BaselineResult> RunHandWrittenThroughBroker(const BaselineOptions& options);
Result<BaselineResult> RunPassthrough(const BaselineOptions& options);

}  // namespace ctrjoin::bench
