#include "src/prometheus.h"

#include <fmt/format.h>

#include <cmath>
#include <initializer_list>
#include <string_view>
#include <utility>

#include "src/clock.h"

namespace ctrjoin {

namespace {

// Initialised when the binary is loaded, i.e. as the process starts.
const int64_t kProcessStartMs = WallClockMs();

using Label = std::pair<std::string_view, std::string_view>;

// Writes one family at a time: HELP and TYPE, then its samples.
class Exposition {
 public:
  explicit Exposition(std::string& out) : out_(out) {}

  void Family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    Escape(help, /*quotes=*/false);
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }

  void Sample(std::string_view name, std::initializer_list<Label> labels, double value) {
    Series(name, labels, {});
    out_ += ' ';
    out_ += Number(value);
    out_ += '\n';
  }
  void Sample(std::string_view name, std::initializer_list<Label> labels, uint64_t value) {
    Series(name, labels, {});
    fmt::format_to(std::back_inserter(out_), " {}\n", value);
  }
  void Sample(std::string_view name, std::initializer_list<Label> labels, int64_t value) {
    Series(name, labels, {});
    fmt::format_to(std::back_inserter(out_), " {}\n", value);
  }

  // One counter or gauge family with a single unlabelled series.
  template <typename T>
  void Single(std::string_view name, std::string_view type, std::string_view help, T value) {
    Family(name, type, help);
    Sample(name, {}, value);
  }

  // A Counter is exposed as a counter, a Gauge as a gauge: the type comes
  // from the metric, never from a string at the call site.
  void Metric(std::string_view name, std::string_view help, const ctrjoin::Counter& c) {
    Single(name, "counter", help, c.Get());
  }
  void Metric(std::string_view name, std::string_view help, const ctrjoin::Gauge& g) {
    Single(name, "gauge", help, g.Get());
  }

  // _bucket (cumulative, le in seconds, ending with +Inf), _sum, _count.
  void Histogram(std::string_view name, std::initializer_list<Label> labels,
                 const LatencyHistogram& h) {
    const std::string bucket = std::string(name) + "_bucket";
    uint64_t cumulative = 0;
    for (size_t i = 0; i < LatencyHistogram::kBuckets; ++i) {
      cumulative += h.bucket(i);
      const std::string le = i + 1 < LatencyHistogram::kBuckets
                                 ? Number(LatencyHistogram::kBoundsMs[i] / 1000)
                                 : std::string("+Inf");
      Series(bucket, labels, Label{"le", le});
      fmt::format_to(std::back_inserter(out_), " {}\n", cumulative);
    }
    Sample(std::string(name) + "_sum", labels, h.sum_seconds());
    // The buckets' total, not count(): the two may differ by a concurrent
    // Record, and +Inf must equal _count.
    Sample(std::string(name) + "_count", labels, cumulative);
  }

 private:
  void Series(std::string_view name, std::initializer_list<Label> labels, Label extra) {
    out_ += name;
    if (labels.size() == 0 && extra.first.empty()) return;
    out_ += '{';
    bool first = true;
    auto add = [&](const Label& l) {
      if (!first) out_ += ',';
      first = false;
      out_ += l.first;
      out_ += "=\"";
      Escape(l.second, /*quotes=*/true);
      out_ += '"';
    };
    for (const Label& l : labels) add(l);
    if (!extra.first.empty()) add(extra);
    out_ += '}';
  }

  // HELP text escapes backslash and newline; label values also '"'.
  void Escape(std::string_view text, bool quotes) {
    for (char c : text) {
      switch (c) {
        case '\\':
          out_ += "\\\\";
          break;
        case '\n':
          out_ += "\\n";
          break;
        case '"':
          out_ += quotes ? "\\\"" : "\"";
          break;
        default:
          out_ += c;
      }
    }
  }

  static std::string Number(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    return fmt::format("{}", v);  // shortest form that reads back exactly
  }

  std::string& out_;
};

double Seconds(int64_t ms) { return static_cast<double>(ms) / 1000; }

}  // namespace

int64_t ProcessStartMs() { return kProcessStartMs; }

std::string RenderPrometheus(const Metrics& m, const ExpositionOptions& options, int64_t now_ms) {
  std::string out;
  out.reserve(32 << 10);
  Exposition e(out);
  const std::string_view topics[2] = {options.impressions_topic, options.clicks_topic};
  const Counter* events_in[2] = {&m.impressions_in, &m.clicks_in};

  // Process and pipeline.
  e.Single("ctrjoin_up", "gauge", "1: the ctrjoin process is up and serving metrics.", int64_t{1});
  e.Single("ctrjoin_process_start_time_seconds", "gauge",
           "When the process started, in seconds since the Unix epoch.", Seconds(kProcessStartMs));
  const PipelineMetrics& p = m.pipeline;
  e.Metric("ctrjoin_pipeline_running", "1 while the pipeline runs.", p.running);
  e.Metric("ctrjoin_pipeline_failed", "1 once a pipeline stage failed (the run ends).", p.failed);
  if (p.started_ms.Get() > 0) {
    e.Single("ctrjoin_pipeline_start_time_seconds", "gauge",
             "When the pipeline started running, in seconds since the Unix epoch.",
             Seconds(p.started_ms.Get()));
  }
  e.Metric("ctrjoin_source_assigned_partitions",
           "Input partitions assigned to the source (Kafka partitions, or one per input file).",
           p.assigned_partitions);
  e.Metric("ctrjoin_batches_total", "Source batches routed through the pipeline.", m.batches);

  // Input.
  e.Family("ctrjoin_events_in_total", "counter",
           "Valid events read, by input topic (records that failed to parse are dead letters).");
  for (int s = 0; s < 2; ++s) {
    e.Sample("ctrjoin_events_in_total", {{"topic", topics[s]}}, events_in[s]->Get());
  }
  e.Family("ctrjoin_dead_letters_total", "counter",
           "Input records rejected (bad JSON, missing or mistyped fields, ...) and written to the "
           "dead-letter output, by input topic.");
  for (int s = 0; s < 2; ++s) {
    e.Sample("ctrjoin_dead_letters_total", {{"topic", topics[s]}}, m.dead_letters_in[s].Get());
  }
  if (m.consumer_lag[0].Get() >= 0 || m.consumer_lag[1].Get() >= 0) {
    e.Family("ctrjoin_consumer_lag_records", "gauge",
             "Kafka records not read yet (high watermark - position, summed over the assigned "
             "partitions), by topic.");
    for (int s = 0; s < 2; ++s) {
      const int64_t lag = m.consumer_lag[s].Get();
      if (lag >= 0) e.Sample("ctrjoin_consumer_lag_records", {{"topic", topics[s]}}, lag);
    }
  }
  e.Metric("ctrjoin_replay_events_past_end_total",
           "Replay: events read after every window of the range had closed, dropped.",
           m.events_past_end);

  // Event time.
  if (const int64_t wm = m.watermark_ms.Get(); wm > 0) {
    e.Single("ctrjoin_watermark_timestamp_seconds", "gauge",
             "The global event-time watermark, in seconds since the Unix epoch.", Seconds(wm));
    e.Single("ctrjoin_watermark_lag_seconds", "gauge",
             "Wall clock now minus the watermark: how far event time trails real time.",
             Seconds(now_ms - wm));
  }
  if (const int64_t ts = m.max_event_ts_ms.Get(); ts > 0) {
    e.Single("ctrjoin_max_event_timestamp_seconds", "gauge",
             "The largest event time read, in seconds since the Unix epoch.", Seconds(ts));
  }

  // Latency.
  e.Family("ctrjoin_stage_latency_seconds", "histogram",
           "Time a source batch spends in each pipeline stage, queueing included: parse (source "
           "read -> parsed), enrich (-> feature lookups done), route (-> split by shard), shard "
           "(-> slowest shard done), sink (-> output written). One observation per batch with "
           "records (enrich only with lookups); the stages add up to "
           "ctrjoin_end_to_end_latency_seconds.");
  for (size_t s = 0; s < kStages; ++s) {
    e.Histogram("ctrjoin_stage_latency_seconds", {{"stage", StageName(static_cast<Stage>(s))}},
                p.stage[s]);
  }
  e.Family("ctrjoin_end_to_end_latency_seconds", "histogram",
           "Source read -> all of the batch's samples written by the sink, per batch with "
           "records.");
  e.Histogram("ctrjoin_end_to_end_latency_seconds", {}, p.end_to_end);
  e.Family("ctrjoin_end_to_end_commit_latency_seconds", "histogram",
           "Source read -> the batch's epoch committed (output visible), per batch with records; "
           "exactly-once runs only.");
  e.Histogram("ctrjoin_end_to_end_commit_latency_seconds", {}, m.checkpoint.read_to_commit);
  e.Family("ctrjoin_negative_emission_delay_seconds", "histogram",
           "The router advanced the watermark -> the negatives that advance closed were written, "
           "per batch that closed windows.");
  e.Histogram("ctrjoin_negative_emission_delay_seconds", {}, p.negative_delay);

  // Output and the label join.
  e.Metric("ctrjoin_samples_out_total", "Samples written to the sink.", m.samples_out);
  const JoinMetrics& j = m.join;
  e.Family("ctrjoin_join_samples_total", "counter",
           "Samples emitted by the label join, by kind: positive, negative, correction (a late "
           "click turned an emitted negative positive).");
  e.Sample("ctrjoin_join_samples_total", {{"kind", "positive"}}, j.positives.Get());
  e.Sample("ctrjoin_join_samples_total", {{"kind", "negative"}}, j.negatives.Get());
  e.Sample("ctrjoin_join_samples_total", {{"kind", "correction"}}, j.corrections.Get());
  e.Metric("ctrjoin_join_duplicate_clicks_total",
           "Further clicks for an already labelled impression (not emitted).", j.duplicate_clicks);
  e.Metric("ctrjoin_join_duplicate_impressions_total",
           "Impression ids seen again (the first wins).", j.duplicate_impressions);
  e.Metric("ctrjoin_join_orphan_clicks_total", "Held clicks whose impression never came (dropped).",
           j.orphan_clicks);
  e.Metric("ctrjoin_join_late_clicks_total",
           "Clicks that came after their impression's negative was emitted.", j.late_clicks);
  e.Metric("ctrjoin_join_clicks_outside_window_total",
           "Clicks with ts before their impression or after its window.", j.clicks_outside_window);
  e.Metric("ctrjoin_join_late_impressions_total",
           "Impressions whose window had already closed when they came.", j.late_impressions);
  e.Metric("ctrjoin_join_state_entries", "Keys held in join state (memory and RocksDB).",
           j.state_entries);
  e.Metric("ctrjoin_join_state_memory_bytes", "Bytes of join state held in memory.",
           j.state_memory_bytes);
  e.Metric("ctrjoin_join_state_spilled_entries", "Keys whose state lives in RocksDB.",
           j.spilled_entries);
  e.Metric("ctrjoin_join_spill_writes_total", "State entries moved to RocksDB.", j.spill_writes);
  e.Metric("ctrjoin_rocksdb_memory_bytes", "RocksDB block cache and memtables of the state stores.",
           j.rocksdb_memory_bytes);
  e.Metric("ctrjoin_rocksdb_memory_limit_bytes", "RocksDB's share of the state memory budget.",
           j.rocksdb_memory_limit_bytes);

  // Feature lookups (summed over the configured lookups).
  const LookupMetrics& l = m.lookup;
  e.Metric("ctrjoin_lookup_cache_hits_total", "Feature lookups answered by the cache.",
           l.cache_hits);
  e.Metric("ctrjoin_lookup_cache_misses_total", "Feature lookups the cache could not answer.",
           l.cache_misses);
  e.Metric("ctrjoin_lookup_cache_evictions_total", "Rows evicted from the cache.",
           l.cache_evictions);
  e.Metric("ctrjoin_lookup_cache_entries", "Rows held in the cache.", l.cache_entries);
  e.Metric("ctrjoin_lookup_cache_bytes", "Bytes held in the cache.", l.cache_bytes);
  e.Metric("ctrjoin_lookup_store_rows_total", "Rows asked of the feature store (after coalescing).",
           l.requests);
  e.Metric("ctrjoin_lookup_store_calls_total", "Feature store calls (getMultiple).", l.store_calls);
  e.Metric("ctrjoin_lookup_coalesced_total", "Cache misses that joined a request already pending.",
           l.coalesced);
  e.Metric("ctrjoin_lookup_retries_total", "Rows of failed feature store calls queued for a retry.",
           l.retries);
  e.Metric("ctrjoin_lookup_errors_total", "Failed feature store calls.", l.errors);
  e.Metric("ctrjoin_lookup_partial_total",
           "Lookups given up (emit_partial): samples flagged partial.", l.partial);
  e.Family("ctrjoin_lookup_latency_seconds", "histogram", "Duration of one feature store call.");
  e.Histogram("ctrjoin_lookup_latency_seconds", {}, l.latency);

  // Checkpoints and commits (exactly once).
  const CheckpointMetrics& c = m.checkpoint;
  e.Metric("ctrjoin_checkpoints_completed_total",
           "Checkpoints completed (state snapshot and pre-committed output).", c.completed);
  e.Metric("ctrjoin_checkpoint_epochs_committed_total", "Epochs committed.", c.committed);
  e.Metric("ctrjoin_checkpoint_epochs_aborted_total",
           "Epochs aborted (a failed commit, or the run failed).", c.aborted_epochs);
  e.Metric("ctrjoin_checkpoint_restores_total", "Starts that restored a checkpoint.", c.restores);
  e.Metric("ctrjoin_checkpoint_last_committed_epoch", "The last epoch committed.",
           c.last_committed_epoch);
  if (c.last_completed_ms.Get() > 0) {
    e.Single("ctrjoin_checkpoint_last_completed_timestamp_seconds", "gauge",
             "When the last checkpoint completed, in seconds since the Unix epoch.",
             Seconds(c.last_completed_ms.Get()));
  }
  e.Metric("ctrjoin_checkpoint_last_size_bytes",
           "State bytes the last checkpoint added (the rest are hard links).", c.last_bytes);
  e.Metric("ctrjoin_checkpoint_written_bytes_total", "State bytes written by checkpoints.",
           c.bytes_total);
  e.Family("ctrjoin_checkpoint_duration_seconds", "histogram",
           "Barrier injected -> checkpoint complete (state snapshotted, output pre-committed).");
  e.Histogram("ctrjoin_checkpoint_duration_seconds", {}, c.duration);
  e.Family("ctrjoin_checkpoint_commit_latency_seconds", "histogram",
           "Barrier injected -> epoch committed (its output visible).");
  e.Histogram("ctrjoin_checkpoint_commit_latency_seconds", {}, c.commit_lag);
  return out;
}

}  // namespace ctrjoin
