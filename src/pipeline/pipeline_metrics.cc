#include "src/pipeline/pipeline_metrics.h"

#include <algorithm>

namespace ctrjoin {

const char* StageName(Stage stage) {
  switch (stage) {
    case Stage::kParse: return "parse";
    case Stage::kEnrich: return "enrich";
    case Stage::kRoute: return "route";
    case Stage::kShard: return "shard";
    case Stage::kSink: return "sink";
  }
  return "unknown";
}

void PipelineMetrics::Expose(Exposition& e, const TopicLabels& labels) const {
  const std::string_view topics[2] = {labels.impressions, labels.clicks};
  const Counter* events_in[2] = {&impressions_in, &clicks_in};

  e.Metric("ctrjoin_pipeline_running", "1 while the pipeline runs.", running);
  e.Metric("ctrjoin_pipeline_failed", "1 once a pipeline stage failed (the run ends).", failed);
  if (started_ms.Get() > 0) {
    e.Single("ctrjoin_pipeline_start_time_seconds", "gauge",
             "When the pipeline started running, in seconds since the Unix epoch.",
             Seconds(started_ms.Get()));
  }
  e.Metric("ctrjoin_source_assigned_partitions",
           "Input partitions assigned to the source (Kafka partitions, or one per input file).",
           assigned_partitions);
  e.Metric("ctrjoin_source_paused_partitions",
           "Kafka input partitions paused now because they read more than "
           "source.kafka.max_read_ahead_ms ahead of the slowest partition with records left.",
           paused_partitions);
  e.Metric("ctrjoin_tasks",
           "Mode group: the tasks this process holds (a task is partition p of both input "
           "topics); 0 in mode assign.",
           tasks);
  e.Metric("ctrjoin_tasks_restoring",
           "Mode group with checkpoints: tasks restoring their state from the changelog topic "
           "now (/ready is 503 meanwhile).",
           tasks_restoring);
  e.Metric("ctrjoin_task_restore_bytes_total",
           "Mode group with checkpoints: changelog bytes read by task restores.",
           task_restore_bytes);
  e.Metric("ctrjoin_task_restored_entries_total",
           "Mode group with checkpoints: join state entries restored into arriving tasks.",
           task_restored_entries);
  e.Metric("ctrjoin_batches_total", "Source batches routed through the pipeline.", batches);
  e.Single("ctrjoin_source_up", "gauge",
           "1 while the source's Kafka brokers answer (always 1 for files), 0 during an outage.",
           int64_t{source_unreachable_since_ms.Get() == 0 ? 1 : 0});

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
    e.Sample("ctrjoin_dead_letters_total", {{"topic", topics[s]}}, dead_letters_in[s].Get());
  }
  e.Family(
      "ctrjoin_dead_letters_by_reason_total", "counter",
      "The same by input topic and reason code (too_large, invalid_json, missing_field, "
      "wrong_type, invalid_value, shadowed_name, future_ts, undeclared_feature, wrong_partition).");
  for (int s = 0; s < 2; ++s) {
    for (const auto& [code, name] : NamesOf(RejectCode{})) {
      e.Sample("ctrjoin_dead_letters_by_reason_total", {{"topic", topics[s]}, {"reason", name}},
               dead_letters_by_reason[s][static_cast<size_t>(code)].Get());
    }
  }
  if (consumer_lag[0].Get() >= 0 || consumer_lag[1].Get() >= 0) {
    e.Family("ctrjoin_consumer_lag_records", "gauge",
             "Kafka records not read yet (high watermark - position, summed over the assigned "
             "partitions), by topic.");
    for (int s = 0; s < 2; ++s) {
      const int64_t lag = consumer_lag[s].Get();
      if (lag >= 0) e.Sample("ctrjoin_consumer_lag_records", {{"topic", topics[s]}}, lag);
    }
  }
  if (const std::vector<PartitionLag> lags = partition_lag.Get(); !lags.empty()) {
    e.Family("ctrjoin_consumer_partition_lag_records", "gauge",
             "Kafka records not read yet (high watermark - position), by topic and partition.");
    for (const PartitionLag& l : lags) {
      e.Sample("ctrjoin_consumer_partition_lag_records",
               {{"topic", topics[static_cast<int>(l.id.stream)]},
                {"partition", std::to_string(l.id.partition)}},
               l.records);
    }
  }
  e.Metric("ctrjoin_replay_events_past_end_total",
           "Replay: events read after every window of the range had closed, dropped.",
           events_past_end);

  // Event time.
  if (const int64_t wm = watermark_ms.Get(); wm > 0) {
    e.Single("ctrjoin_watermark_timestamp_seconds", "gauge",
             "The global event-time watermark, in seconds since the Unix epoch.", Seconds(wm));
    e.Single("ctrjoin_watermark_lag_seconds", "gauge",
             "Wall clock now minus the watermark: how far event time trails real time.",
             Seconds(e.now_ms() - wm));
  }
  if (const auto tasks = task_watermarks.Get(); !tasks.empty()) {
    e.Family("ctrjoin_task_watermark_timestamp_seconds", "gauge",
             "Mode group: each held task's own watermark (over its impressions and clicks "
             "partition), in seconds since the Unix epoch.");
    for (const auto& [task, wm] : tasks) {
      e.Sample("ctrjoin_task_watermark_timestamp_seconds", {{"task", std::to_string(task)}},
               Seconds(wm));
    }
  }
  if (const auto sizes = task_state_entries.Get(); !sizes.empty()) {
    e.Family("ctrjoin_task_state_entries", "gauge",
             "Mode group: the keys each held task keeps (pending impressions, held clicks and "
             "remembered ids; in memory and spilled).");
    for (const auto& [task, entries] : sizes) {
      e.Sample("ctrjoin_task_state_entries", {{"task", std::to_string(task)}},
               static_cast<int64_t>(entries));
    }
  }
  if (const auto restores = task_restores.Get(); !restores.empty()) {
    e.Family("ctrjoin_task_restore_remaining_offsets", "gauge",
             "Mode group with checkpoints: each restoring task's changelog offsets still to "
             "read (its partition's end offset - its position). Present only while the task "
             "restores, once the restore knows the partition's offsets.");
    for (const auto& [task, r] : restores) {
      if (r.end < 0) continue;
      e.Sample("ctrjoin_task_restore_remaining_offsets", {{"task", std::to_string(task)}},
               std::max<int64_t>(0, r.end - r.position));
    }
    e.Family("ctrjoin_task_restore_read_bytes", "gauge",
             "Mode group with checkpoints: changelog bytes each restoring task has read so far.");
    for (const auto& [task, r] : restores) {
      e.Sample("ctrjoin_task_restore_read_bytes", {{"task", std::to_string(task)}},
               static_cast<int64_t>(r.bytes));
    }
  }
  if (const int64_t ts = max_event_ts_ms.Get(); ts > 0) {
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
                stage[s]);
  }
  e.Histogram("ctrjoin_end_to_end_latency_seconds",
              "Source read -> all of the batch's samples written by the sink, per batch with "
              "records.",
              end_to_end);
  e.Histogram("ctrjoin_negative_emission_delay_seconds",
              "The router advanced the watermark -> the negatives that advance closed were "
              "written, per batch that closed windows.",
              negative_delay);
  e.Metric("ctrjoin_samples_out_total", "Samples written to the sink.", samples_out);
}

}  // namespace ctrjoin
