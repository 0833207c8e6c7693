#include "src/pipeline/pipeline.h"

#include <fmt/format.h>
#include <oneapi/tbb/enumerable_thread_specific.h>
#include <oneapi/tbb/flow_graph.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "src/core/clock.h"
#include "src/core/hash.h"
#include "src/pipeline/graph_messages.h"
#include "src/pipeline/router.h"
#include "src/pipeline/sink_aligner.h"
#include "src/pipeline/source_feeder.h"
#include "src/pipeline/source_stage.h"

namespace ctrjoin {

namespace flow = oneapi::tbb::flow;

namespace {

constexpr size_t kMaxDeadLetterPayload = 64 << 10;

// An impression or a click with its key (xxh3 of impression_id).
template <typename Event>
ParsedEvent Keyed(PartitionId partition, Event& event) {
  const uint64_t key = ImpressionKey(event.impression_id);
  const EventTime ts = event.ts;
  return ParsedEvent{partition, ts, KeyedEvent{key, std::move(event)}};
}

// The body of the parse node (unlimited: called on any worker, concurrently
// for different batches): decodes a batch's records into keyed events and
// dead letters. Owns one EventParser per worker thread.
class ParseStage {
 public:
  ParseStage(const SchemaOptions* schema, const CoPartitioned* co_partitioned,
             PipelineMetrics* metrics, RunControl* run)
      : schema_(schema), co_partitioned_(co_partitioned), metrics_(metrics), run_(run) {}

  ParsedPtr Parse(SourcePtr in) {
    auto out = std::make_shared<ParsedMsg>();
    out->seq = in->seq;
    out->polled = in->polled;
    out->last = in->last;
    out->barrier = std::move(in->barrier);
    out->read_at = out->stage_done = in->read_at;
    run_->Guard("parse", [&] { return ParseRecords(in->batch, *out); });
    EndStage(*metrics_, Stage::kParse, out->read_at, out->stage_done);
    return out;
  }

 private:
  Status ParseRecords(SourceBatch& batch, ParsedMsg& out) {
    std::unique_ptr<EventParser>& parser = parsers_.local();
    if (!parser) parser = std::make_unique<EventParser>(*schema_);
    const int64_t now_ms = WallClockMs();
    out.events.reserve(batch.records.size());
    for (RawRecord& r : batch.records) {
      ParseResult parsed = parser->Parse(r.pos.stream, r.payload, now_ms);
      const PartitionId partition{r.pos.stream, r.pos.partition};
      if (co_partitioned_->partition_of != nullptr) {
        CTRJOIN_RETURN_IF_ERROR(RejectIfMisplaced(parsed, r.pos.partition));
      }
      if (auto* imp = std::get_if<Impression>(&parsed)) {
        out.events.push_back(Keyed(partition, *imp));
      } else if (auto* click = std::get_if<Click>(&parsed)) {
        out.events.push_back(Keyed(partition, *click));
      } else {
        Rejection& rejected = std::get<Rejection>(parsed);
        DeadLetter d{r.pos, std::move(rejected.message), std::move(r.payload), rejected.code};
        if (d.payload.size() > kMaxDeadLetterPayload) d.payload.resize(kMaxDeadLetterPayload);
        out.dead_letters.push_back(std::move(d));
      }
    }
    batch.records.clear();
    out.meta = std::move(batch);
    return Status::Ok();
  }

  // Turns an event on the wrong partition into its rejection. A partition
  // past the count checked at start means the topics grew: every key's
  // partition changed, so the run stops rather than dead-letter them.
  Status RejectIfMisplaced(ParseResult& parsed, int32_t partition) const {
    if (partition >= co_partitioned_->partitions) {
      // Not the config's fault (exit 2): a restart takes the new count.
      return Status::Unavailable(
          fmt::format("source.kafka.mode: 'group': a record came from partition {}, but the "
                      "topics had {} partitions at start; partitions were added, which moves "
                      "keys between tasks: restart every process of the job (their state is "
                      "rebuilt from the input)",
                      partition, co_partitioned_->partitions),
          Effect::kNoEffect);
    }
    const std::string* id = ImpressionIdOf(parsed);
    if (id == nullptr) return Status::Ok();
    const int32_t expected = co_partitioned_->partition_of(*id, co_partitioned_->partitions);
    if (expected == partition) return Status::Ok();
    parsed = Rejection{
        RejectCode::kWrongPartition,
        fmt::format("impression_id: Kafka's default partitioner puts '{}' in partition {} of {}, "
                    "not {}; mode 'group' needs both topics keyed by impression_id",
                    *id, expected, co_partitioned_->partitions, partition)};
    return Status::Ok();
  }

  const SchemaOptions* const schema_;
  const CoPartitioned* const co_partitioned_;
  PipelineMetrics* const metrics_;
  RunControl* const run_;
  oneapi::tbb::enumerable_thread_specific<std::unique_ptr<EventParser>> parsers_;
};

// The body of the enrich node (an async_node, unlimited: any worker,
// concurrently): hands a batch's impressions to the Enricher and puts the
// batch back into the graph once they are enriched, out of order (the
// sequencer restores it). Borrows the enricher.
class EnrichStage {
 public:
  using Node = flow::async_node<ParsedPtr, ParsedPtr>;

  EnrichStage(Enricher* enricher, PipelineMetrics* metrics, RunControl* run)
      : enricher_(enricher), metrics_(metrics), run_(run) {}

  void Start(ParsedPtr in, Node::gateway_type& gateway) {
    std::vector<Impression*> impressions;
    if (!run_->failed()) {
      for (ParsedEvent& e : in->events) {
        if (auto* imp = std::get_if<Impression>(&e.keyed.event)) impressions.push_back(imp);
      }
    }
    if (impressions.empty()) {
      EndStage(*metrics_, Stage::kEnrich, in->read_at, in->stage_done);
      gateway.try_put(in);
      return;
    }
    gateway.reserve_wait();
    // `finish` runs exactly once, from the enricher or from the catch below.
    auto finished = std::make_shared<std::atomic<bool>>(false);
    auto finish = [this, in, &gateway, finished](Status st) {
      if (finished->exchange(true)) return;
      if (!st.ok()) run_->Fail(st.WithContext("feature lookup"));
      EndStage(*metrics_, Stage::kEnrich, in->read_at, in->stage_done);
      gateway.try_put(in);
      gateway.release_wait();
    };
    try {
      enricher_->EnrichAsync(std::move(impressions), finish);
    } catch (const std::exception& e) {
      finish(Status::Internal(std::string("enrich: ") + e.what()));
    }
  }

 private:
  Enricher* const enricher_;
  PipelineMetrics* const metrics_;
  RunControl* const run_;
};

// The body of shard node `index` (serial: one batch at a time, in the
// router's order): runs the shard's processor on the batch, and snapshots it
// at a barrier. Owns the processor.
class ShardStage {
 public:
  ShardStage(std::unique_ptr<ShardProcessor> processor, uint32_t index, RunControl* run)
      : processor_(std::move(processor)), index_(index), run_(run) {}

  OutPtr Process(ShardPtr in) {
    auto out = std::make_shared<ShardOut>();
    out->seq = in->seq;
    out->barrier = in->batch.barrier;  // even after a failure: the sink counts barriers
    out->read_at = in->read_at;
    out->routed_at = in->routed_at;
    out->dead_letters = std::move(in->dead_letters);
    if (run_->failed()) return out;
    run_->Guard("shard", [&] { return ProcessBatch(*in, *out); });
    if (Timed(out->read_at)) out->done_at = Clock::now();
    out->negatives = std::any_of(out->samples.begin(), out->samples.end(),
                                 [](const Sample& s) { return s.label == 0; });
    return out;
  }

 private:
  Status ProcessBatch(ShardMsg& in, ShardOut& out) {
    Status st = processor_->Process(in.batch, out.samples);
    if (st.ok() && in.batch.barrier != nullptr) {
      st = processor_->Checkpoint(*in.batch.barrier, index_, out.state_bytes);
    }
    if (st.ok()) processor_->TakeChangelog(out.changelog);
    return st;
  }

  std::unique_ptr<ShardProcessor> processor_;
  const uint32_t index_;
  RunControl* const run_;
};

Result<std::vector<ShardStage>> MakeShards(const ShardFactory& make_shard, uint32_t count,
                                           RunControl* run) {
  std::vector<ShardStage> shards;
  for (uint32_t i = 0; i < count; ++i) {
    Result<std::unique_ptr<ShardProcessor>> p = make_shard(i);
    if (!p.ok()) return p.status();
    shards.emplace_back(std::move(p).value(), i, run);
  }
  return shards;
}

using ShardNode = flow::function_node<ShardPtr, OutPtr>;
using SourceNode = flow::async_node<flow::continue_msg, SourcePtr>;
using SinkNode = flow::function_node<OutPtr, flow::continue_msg>;

}  // namespace

Status PipelineOptions::Validate() const {
  if (batch_size == 0 || batch_size > 1'000'000) {
    return Status::InvalidArgument("pipeline.batch_size: must be in [1, 1000000]");
  }
  if (max_inflight_batches == 0 || max_inflight_batches > 10'000) {
    return Status::InvalidArgument("pipeline.max_inflight_batches: must be in [1, 10000]");
  }
  if (shards > 1024) return Status::InvalidArgument("pipeline.shards: must be in [0, 1024]");
  if (key_groups == 0 || key_groups > 65'536) {
    return Status::InvalidArgument("pipeline.key_groups: must be in [1, 65536]");
  }
  if (EffectiveShards() > key_groups) {
    return Status::InvalidArgument(fmt::format(
        "pipeline.shards: {} shards but {} key groups; a shard owns at least one key group, so "
        "lower pipeline.shards (a restored job keeps the key_groups of its checkpoints)",
        EffectiveShards(), key_groups));
  }
  return Status::Ok();
}

uint32_t PipelineOptions::EffectiveShards() const {
  if (shards > 0) return shards;
  return std::clamp(std::thread::hardware_concurrency(), 1u, std::max(1u, key_groups));
}

Pipeline::Pipeline(PipelineOptions options, SchemaOptions schema, WatermarkOptions watermarks,
                   Source* source, Enricher* enricher, SampleSink* sink,
                   DeadLetterSink* dead_letters, PipelineMetrics* metrics)
    : options_(options),
      schema_(std::move(schema)),
      watermarks_(watermarks),
      source_(source),
      enricher_(enricher),
      sink_(sink),
      dead_letters_(dead_letters),
      metrics_(metrics),
      run_([this](const Status& status) { OnFailure(status); }) {}

Pipeline::~Pipeline() = default;

void Pipeline::OnFailure(const Status& status) {
  // Lookups that wait for a dead store would otherwise hold the graph forever.
  if (enricher_ != nullptr) enricher_->Cancel();
  metrics_->failed.Set(1);
  spdlog::error("pipeline stopping: {}", status.ToString());
}

Status Pipeline::Run(const ShardFactory& make_shard) {
  CTRJOIN_RETURN_IF_ERROR(options_.Validate());
  const uint32_t shard_count = options_.EffectiveShards();
  const KeyGroups groups{options_.key_groups, shard_count};
  Result<std::vector<ShardStage>> shards = MakeShards(make_shard, shard_count, &run_);
  if (!shards.ok()) return shards.status();
  SourcePositions positions = source_->StartPositions();
  for (const auto& [id, next] : resume_.positions) positions[id] = next;
  SourceStage source_stage(source_, hooks_, metrics_, &run_, options_.batch_size, groups,
                           std::move(positions));
  ParseStage parse_stage(&schema_, &co_partitioned_, metrics_, &run_);
  EnrichStage enrich_stage(enricher_, metrics_, &run_);
  Router router(watermarks_, resume_, groups, end_after_window_ms_, metrics_, &run_,
                /*by_task=*/co_partitioned_.partition_of != nullptr);
  SinkAligner aligner(shard_count, sink_, dead_letters_, hooks_, metrics_, &run_);

  SourceFeeder feeder(&source_stage, options_.max_inflight_batches);

  flow::graph g;
  // Fed by the feeder's thread through its gateway (no body of its own).
  SourceNode source(g, flow::unlimited,
                    [](const flow::continue_msg&, SourceNode::gateway_type&) {});
  flow::function_node<SourcePtr, ParsedPtr> parse(
      g, flow::unlimited, [&](SourcePtr in) { return parse_stage.Parse(std::move(in)); });
  EnrichStage::Node enrich(g, flow::unlimited,
                           [&](ParsedPtr in, EnrichStage::Node::gateway_type& gateway) {
                             enrich_stage.Start(std::move(in), gateway);
                           });
  flow::sequencer_node<ParsedPtr> sequencer(g, [](const ParsedPtr& p) { return p->seq; });
  std::vector<std::unique_ptr<ShardNode>> shard_nodes;
  // A serial node runs its bodies in order but may hand their outputs on out
  // of order (oneTBB spawns the next body before it puts the last result):
  // a sequencer per shard gives the sink each shard's outputs in batch
  // order, which barrier alignment needs.
  std::vector<std::unique_ptr<flow::sequencer_node<OutPtr>>> shard_order;
  for (ShardStage& stage : *shards) {
    shard_nodes.push_back(std::make_unique<ShardNode>(
        g, flow::serial, [&stage](ShardPtr in) { return stage.Process(std::move(in)); }));
    shard_order.push_back(std::make_unique<flow::sequencer_node<OutPtr>>(
        g, [](const OutPtr& out) { return out->seq; }));
  }
  flow::function_node<ParsedPtr, flow::continue_msg> route(g, flow::serial, [&](ParsedPtr in) {
    std::vector<ShardPtr> outs = router.Route(*in);
    for (uint32_t i = 0; i < shard_count; ++i) shard_nodes[i]->try_put(outs[i]);
    return flow::continue_msg();
  });
  SinkNode sink(g, flow::serial, [&](OutPtr out) {
    aligner.Accept(std::move(out), [&] { feeder.ReturnToken(); });
    return flow::continue_msg();
  });

  flow::make_edge(source, parse);
  if (enricher_ != nullptr) {
    flow::make_edge(parse, enrich);
    flow::make_edge(enrich, sequencer);
  } else {
    flow::make_edge(parse, sequencer);
  }
  flow::make_edge(sequencer, route);
  for (uint32_t i = 0; i < shard_count; ++i) {
    flow::make_edge(*shard_nodes[i], *shard_order[i]);
    flow::make_edge(*shard_order[i], sink);
  }

  metrics_->started_ms.Set(WallClockMs());
  metrics_->running.Set(1);
  feeder.Start(source.gateway());
  g.wait_for_all();
  feeder.Join();
  return Finish();
}

Status Pipeline::Finish() {
  if (!run_.failed()) {
    Status st = sink_->Flush();
    if (!st.ok()) run_.Fail(st.WithContext(sink_->Describe()));
  }
  Status dl = dead_letters_->Flush();
  if (!dl.ok()) run_.Fail(dl.WithContext("dead-letter output"));
  metrics_->running.Set(0);
  return run_.error();
}

}  // namespace ctrjoin
