#pragma once
// Pipeline: assembles and runs the oneTBB flow graph
//
//   source thread ─► source (async_node gateway) ─► parse (parallel) ─►
//   enrich (async, optional) ─► sequencer ─►
//   route (serial: watermarks, split by shard) ─► shard[i]
//   (serial, one ShardProcessor each) ─► sink (serial) ─┐
//        ▲                                              │ one token per
//        └──────────────────────────────────────────────┘ completed batch
//
// Batches, not events, move between nodes. Every source batch becomes
// exactly one ShardBatch per shard (possibly empty, but carrying the new
// watermark), and the sink hands the source thread (SourceFeeder,
// source_feeder.h) its token back once all shards
// have delivered their output for that batch. So at most
// max_inflight_batches source batches are anywhere in the graph: a slow sink
// stops the source (backpressure), and memory for in-flight data is bounded.
//
// Checkpoints (SetCheckpointHooks): barriers from the hooks travel through
// the graph as described in src/pipeline/checkpoint.h; the sink node holds back
// output from after a barrier until every shard has passed it and the hooks
// have completed it, so each sink write belongs to exactly one epoch. Dead
// letters travel with their batch to the sink node and are written there, in
// source order, so that they belong to their batch's epoch too (with
// checkpoints the dead-letter sink is usually the coordinator's open epoch).
//
// The node bodies are classes that own their state: SourceStage
// (source_stage.h, run by SourceFeeder on its own thread), Router (router.h) and SinkAligner
// (sink_aligner.h); the parse, enrich and shard bodies are in pipeline.cc. They share one
// RunControl (run_control.h): a stop request and the run's first error.
//
// Run() is called from one thread and blocks until the input ends, Stop()
// is called, or a stage fails. Stop() may be called from any thread or a
// signal handler (it only sets an atomic flag). The Pipeline borrows the
// source, sinks, enricher (may be null: no lookups) and metrics, and owns the
// shard processors.

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include "src/core/status.h"
#include "src/pipeline/checkpoint.h"
#include "src/pipeline/enricher.h"
#include "src/pipeline/event_parser.h"
#include "src/pipeline/pipeline_metrics.h"
#include "src/pipeline/run_control.h"
#include "src/pipeline/shard.h"
#include "src/pipeline/sink.h"
#include "src/pipeline/source.h"
#include "src/pipeline/watermark.h"

namespace ctrjoin {

struct PipelineOptions {
  size_t batch_size = 512;          // max records per source batch
  size_t max_inflight_batches = 8;  // source batches in the graph at once
  uint32_t shards = 0;              // 0 = number of hardware threads
  // Key groups (src/core/hash.h): fixed when a job is created; a job
  // restored from a checkpoint keeps the checkpoint's.
  uint32_t key_groups = 256;

  Status Validate() const;  // "pipeline.batch_size: ..."
  uint32_t EffectiveShards() const;
};

using ShardFactory = std::function<Result<std::unique_ptr<ShardProcessor>>(uint32_t shard)>;

// Co-partitioned inputs (`source.kafka.mode: group`): the partition, of
// `partitions`, that Kafka's default partitioner gives an impression id.
// An event read from any other partition is dead-lettered (wrong_partition):
// its task would never meet its impression or click.
struct CoPartitioned {
  int32_t partitions = 0;
  int32_t (*partition_of)(std::string_view impression_id, int32_t partitions) = nullptr;
};

class Pipeline {
 public:
  Pipeline(PipelineOptions options, SchemaOptions schema, WatermarkOptions watermarks,
           Source* source, Enricher* enricher, SampleSink* sink, DeadLetterSink* dead_letters,
           PipelineMetrics* metrics);
  ~Pipeline();

  // Creates the shard processors; then runs until the end. Returns the first
  // error of any stage, or OK (end of input, or stopped).
  Status Run(const ShardFactory& make_shard);
  void Stop() { run_.RequestStop(); }
  // Before Run: cut epochs with these hooks (borrowed).
  void SetCheckpointHooks(CheckpointHooks* hooks) { hooks_ = hooks; }
  // Before Run: continue from a checkpoint (positions and watermarks; the
  // source was sought and the shards restored by the caller).
  void ResumeFrom(const CheckpointMeta& meta) { resume_ = meta; }
  // Before Run, for a bounded replay: once every impression partition has
  // finished, the input ends as soon as the watermark has closed the window
  // of the latest impression read (watermark > its ts + window_ms); clicks
  // read after that are dropped (counted in events_past_end).
  void EndAfterWindows(int64_t window_ms) { end_after_window_ms_ = window_ms; }
  // Before Run, in mode group: checks every event's partition, and routes
  // events by task (the Router's by_task): every shard's processor must
  // then be a TaskShard (src/pipeline/task_shard.h).
  void RequireCoPartitioned(CoPartitioned check) { co_partitioned_ = check; }

 private:
  // The first failure: stops lookups, logs and sets the failed gauge.
  void OnFailure(const Status& status);
  // After the graph: flushes the outputs; returns the run's first error.
  Status Finish();

  const PipelineOptions options_;
  const SchemaOptions schema_;
  const WatermarkOptions watermarks_;
  Source* const source_;
  Enricher* const enricher_;
  SampleSink* const sink_;
  DeadLetterSink* const dead_letters_;
  PipelineMetrics* const metrics_;
  CheckpointHooks* hooks_ = nullptr;
  CheckpointMeta resume_;
  int64_t end_after_window_ms_ = -1;  // < 0: not a replay
  CoPartitioned co_partitioned_;      // partition_of null: not checked
  RunControl run_;
};

}  // namespace ctrjoin
