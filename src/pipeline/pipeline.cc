#include "src/pipeline/pipeline.h"

#include <fmt/format.h>
#include <oneapi/tbb/enumerable_thread_specific.h>
#include <oneapi/tbb/flow_graph.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <deque>
#include <limits>
#include <set>
#include <thread>
#include <unordered_map>

#include "src/core/clock.h"
#include "src/core/hash.h"

namespace ctrjoin {

namespace flow = oneapi::tbb::flow;
using Clock = std::chrono::steady_clock;

namespace {

// Latency stamps (steady clock) travel with a batch: read_at is when the
// source returned it, left unset for batches without records (empty polls,
// barriers), which are not timed. See PipelineMetrics.
bool Timed(Clock::time_point read_at) { return read_at != Clock::time_point(); }

// Ends `stage` of a timed batch: records now - since, and since becomes now.
void EndStage(PipelineMetrics& m, Stage stage, Clock::time_point read_at,
              Clock::time_point& since) {
  if (!Timed(read_at)) return;
  const Clock::time_point now = Clock::now();
  m.of(stage).Record(now - since);
  since = now;
}

// Messages are shared_ptrs: flow-graph buffers copy messages, and a batch
// must never be copied.
struct SourceMsg {
  uint64_t seq = 0;
  SourceBatch batch;
  // The batch came from Source::Next (a barrier alone, or the stop message,
  // did not read: they must not move the watermark, see the router).
  bool polled = false;
  bool last = false;                 // no message follows (end of input, stop or failure)
  std::shared_ptr<Barrier> barrier;  // a checkpoint barrier after this batch
  Clock::time_point read_at;
};

struct ParsedEvent {
  PartitionId partition;
  EventTime ts;
  KeyedEvent keyed;
};

struct ParsedMsg {
  uint64_t seq = 0;
  std::vector<ParsedEvent> events;
  std::vector<DeadLetter> dead_letters;
  SourceBatch meta;  // records moved out; partition changes and end flag kept
  bool polled = false;
  bool last = false;
  std::shared_ptr<Barrier> barrier;
  Clock::time_point read_at;
  Clock::time_point stage_done;  // the last stage so far finished (parse or enrich)
};

struct ShardMsg {
  uint64_t seq = 0;
  ShardBatch batch;
  bool last = false;
  Clock::time_point read_at;
  Clock::time_point routed_at;  // also when the router advanced the watermark
};

struct ShardOut {
  uint64_t seq = 0;
  std::vector<Sample> samples;
  std::shared_ptr<Barrier> barrier;  // this shard has passed (and snapshotted at) it
  uint64_t state_bytes = 0;          // what its snapshot added
  Clock::time_point read_at;
  Clock::time_point routed_at;
  Clock::time_point done_at;  // the shard finished the batch
  bool negatives = false;     // samples holds negatives (the watermark closed windows)
};

using SourcePtr = std::shared_ptr<SourceMsg>;
using ParsedPtr = std::shared_ptr<ParsedMsg>;
using ShardPtr = std::shared_ptr<ShardMsg>;
using OutPtr = std::shared_ptr<ShardOut>;

constexpr size_t kMaxDeadLetterPayload = 64 << 10;
constexpr std::chrono::seconds kLagReportInterval{1};

}  // namespace

Status PipelineOptions::Validate() const {
  if (batch_size == 0 || batch_size > 1'000'000) {
    return Status::InvalidArgument("pipeline.batch_size: must be in [1, 1000000]");
  }
  if (max_inflight_batches == 0 || max_inflight_batches > 10'000) {
    return Status::InvalidArgument("pipeline.max_inflight_batches: must be in [1, 10000]");
  }
  if (shards > 1024) return Status::InvalidArgument("pipeline.shards: must be in [0, 1024]");
  return Status::Ok();
}

uint32_t PipelineOptions::EffectiveShards() const {
  if (shards > 0) return shards;
  return std::max(1u, std::thread::hardware_concurrency());
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
      metrics_(metrics) {}

Pipeline::~Pipeline() = default;

void Pipeline::Fail(Status status) {
  // Lookups that wait for a dead store would otherwise hold the graph forever.
  if (enricher_ != nullptr) enricher_->Cancel();
  std::lock_guard<std::mutex> lock(error_mu_);
  if (!failed_.exchange(true)) {
    metrics_->failed.Set(1);
    spdlog::error("pipeline stopping: {}", status.ToString());
    error_ = std::move(status);
  }
}

Status Pipeline::Run(const ShardFactory& make_shard) {
  CTRJOIN_RETURN_IF_ERROR(options_.Validate());
  const uint32_t shard_count = options_.EffectiveShards();
  std::vector<std::unique_ptr<ShardProcessor>> processors;
  for (uint32_t i = 0; i < shard_count; ++i) {
    Result<std::unique_ptr<ShardProcessor>> p = make_shard(i);
    if (!p.ok()) return p.status();
    processors.push_back(std::move(p).value());
  }

  flow::graph g;
  uint64_t next_seq = 0;
  bool source_done = false;
  SourcePositions positions = resume_.positions;  // read so far (source node only)
  // Read times of the batches with records since the last barrier (source
  // node only): the barrier takes them to the commit, for read_to_commit.
  std::vector<Clock::time_point> epoch_reads;
  Clock::time_point next_lag_report;  // source node only
  // A barrier from the hooks, carrying the positions of what was read before it.
  auto barrier_now = [&](bool final) -> std::shared_ptr<Barrier> {
    if (hooks_ == nullptr || failed()) return nullptr;
    std::shared_ptr<Barrier> b = hooks_->NextBarrier(final);
    if (b != nullptr) {
      b->meta.positions = positions;
      b->meta.shards = shard_count;
      b->batch_reads = std::exchange(epoch_reads, {});
    }
    return b;
  };

  // Never throws: a body that throws would cancel the whole graph.
  auto guarded = [this](const char* stage, auto&& fn) {
    try {
      fn();
    } catch (const std::exception& e) {
      Fail(Status::Internal(std::string(stage) + ": " + e.what()));
    }
  };

  flow::input_node<SourcePtr> source(g, [&](oneapi::tbb::flow_control& fc) -> SourcePtr {
    if (source_done) {
      fc.stop();
      return nullptr;
    }
    auto msg = std::make_shared<SourceMsg>();
    msg->seq = next_seq++;
    if (stop_requested_.load(std::memory_order_relaxed) || failed()) {
      msg->last = true;
      source_done = true;
      guarded("checkpoint", [&] { msg->barrier = barrier_now(/*final=*/true); });
      return msg;
    }
    guarded("checkpoint", [&] { msg->barrier = barrier_now(/*final=*/false); });
    if (msg->barrier != nullptr) return msg;  // an empty batch: the barrier alone
    guarded("source", [&] {
      msg->polled = true;
      Result<SourceBatch> batch = source_->Next(options_.batch_size);
      if (!batch.ok()) {
        Fail(batch.status().WithContext(source_->Describe()));
        msg->last = true;
        return;
      }
      msg->batch = std::move(batch).value();
      msg->last = msg->batch.end_of_input;
      const Clock::time_point now = Clock::now();
      if (!msg->batch.records.empty()) {
        msg->read_at = now;
        if (hooks_ != nullptr) epoch_reads.push_back(now);
      }
      if (now >= next_lag_report) {
        next_lag_report = now + kLagReportInterval;
        const std::array<int64_t, 2> lag = source_->ConsumerLag();
        for (size_t s = 0; s < lag.size(); ++s) metrics_->consumer_lag[s].Set(lag[s]);
      }
      if (hooks_ == nullptr) return;
      const PartitionId* last_id = nullptr;
      int64_t* last_pos = nullptr;
      for (const RawRecord& r : msg->batch.records) {
        const PartitionId id{r.pos.stream, r.pos.partition};
        if (last_id == nullptr || *last_id != id) {
          auto it = positions.try_emplace(id, 0).first;
          last_id = &it->first;
          last_pos = &it->second;
        }
        *last_pos = r.pos.offset.value + 1;
      }
      if (msg->last) msg->barrier = barrier_now(/*final=*/true);
    });
    if (failed()) msg->last = true;
    source_done = msg->last;
    return msg;
  });

  flow::limiter_node<SourcePtr> limiter(g, options_.max_inflight_batches);

  oneapi::tbb::enumerable_thread_specific<std::unique_ptr<EventParser>> parsers;
  flow::function_node<SourcePtr, ParsedPtr> parse(g, flow::unlimited, [&](SourcePtr in) {
    auto out = std::make_shared<ParsedMsg>();
    out->seq = in->seq;
    out->polled = in->polled;
    out->last = in->last;
    out->barrier = std::move(in->barrier);
    out->read_at = out->stage_done = in->read_at;
    guarded("parse", [&] {
      std::unique_ptr<EventParser>& parser = parsers.local();
      if (!parser) parser = std::make_unique<EventParser>(schema_);
      const int64_t now_ms = WallClockMs();
      out->events.reserve(in->batch.records.size());
      for (RawRecord& r : in->batch.records) {
        ParseResult parsed = parser->Parse(r.pos.stream, r.payload, now_ms);
        const PartitionId partition{r.pos.stream, r.pos.partition};
        if (auto* imp = std::get_if<Impression>(&parsed)) {
          const uint64_t key = ImpressionKey(imp->impression_id);
          const EventTime ts = imp->ts;
          out->events.push_back(ParsedEvent{partition, ts, KeyedEvent{key, std::move(*imp)}});
        } else if (auto* click = std::get_if<Click>(&parsed)) {
          const uint64_t key = ImpressionKey(click->impression_id);
          const EventTime ts = click->ts;
          out->events.push_back(ParsedEvent{partition, ts, KeyedEvent{key, std::move(*click)}});
        } else {
          DeadLetter d{r.pos, std::move(std::get<std::string>(parsed)), std::move(r.payload)};
          if (d.payload.size() > kMaxDeadLetterPayload) d.payload.resize(kMaxDeadLetterPayload);
          out->dead_letters.push_back(std::move(d));
        }
      }
      in->batch.records.clear();
      out->meta = std::move(in->batch);
    });
    EndStage(*metrics_, Stage::kParse, out->read_at, out->stage_done);
    return out;
  });

  // Enrichment completes batches out of order; the sequencer restores it.
  using EnrichNode = flow::async_node<ParsedPtr, ParsedPtr>;
  EnrichNode enrich(g, flow::unlimited, [&](ParsedPtr in, EnrichNode::gateway_type& gateway) {
    std::vector<Impression*> impressions;
    if (!failed()) {
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
      if (!st.ok()) Fail(st.WithContext("feature lookup"));
      EndStage(*metrics_, Stage::kEnrich, in->read_at, in->stage_done);
      gateway.try_put(in);
      gateway.release_wait();
    };
    try {
      enricher_->EnrichAsync(std::move(impressions), finish);
    } catch (const std::exception& e) {
      finish(Status::Internal(std::string("enrich: ") + e.what()));
    }
  });

  flow::sequencer_node<ParsedPtr> sequencer(g, [](const ParsedPtr& p) { return p->seq; });

  std::vector<std::unique_ptr<flow::function_node<ShardPtr, OutPtr>>> shard_nodes;
  for (uint32_t i = 0; i < shard_count; ++i) {
    ShardProcessor* processor = processors[i].get();
    shard_nodes.push_back(std::make_unique<flow::function_node<ShardPtr, OutPtr>>(
        g, flow::serial, [this, processor, &guarded, i](ShardPtr in) {
          auto out = std::make_shared<ShardOut>();
          out->seq = in->seq;
          out->barrier = in->batch.barrier;  // even after a failure: the sink counts barriers
          out->read_at = in->read_at;
          out->routed_at = in->routed_at;
          if (failed()) return out;
          guarded("shard", [&] {
            Status st = processor->Process(in->batch, out->samples);
            if (st.ok() && in->batch.barrier != nullptr && in->batch.barrier->dir.empty()) {
              st = Status::IoError("checkpoint: no directory for this epoch");
            } else if (st.ok() && in->batch.barrier != nullptr) {
              const std::string dir = fmt::format("{}/shard-{}", in->batch.barrier->dir, i);
              st = processor->Checkpoint(dir, out->state_bytes);
            }
            if (!st.ok()) Fail(st);
          });
          if (Timed(out->read_at)) out->done_at = Clock::now();
          out->negatives = std::any_of(out->samples.begin(), out->samples.end(),
                                       [](const Sample& s) { return s.label == 0; });
          return out;
        }));
  }

  WatermarkTracker tracker(watermarks_);
  tracker.Restore(resume_.partition_max_ts, resume_.watermark, Clock::now());
  // EndAfterWindows: the impression partitions not yet finished, the latest
  // impression ts read, and whether the input was ended by the watermark.
  std::set<PartitionId> open_impression_partitions;
  EventTime max_impression_ts = EventTime::Min();
  for (const auto& [p, ts] : resume_.partition_max_ts) {
    if (p.stream == StreamKind::kImpression) max_impression_ts = std::max(max_impression_ts, ts);
  }
  bool saw_impression_partition = false;
  bool ended_by_watermark = false;
  std::set<PartitionId> assigned;  // by the source, for the assigned_partitions gauge
  flow::function_node<ParsedPtr, flow::continue_msg> route(g, flow::serial, [&](ParsedPtr in) {
    std::vector<ShardPtr> outs(shard_count);
    for (uint32_t i = 0; i < shard_count; ++i) {
      outs[i] = std::make_shared<ShardMsg>();
      outs[i]->seq = in->seq;
      outs[i]->last = in->last;
    }
    guarded("route", [&] {
      const auto now = Clock::now();
      // An eager rebalance revokes, then assigns: apply them in that order.
      // Records of a partition revoked and not given back must not bring
      // it back into the watermark.
      std::vector<PartitionId> gone;
      for (const PartitionId& p : in->meta.revoked) {
        tracker.Revoke(p);
        if (std::find(in->meta.assigned.begin(), in->meta.assigned.end(), p) ==
            in->meta.assigned.end()) {
          gone.push_back(p);
        }
      }
      for (const PartitionId& p : in->meta.assigned) tracker.Assign(p, now);
      if (!in->meta.revoked.empty() || !in->meta.assigned.empty()) {
        for (const PartitionId& p : in->meta.revoked) assigned.erase(p);
        assigned.insert(in->meta.assigned.begin(), in->meta.assigned.end());
        metrics_->assigned_partitions.Set(static_cast<int64_t>(assigned.size()));
      }
      if (ended_by_watermark) {
        // A replay past its end: nothing more belongs to it.
        metrics_->events_past_end.Add(in->events.size() + in->dead_letters.size());
        in->events.clear();
        in->dead_letters.clear();
      }
      if (end_after_window_ms_ >= 0) {
        for (const PartitionId& p : in->meta.assigned) {
          if (p.stream != StreamKind::kImpression) continue;
          open_impression_partitions.insert(p);
          saw_impression_partition = true;
        }
        for (const PartitionId& p : in->meta.finished) open_impression_partitions.erase(p);
      }
      uint64_t impressions = 0, clicks = 0;
      int64_t max_ts = metrics_->max_event_ts_ms.Get();
      for (ParsedEvent& e : in->events) {
        max_ts = std::max(max_ts, e.ts.ms);
        if (gone.empty() || std::find(gone.begin(), gone.end(), e.partition) == gone.end()) {
          tracker.Observe(e.partition, e.ts, now);
        }
        const bool is_impression = std::holds_alternative<Impression>(e.keyed.event);
        if (is_impression) max_impression_ts = std::max(max_impression_ts, e.ts);
        impressions += is_impression ? 1 : 0;
        clicks += is_impression ? 0 : 1;
        outs[ShardOf(e.keyed.key, shard_count)]->batch.events.push_back(std::move(e.keyed));
      }
      for (const PartitionId& p : in->meta.finished) tracker.Finish(p);
      for (const DeadLetter& d : in->dead_letters) {
        Status st = dead_letters_->Write(d);
        if (!st.ok()) Fail(st.WithContext("dead-letter output"));
      }
      if (in->meta.end_of_input) tracker.FinishAll();
      // Only what the source delivered moves the watermark. A barrier
      // alone (or the stop message) read nothing; routed before the
      // first batch of a resumed run, it would see only the partitions
      // restored from the checkpoint, not yet the source's assignment.
      EventTime wm = in->polled ? tracker.Advance(now) : tracker.current();
      if (end_after_window_ms_ >= 0 && !ended_by_watermark && saw_impression_partition &&
          open_impression_partitions.empty() &&
          (max_impression_ts == EventTime::Min() ||
           wm.ms > SaturatingAdd(max_impression_ts.ms, end_after_window_ms_))) {
        spdlog::info("replay: every window of the range is closed (watermark {}), ending", wm.ms);
        ended_by_watermark = true;
        in->meta.end_of_input = true;
        tracker.FinishAll();
        wm = tracker.Advance(now);
        Stop();
      }
      for (ShardPtr& out : outs) {
        out->batch.watermark = wm;
        out->batch.end_of_input = in->meta.end_of_input;
        out->batch.barrier = in->barrier;
      }
      if (in->barrier != nullptr) {
        in->barrier->meta.partition_max_ts = tracker.Snapshot();
        in->barrier->meta.watermark = wm;
      }
      metrics_->impressions_in.Add(impressions);
      metrics_->clicks_in.Add(clicks);
      metrics_->dead_letters.Add(in->dead_letters.size());
      for (const DeadLetter& d : in->dead_letters) {
        metrics_->dead_letters_in[static_cast<size_t>(d.pos.stream)].Add();
      }
      metrics_->batches.Add();
      metrics_->max_event_ts_ms.Set(max_ts);
      if (wm != EventTime::Max() && wm != EventTime::Min()) metrics_->watermark_ms.Set(wm.ms);
    });
    // Every batch, timed or not: one that only lets idle partitions
    // advance the watermark may close windows too.
    const Clock::time_point routed_at = Clock::now();
    if (Timed(in->read_at)) {
      metrics_->of(Stage::kRoute).Record(routed_at - in->stage_done);
    }
    for (ShardPtr& out : outs) {
      out->read_at = in->read_at;
      out->routed_at = routed_at;
    }
    // Every shard gets exactly one message per batch, even after a failure,
    // so that the sink can count completions and return the token.
    for (uint32_t i = 0; i < shard_count; ++i) shard_nodes[i]->try_put(std::move(outs[i]));
    return flow::continue_msg();
  });

  using SinkNode = flow::multifunction_node<OutPtr, std::tuple<flow::continue_msg>>;
  // Per batch (seq) whose shard outputs are still arriving: how many came,
  // when the slowest shard finished, whether they held negatives.
  struct Arrivals {
    uint32_t outputs = 0;
    Clock::time_point shards_done;
    bool negatives = false;
  };
  std::unordered_map<uint64_t, Arrivals> arrived;
  // A barrier that some shards have passed and others not yet: output from
  // the shards past it (seq > barrier_seq) waits in `held`.
  constexpr uint64_t kNoBarrier = std::numeric_limits<uint64_t>::max();
  uint64_t barrier_seq = kNoBarrier;
  uint64_t barrier_bytes = 0;
  std::deque<OutPtr> held;
  SinkNode sink(g, flow::serial, [&](OutPtr first, SinkNode::output_ports_type& ports) {
    std::deque<OutPtr> work{std::move(first)};
    while (!work.empty()) {
      OutPtr in = std::move(work.front());
      work.pop_front();
      if (barrier_seq != kNoBarrier && in->seq > barrier_seq) {
        held.push_back(std::move(in));
        continue;
      }
      guarded("sink", [&] {
        if (!in->samples.empty() && !failed()) {
          Status st = sink_->Write(in->samples);
          if (st.ok()) {
            metrics_->samples_out.Add(in->samples.size());
          } else {
            Fail(st.WithContext(sink_->Describe()));
          }
        }
      });
      if (in->barrier != nullptr) {
        barrier_seq = in->seq;
        barrier_bytes += in->state_bytes;
      }
      Arrivals& a = arrived[in->seq];
      a.shards_done = std::max(a.shards_done, in->done_at);
      a.negatives = a.negatives || in->negatives;
      if (++a.outputs < shard_count) continue;
      // Not after a failure: shards then return without processing (and
      // without a done_at), and the batch's output is dropped.
      const Clock::time_point now = Clock::now();
      if (Timed(in->read_at) && !failed() && Timed(a.shards_done)) {
        PipelineMetrics& pm = *metrics_;
        pm.of(Stage::kShard).Record(a.shards_done - in->routed_at);
        pm.of(Stage::kSink).Record(now - a.shards_done);
        pm.end_to_end.Record(now - in->read_at);
      }
      if (a.negatives && !failed()) metrics_->negative_delay.Record(now - in->routed_at);
      arrived.erase(in->seq);
      if (in->barrier != nullptr) {
        guarded("checkpoint", [&] {
          if (failed()) return;
          in->barrier->meta.state_bytes = barrier_bytes;
          Status st = hooks_->OnBarrier(*in->barrier);
          if (!st.ok()) Fail(st.WithContext(fmt::format("checkpoint {}", in->barrier->epoch)));
        });
        barrier_seq = kNoBarrier;
        barrier_bytes = 0;
        while (!held.empty()) {
          work.push_back(std::move(held.front()));
          held.pop_front();
        }
      }
      std::get<0>(ports).try_put(flow::continue_msg());
    }
  });

  flow::make_edge(source, limiter);
  flow::make_edge(limiter, parse);
  if (enricher_ != nullptr) {
    flow::make_edge(parse, enrich);
    flow::make_edge(enrich, sequencer);
  } else {
    flow::make_edge(parse, sequencer);
  }
  flow::make_edge(sequencer, route);
  for (auto& node : shard_nodes) flow::make_edge(*node, sink);
  flow::make_edge(flow::output_port<0>(sink), limiter.decrementer());

  metrics_->started_ms.Set(WallClockMs());
  metrics_->running.Set(1);
  source.activate();
  g.wait_for_all();

  if (!failed()) {
    Status st = sink_->Flush();
    if (!st.ok()) Fail(st.WithContext(sink_->Describe()));
  }
  Status dl = dead_letters_->Flush();
  if (!dl.ok()) Fail(dl.WithContext("dead-letter output"));
  metrics_->running.Set(0);
  std::lock_guard<std::mutex> lock(error_mu_);
  return error_;
}

}  // namespace ctrjoin
