#pragma once
// The pipeline's own figures: input and output counts, event time, and where
// a source batch's time goes. Written by the pipeline's nodes (any oneTBB
// worker, relaxed atomics, per batch) and by the source node about once a
// second (consumer lag); read by /metrics, progress lines and summaries.
// Owned by whoever assembles the pipeline; borrowed by Pipeline.

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "src/ops/metrics.h"
#include "src/ops/prometheus.h"
#include "src/pipeline/source.h"

namespace ctrjoin {

// Stages of a source batch, one histogram each (not per shard or per pair of
// nodes). Each batch that carried records adds one observation to each:
// parse = source read -> parsed; enrich = parsed -> lookups done (only with
// lookups); route = -> routed (includes the wait in the sequencer); shard =
// routed -> the slowest shard done; sink = -> the last of its output
// written. They add up to end_to_end.
enum class Stage : uint8_t { kParse, kEnrich, kRoute, kShard, kSink };
inline constexpr size_t kStages = 5;

const char* StageName(Stage stage);

// Values of the `topic` label: the Kafka topics read, or for files the
// stream names.
struct TopicLabels {
  std::string impressions = "impressions";
  std::string clicks = "clicks";
};

// The consumer lag of each partition, replaced as a whole by the source node
// about once a second (a revoked partition goes), read by /metrics. A mutex
// guards it.
class PartitionLags {
 public:
  void Set(std::vector<PartitionLag> lags) {
    std::lock_guard lock(mu_);
    lags_ = std::move(lags);
  }
  std::vector<PartitionLag> Get() const {
    std::lock_guard lock(mu_);
    return lags_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<PartitionLag> lags_;
};

// Mode group: one value per task, set and removed by whichever shard node
// holds the task, read by /metrics. A mutex guards it (every shard node
// writes).
template <typename Value>
class PerTask {
 public:
  void Set(int32_t task, Value value) {
    std::lock_guard lock(mu_);
    values_[task] = std::move(value);
  }
  void Erase(int32_t task) {
    std::lock_guard lock(mu_);
    values_.erase(task);
  }
  std::map<int32_t, Value> Get() const {
    std::lock_guard lock(mu_);
    return values_;
  }

 private:
  mutable std::mutex mu_;
  std::map<int32_t, Value> values_;
};

// Each held task's state size (entries), set after each batch and removed
// when the task is dropped.
using TaskStateEntries = PerTask<uint64_t>;

// Where a task's restore from its changelog partition stands: set by the
// restoring shard node after each chunk read, removed when the restore ends.
struct TaskRestoreProgress {
  int64_t position = 0;  // the next offset to read
  int64_t end = -1;      // the partition's end offset, -1 until the restore asked for it
  uint64_t bytes = 0;    // chunk bytes read so far
};
using TaskRestores = PerTask<TaskRestoreProgress>;

// Mode group: each held task's watermark, replaced as a whole by the route
// node after every batch, read by /metrics. A mutex guards it.
class TaskWatermarks {
 public:
  void Set(std::vector<std::pair<int32_t, int64_t>> watermarks) {
    std::lock_guard lock(mu_);
    watermarks_ = std::move(watermarks);
  }
  std::vector<std::pair<int32_t, int64_t>> Get() const {
    std::lock_guard lock(mu_);
    return watermarks_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::pair<int32_t, int64_t>> watermarks_;  // task, watermark ms
};

struct PipelineMetrics {
  Counter impressions_in;
  Counter clicks_in;
  Counter dead_letters;
  Counter dead_letters_in[2];  // the same, by input stream (indexed by StreamKind)
  // The same by input stream and RejectCode.
  Counter dead_letters_by_reason[2][kRejectCodes];
  // Records not read yet, by input stream (indexed by StreamKind): Kafka's
  // high watermark - position summed over assigned partitions; -1: unknown
  // (files, or nothing fetched yet). Set by the source node about once a second.
  Gauge consumer_lag[2] = {Gauge(-1), Gauge(-1)};
  // The same per assigned partition whose lag is known.
  PartitionLags partition_lag;
  Counter samples_out;
  Counter batches;
  Counter events_past_end;  // replay: read after the range's windows closed, dropped
  Gauge watermark_ms;       // current global watermark (event time)
  Gauge max_event_ts_ms;    // largest event time seen

  LatencyHistogram stage[kStages];  // indexed by Stage
  LatencyHistogram& of(Stage s) { return stage[static_cast<size_t>(s)]; }
  LatencyHistogram end_to_end;  // source read -> all of the batch's output written
  // A batch whose watermark made shards emit negatives: router advanced the
  // watermark -> the last of those negatives written.
  LatencyHistogram negative_delay;
  Gauge running;                        // 1 while Pipeline::Run runs
  Gauge failed;                         // 1 once a stage failed (the run then ends)
  Gauge started_ms;                     // wall clock when Pipeline::Run began
  Gauge assigned_partitions;            // input partitions assigned to the source (files: 2)
  Gauge paused_partitions;              // Kafka: paused for reading too far ahead
  Gauge tasks;                          // mode group: tasks held (partition p of both topics)
  TaskWatermarks task_watermarks;       // mode group: per task, once it has one
  TaskStateEntries task_state_entries;  // mode group: per held task
  // Mode group with checkpoints: tasks restoring their state from the
  // changelog topic now, and what restores read and restored so far.
  Gauge tasks_restoring;
  TaskRestores task_restores;  // per task restoring now
  Counter task_restore_bytes;
  Counter task_restored_entries;
  // When the source's brokers stopped answering (wall-clock ms), 0 while
  // they answer; refreshed with the consumer lag.
  Gauge source_unreachable_since_ms;

  // Writes the families of these metrics (src/ops/README.md lists them).
  void Expose(Exposition& e, const TopicLabels& topics) const;
};

}  // namespace ctrjoin
