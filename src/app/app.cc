#include "src/app/app.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <optional>
#include <random>
#include <thread>

#include "joins/embedded_feature_store.h"
#include "joins/hbase_feature_store.h"
#include "joins/join_state.h"
#include "joins/label_join.h"
#include "sinks/completion_marker.h"
#include "sinks/file_sink.h"
#include "sinks/kafka_sink.h"
#include "sinks/kafka_txn_sink.h"
#include "sinks/sample_schema.h"
#include "sinks/txn_file_sink.h"
#include "src/app/ops_server.h"
#include "src/app/replay_progress.h"
#include "src/core/clock.h"
#include "src/core/crash_point.h"
#include "src/core/dir_lock.h"
#include "src/core/hash.h"
#include "src/io/changelog_topic.h"
#include "src/io/co_partitioning.h"
#include "src/io/file_source.h"
#include "src/io/kafka_client.h"
#include "src/io/kafka_source.h"
#include "src/io/start_positions.h"
#include "src/io/workload.h"
#include "src/ops/ops_endpoints.h"
#include "src/pipeline/pipeline.h"
#include "src/pipeline/task_shard.h"
#include "src/state/changelog.h"
#include "src/state/spill_store.h"

namespace ctrjoin {

Result<std::string> ReadInstanceId(const std::string& state_dir) {
  const std::filesystem::path path = std::filesystem::path(state_dir) / "INSTANCE";
  std::ifstream in(path);
  if (!in) {
    return Status::NotFound(
        fmt::format("state.dir: {} does not exist: no process ran with this state.dir in mode "
                    "group with checkpoints",
                    path.string()));
  }
  std::string id;
  in >> id;
  if (!id.empty() && id.find_first_not_of("0123456789abcdef") == std::string::npos) return id;
  return Status::InvalidArgument(
      fmt::format("state.dir: {} does not hold an instance id (8 hex digits); remove it to get "
                  "a new one (this process's open transactions are then left to time out)",
                  path.string()));
}

namespace {

std::atomic<int> g_stop_requests{0};
std::atomic<Pipeline*> g_pipeline{nullptr};
std::atomic<Enricher*> g_enricher{nullptr};

// An exactly-once Kafka job (not a replay, which keeps its own range) starts
// a partition with no committed offset where its first run resolved
// `start` to (<state.dir>/START), so that a job killed before its first
// commit loses nothing with `start: latest`.
bool KeepsStartPositions(const Config& c, bool replay) {
  return !replay && c.checkpoint.enabled && c.source.type == SourceType::kKafka &&
         c.source.kafka.mode == KafkaMode::kAssign;
}

// Mode group with checkpoints: this process's name among the job's, kept
// in <state.dir>/INSTANCE (made at its first start): its transactional ids
// are "<prefix>-<instance>-<i>", as Kafka Streams names a process's.
Result<std::string> InstanceId(const std::string& state_dir) {
  Result<std::string> kept = ReadInstanceId(state_dir);
  if (kept.ok() || kept.status().code() != StatusCode::kNotFound) return kept;
  std::random_device random;
  const std::string id = fmt::format("{:08x}", random());
  CTRJOIN_RETURN_IF_ERROR(PublishFile(state_dir, "INSTANCE", id + "\n"));
  spdlog::info("checkpoint: this process is instance {} of the job (state.dir {})", id, state_dir);
  return id;
}

Result<std::unique_ptr<Source>> MakeSource(const Config& c, bool replay, bool reset_state) {
  if (c.source.type == SourceType::kKafka) {
    KafkaSourceOptions options = c.source.kafka;
    const std::string start_file = c.state.dir + "/START";
    const bool keep = KeepsStartPositions(c, replay);
    bool saved = false;
    if (keep && reset_state) std::filesystem::remove(start_file);
    if (keep) {
      Result<SourcePositions> start = LoadStartPositions(start_file);
      if (!start.ok() && start.status().code() != StatusCode::kNotFound) return start.status();
      if (start.ok()) {
        for (const auto& [id, offset] : *start) options.start_offsets.try_emplace(id, offset);
        saved = true;
      }
    }
    // Mode group with checkpoints: revoked partitions go once their epoch committed.
    options.commit_on_revoke = c.checkpoint.enabled && !replay && options.mode == KafkaMode::kGroup;
    options.stop_requested = StopRequested;
    if (options.commit_on_revoke) {
      Result<std::string> instance = InstanceId(c.state.dir);
      if (!instance.ok()) return instance.status();
      options.instance = *instance;
    }
    if (options.mode == KafkaMode::kGroup) {
      Result<CoPartitionReport> co = CheckCoPartitioned(options, c.ParserSchema());
      if (!co.ok()) return co.status();
      options.co_partitions = co->partitions;
    }
    auto s = KafkaSource::Open(options);
    if (!s.ok()) return s.status();
    if (keep && !saved) {
      CTRJOIN_RETURN_IF_ERROR(SaveStartPositions(start_file, (*s)->StartPositions()));
    }
    return std::unique_ptr<Source>(std::move(s).value());
  }
  auto s = FileSource::Open(c.source.files, c.ParserSchema());
  if (!s.ok()) return s.status();
  return std::unique_ptr<Source>(std::move(s).value());
}

Result<std::unique_ptr<SampleSink>> MakeSink(const SinkConfig& c, ProducerMetrics* metrics) {
  switch (c.type) {
    case SinkType::kKafka: {
      KafkaSinkOptions options = c.kafka;
      options.metrics = metrics;
      auto s = KafkaSampleSink::Open(options, c.format);
      if (!s.ok()) return s.status().WithContext("sink.kafka");
      return std::unique_ptr<SampleSink>(std::move(s).value());
    }
    case SinkType::kFile: {
      if (c.Rolled()) {
        auto s = RolledFileSampleSink::Open(
            RolledFileSinkOptions{c.path, c.format, c.compression, c.roll_bytes, c.roll_ms});
        if (!s.ok()) return s.status();
        return std::unique_ptr<SampleSink>(std::move(s).value());
      }
      auto w = LineWriter::OpenFile(c.path, /*append=*/false);
      if (!w.ok()) return w.status().WithContext("sink.path");
      return std::unique_ptr<SampleSink>(
          std::make_unique<FileSampleSink>(std::move(w).value(), c.format));
    }
    case SinkType::kStdout: break;
  }
  return std::unique_ptr<SampleSink>(
      std::make_unique<FileSampleSink>(LineWriter::Stdout(), SampleFormat::kJson));
}

Result<std::unique_ptr<DeadLetterSink>> MakeDeadLetterSink(const DeadLetterConfig& c,
                                                           ProducerMetrics* metrics) {
  switch (c.type) {
    case DeadLetterType::kKafka: {
      KafkaSinkOptions options = c.kafka;
      options.metrics = metrics;
      auto s = KafkaDeadLetterSink::Open(options);
      if (!s.ok()) return s.status().WithContext("dead_letter.kafka");
      return std::unique_ptr<DeadLetterSink>(std::move(s).value());
    }
    case DeadLetterType::kFile: {
      auto w = LineWriter::OpenFile(c.path, /*append=*/true);
      if (!w.ok()) return w.status().WithContext("dead_letter.path");
      return std::unique_ptr<DeadLetterSink>(
          std::make_unique<JsonLinesDeadLetterSink>(std::move(w).value()));
    }
    case DeadLetterType::kStderr: break;
  }
  return std::unique_ptr<DeadLetterSink>(
      std::make_unique<JsonLinesDeadLetterSink>(LineWriter::Stderr()));
}

// With checkpoints, where dead letters go (txn/README.md, "Dead letters"):
// into the epochs of the transactional sink when the dead-letter output fits
// it (a file sink and dead_letter.type file: <sink.path>/dead-letters/; a
// Kafka sink and dead_letter.type kafka on the same brokers:
// dead_letter.kafka.topic in the epoch's transactions), else to the
// configured output at once, outside the epochs.
bool DeadLettersInEpochs(const Config& c) {
  switch (c.sink.type) {
    case SinkType::kFile: return c.dead_letter.type == DeadLetterType::kFile;
    case SinkType::kKafka:
      return c.dead_letter.type == DeadLetterType::kKafka &&
             c.dead_letter.kafka.brokers == c.sink.kafka.brokers;
    case SinkType::kStdout: break;
  }
  return false;
}

}  // namespace

bool StopRequested() { return g_stop_requests.load() > 0; }

void RequestStop() {
  const int requests = g_stop_requests.fetch_add(1) + 1;
  if (Pipeline* p = g_pipeline.load()) p->Stop();
  if (Enricher* e = g_enricher.load(); e != nullptr && requests > 1) e->Cancel();
}

CommitLog KafkaCommitLog(KafkaSource* source, KafkaTransactionalSink* sink) {
  CommitLog log;
  log.committed_epoch = [source] { return source->CommittedEpoch(); };
  log.before_commit = [source, sink](EpochId epoch, const CheckpointMeta& meta) {
    KafkaPartitionList offsets = source->OffsetsFor(meta.positions, epoch.value);
    if (offsets->cnt == 0) return Status::Ok();
    rd_kafka_consumer_group_metadata_t* group = source->NewGroupMetadata();
    Status st = sink->SendOffsets(epoch, offsets.get(), group);
    rd_kafka_consumer_group_metadata_destroy(group);
    return st;
  };
  return log;
}

namespace {

// Asks the store about each lookup's table and family: a missing one, or a
// wire mismatch, refuses the start (naming the key); an outage is returned
// as such (start-up waits for the store). A family that keeps fewer versions
// than max_versions is read with its own count (or refused): the cache then
// never takes a history cut by the family for a complete one.
Result<std::vector<LookupSpec>> ProbeLookups(FeatureStore& store, std::vector<LookupSpec> lookups,
                                             VersionsCheck check) {
  for (size_t i = 0; i < lookups.size(); ++i) {
    LookupSpec& spec = lookups[i];
    const std::string prefix = fmt::format("lookups[{}]", i);
    Result<StoreTableInfo> info = store.Probe(spec.table, spec.family);
    if (!info.ok()) return info.status();
    if (info->missing != StoreTableInfo::Missing::kNothing) {
      const bool family = info->missing == StoreTableInfo::Missing::kFamily;
      return Status::InvalidArgument(
          fmt::format("{}.{}: {}", prefix, family ? "family" : "table", info->problem));
    }
    const std::optional<int> kept = info->family_max_versions;
    if (!kept.has_value()) continue;
    if (*kept >= spec.max_versions) continue;
    const std::string what = fmt::format(
        "{}.max_versions is {} but family '{}' of table '{}' keeps {} version(s) (VERSIONS)",
        prefix, spec.max_versions, spec.family, spec.table, *kept);
    if (check == VersionsCheck::kRefuse) {
      return Status::InvalidArgument(what +
                                     ": lower max_versions, raise the family's VERSIONS, or set "
                                     "feature_store.versions_check: warn");
    }
    spdlog::warn(
        "{}: lookup '{}' reads {} version(s) per column, so impressions older than a column's "
        "newest version are read from the store one by one (none misses a version the store "
        "has); raise the family's VERSIONS or lower max_versions",
        what, spec.name, *kept);
    spec.max_versions = std::max(1, *kept);
  }
  return lookups;
}

}  // namespace

Result<Enrichment> MakeEnrichment(const Config& config, Metrics& metrics) {
  Enrichment e;
  if (config.lookups.empty()) return e;
  if (config.feature_store.type == FeatureStoreType::kHBase) {
    auto store = HBaseFeatureStore::Open(config.feature_store.hbase);
    if (!store.ok()) return store.status().WithContext("feature_store.hbase");
    e.store = std::move(store).value();
  } else {
    auto store = EmbeddedFeatureStore::Open(config.feature_store.embedded);
    if (!store.ok()) return store.status();
    e.store = std::move(store).value();
  }
  auto lookups = ProbeLookups(*e.store, config.lookups, config.feature_store.versions_check);
  if (!lookups.ok()) return lookups.status();
  e.service = std::make_unique<LookupService>(config.lookup, std::move(lookups).value(),
                                              e.store.get(), &metrics.lookup);
  return e;
}

namespace {

// Loads into `state` (new shard `shard` of `groups`) every entry of the
// checkpoint's changelogs whose key group it now owns, reading only the old
// shards' logs that held one of its groups.
Status RestoreShard(const CheckpointMeta& resume, const ShardChangelogs& logs, KeyGroups groups,
                    uint32_t shard, JoinState& state) {
  const KeyGroups old{resume.key_groups, resume.shards};
  std::vector<bool> needed(old.shards, false);
  for (uint32_t g = 0; g < groups.count; ++g) {
    if (groups.ShardOfGroup(g) == shard) needed[old.ShardOfGroup(g)] = true;
  }
  const auto start = std::chrono::steady_clock::now();
  size_t entries = 0;
  for (uint32_t i = 0; i < old.shards; ++i) {
    if (!needed[i]) continue;
    const std::string dir = logs.ReadDir(resume.changelog_generation, i);
    CTRJOIN_RETURN_IF_ERROR(
        ReplayJoinChangelog(
            dir, resume.epoch, [&](uint64_t key) { return groups.ShardOf(key) == shard; },
            [&](uint64_t key, JoinEntry entry, std::string_view encoded) -> Status {
              CrashPoint("changelog_restore");
              state.PutRestored(key, std::move(entry), encoded);
              // Spill as it goes (as often as a batch would add entries): the
              // restored state may exceed the budget.
              return ++entries % 1024 == 0 ? state.EnforceBudget() : Status::Ok();
            })
            .status());
  }
  state.FinishRestore();
  spdlog::info("checkpoint: shard {} restored {} entries of epoch {} in {:.2f} s", shard, entries,
               resume.epoch,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return Status::Ok();
}

// Mode group: one task's label join over a spill store of its own
// (<state.dir>/live/task-<p>), made on the task's first batch and dropped,
// directory and all, when the task is revoked (src/pipeline/task_shard.h).
// With checkpoints (changelog set), it first restores the task's state from
// its partition of the changelog topic, and its changes go into chunks
// (TakeChangelog) for that partition.
// Called from its shard node only; owns the join, the store and the log.
class TaskJoin : public ShardProcessor {
 public:
  static Result<std::unique_ptr<ShardProcessor>> Open(const Config& config, Metrics& metrics,
                                                      std::shared_ptr<SpillMemory> memory,
                                                      size_t hot_bytes, int32_t task,
                                                      const ChangelogTopicOptions* changelog,
                                                      ChangelogTrimmer* trimmer) {
    SpillStoreOptions o;
    o.dir = config.state.dir;
    o.name = fmt::format("live/task-{}", task);
    o.rocksdb_memory_bytes = config.state.RocksDbBytes();
    auto store = SpillStore::Open(o, std::move(memory));
    if (!store.ok()) return store.status();
    auto self = std::unique_ptr<TaskJoin>(new TaskJoin());
    self->dir_ = std::filesystem::path(o.dir) / o.name;
    self->store_ = std::move(store).value();
    JoinState state(static_cast<uint32_t>(task), self->store_.get(), hot_bytes, &metrics.join);
    EventTime restored = EventTime::Min();
    if (changelog != nullptr) {
      Result<EventTime> wm = Restore(*changelog, task, self->dir_.string() + "-restore", state,
                                     metrics.pipeline, trimmer);
      if (!wm.ok()) return wm.status().WithContext(fmt::format("restoring task {}", task));
      restored = *wm;
      // After the restore: what it read is in the topic already.
      self->log_ = ChangelogWriter::OpenOutbox();
      state.SetChangelog(self->log_.get());
    }
    self->join_ = std::make_unique<LabelJoin>(config.join, std::move(state), &metrics.join);
    if (changelog != nullptr) CTRJOIN_RETURN_IF_ERROR(self->join_->Restore(restored));
    return std::unique_ptr<ShardProcessor>(std::move(self));
  }
  ~TaskJoin() override {
    join_.reset();
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  Status Process(ShardBatch& batch, std::vector<Sample>& out) override {
    return join_->Process(batch, out);
  }
  uint64_t state_entries() const override { return join_->state_entries(); }
  Status Checkpoint(Barrier& barrier, uint32_t shard, uint64_t& new_bytes) override {
    return join_->Checkpoint(barrier, shard, new_bytes);
  }
  void TakeChangelog(std::vector<ChangelogChunk>& out) override {
    if (log_ == nullptr) return;
    for (ChangelogWriter::OutboxChunk& c : log_->TakeOutbox()) {
      out.push_back({0, std::move(c.bytes), c.max_horizon, c.watermark});
    }
  }

 private:
  TaskJoin() = default;

  // Reads the task's changelog partition into a segment file under dir and
  // loads what is alive at its last marker into state; returns that
  // marker's watermark (EventTime::Min() for a task with no state yet).
  // trimmer (may be null) learns what the restore read.
  static Result<EventTime> Restore(const ChangelogTopicOptions& changelog, int32_t task,
                                   const std::string& dir, JoinState& state,
                                   PipelineMetrics& metrics, ChangelogTrimmer* trimmer) {
    const auto start = std::chrono::steady_clock::now();
    metrics.tasks_restoring.Add(1);
    metrics.task_restores.Set(task, {});
    struct Done {
      PipelineMetrics& m;
      int32_t task;
      std::string dir;
      ~Done() {
        m.tasks_restoring.Add(-1);
        m.task_restores.Erase(task);
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
      }
    } done{metrics, task, dir};
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    std::filesystem::create_directories(dir, ec);
    if (ec) return Status::IoError(fmt::format("creating {}: {}", dir, ec.message()));
    Result<TaskChangelogRead> read =
        ReadTaskChangelog(changelog, task, fmt::format("{}/{:012}.log", dir, 0),
                          [&](int64_t position, int64_t end, uint64_t bytes) {
                            metrics.task_restores.Set(task, {position, end, bytes});
                          });
    if (!read.ok()) return read.status();
    metrics.task_restore_bytes.Add(read->bytes);
    uint64_t entries = 0;
    int64_t max_deadline = std::numeric_limits<int64_t>::min();
    Result<EventTime> wm = ReplayJoinChangelog(
        dir, kChangelogEnd, [](uint64_t) { return true; },
        [&](uint64_t key, JoinEntry entry, std::string_view encoded) -> Status {
          max_deadline = std::max(max_deadline, entry.deadline);
          state.PutRestored(key, std::move(entry), encoded);
          // Spill as it goes: the restored state may exceed the budget.
          return ++entries % 1024 == 0 ? state.EnforceBudget() : Status::Ok();
        });
    if (!wm.ok()) return wm.status();
    state.FinishRestore();
    if (trimmer != nullptr) trimmer->Restored(task, read->end, max_deadline);
    metrics.task_restored_entries.Add(entries);
    spdlog::info(
        "checkpoint: task {} restored {} entries from {} bytes of {}[{}] (to offset {}) in "
        "{:.2f} s",
        task, entries, read->bytes, changelog.topic, task, read->end,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    return wm;
  }

  std::filesystem::path dir_;
  std::unique_ptr<SpillStore> store_;
  std::unique_ptr<ChangelogWriter> log_;  // before join_: the join's state borrows it
  std::unique_ptr<LabelJoin> join_;
};

}  // namespace

Status RunPipelineWith(const Config& config, Metrics& metrics, Source& source, Enricher* enricher,
                       SampleSink& sink, DeadLetterSink& dead_letters, ExactlyOnce* eos,
                       int64_t end_after_window_ms, OpsServer* ops) {
  // /metrics, /healthz and /ready from here on, if the caller brought none.
  std::unique_ptr<OpsServer> own_ops;
  if (ops == nullptr && config.http.enabled) {
    auto server = OpsServer::Start(config, metrics, eos != nullptr);
    if (!server.ok()) return server.status();
    own_ops = std::move(server).value();
    ops = own_ops.get();
  }
  const uint32_t shards = config.pipeline.EffectiveShards();
  const CheckpointMeta* resume =
      eos != nullptr && eos->resume.has_value() ? &*eos->resume : nullptr;
  // The key groups are the job's: a restored job keeps its checkpoint's.
  PipelineOptions pipeline_options = config.pipeline;
  if (resume != nullptr) {
    if (resume->key_groups != pipeline_options.key_groups) {
      spdlog::info("pipeline.key_groups: {} as the job's checkpoints have it (configured {})",
                   resume->key_groups, pipeline_options.key_groups);
    }
    pipeline_options.key_groups = resume->key_groups;
  }
  CTRJOIN_RETURN_IF_ERROR(pipeline_options.Validate());
  const KeyGroups groups{pipeline_options.key_groups, shards};

  // Mode group: state is per task, in TaskJoins the shards make as tasks
  // come (with checkpoints, each restores from and logs to the changelog
  // topic).
  auto* kafka = dynamic_cast<KafkaSource*>(&source);
  const int32_t tasks = kafka != nullptr ? kafka->co_partitions() : 0;
  const ChangelogTopicOptions* task_changelog =
      eos != nullptr && eos->task_changelog.has_value() ? &*eos->task_changelog : nullptr;
  if (tasks > 0 && eos != nullptr && task_changelog == nullptr) {
    return Status::Internal("mode group with checkpoints needs the changelog topic",
                            Effect::kNoEffect);
  }

  // With checkpoints (mode assign), each shard's changes go to its
  // changelog; a restore reads the previous generation's.
  std::unique_ptr<ShardChangelogs> changelogs;
  if (eos != nullptr && tasks == 0) {
    ChangelogOptions o;
    o.segment_bytes = config.checkpoint.changelog_segment_mb << 20;
    // The generations the job's complete checkpoints name stay (an older
    // checkpoint may still be chosen with --from-checkpoint).
    std::map<uint64_t, uint64_t> kept;
    const CheckpointStore& store = eos->coordinator->store();
    if (Result<std::vector<uint64_t>> epochs = store.List(); epochs.ok()) {
      for (uint64_t e : *epochs) {
        if (Result<CheckpointMeta> m = store.Load(e); m.ok()) kept[e] = m->changelog_generation;
      }
    }
    auto logs =
        ShardChangelogs::Open(config.checkpoint.dir + "/changelog", shards,
                              resume != nullptr ? resume->changelog_generation : 0, kept, o);
    if (!logs.ok()) return logs.status();
    changelogs = std::move(logs).value();
  }

  // One RocksDB instance per shard, all in one memory budget: a cache for
  // state beyond the budget, rebuilt at every start.
  std::error_code ec;
  std::filesystem::remove_all(std::filesystem::path(config.state.dir) / "live", ec);
  if (ec) return Status::IoError("state.dir: cannot clear " + config.state.dir + "/live");
  auto memory = std::make_shared<SpillMemory>(config.state.RocksDbBytes());
  std::vector<std::unique_ptr<SpillStore>> stores;
  for (uint32_t i = 0; i < (tasks > 0 ? 0 : shards); ++i) {
    SpillStoreOptions o;
    o.dir = config.state.dir;
    o.name = fmt::format("live/shard-{}", i);
    o.rocksdb_memory_bytes = config.state.RocksDbBytes();
    auto store = SpillStore::Open(o, memory);
    if (!store.ok()) return store.status();
    stores.push_back(std::move(store).value());
  }

  metrics.join.rocksdb_memory_limit_bytes.Set(static_cast<int64_t>(memory->bytes()));
  if (ops != nullptr) ops->Attach(memory);

  // The shards' label joins, restored (if resuming) one thread per shard,
  // before the first epoch begins (a long restore must not hold a
  // transaction open).
  const size_t hot_bytes = config.state.HotBytesPerShard(shards);
  std::vector<std::unique_ptr<LabelJoin>> joins(tasks > 0 ? 0 : shards);
  std::vector<Status> prepared(shards);
  const auto prepare = [&](uint32_t shard) -> Status {
    JoinState state(shard, stores[shard].get(), hot_bytes, &metrics.join);
    if (changelogs != nullptr) state.SetChangelog(changelogs->shard(shard));
    if (resume != nullptr) {
      CTRJOIN_RETURN_IF_ERROR(RestoreShard(*resume, *changelogs, groups, shard, state));
    }
    joins[shard] = std::make_unique<LabelJoin>(config.join, std::move(state), &metrics.join);
    if (resume != nullptr) CTRJOIN_RETURN_IF_ERROR(joins[shard]->Restore(resume->watermark));
    return Status::Ok();
  };
  {
    if (resume != nullptr) {
      metrics.startup.Set(fmt::format("restoring the state of checkpoint {} into {} shards",
                                      resume->epoch, shards));
    }
    std::vector<std::thread> threads;
    for (uint32_t i = 0; i < joins.size(); ++i) {
      threads.emplace_back([&, i] { prepared[i] = prepare(i); });
    }
    for (std::thread& t : threads) t.join();
  }
  for (const Status& st : prepared) CTRJOIN_RETURN_IF_ERROR(st);
  // A shard holds at most ceil(tasks / shards) tasks: each gets that share
  // of the shard's budget.
  const size_t task_hot_bytes =
      tasks > 0 ? hot_bytes / ((static_cast<uint32_t>(tasks) + shards - 1) / shards) : 0;
  ShardFactory make_shard = [&](uint32_t shard) -> Result<std::unique_ptr<ShardProcessor>> {
    if (tasks > 0) {
      return std::unique_ptr<ShardProcessor>(std::make_unique<TaskShard>(
          [&](int32_t task) {
            return TaskJoin::Open(config, metrics, memory, task_hot_bytes, task, task_changelog,
                                  eos != nullptr ? eos->changelog_trimmer : nullptr);
          },
          &metrics.pipeline.task_state_entries));
    }
    return std::unique_ptr<ShardProcessor>(std::move(joins[shard]));
  };

  Pipeline pipeline(pipeline_options, config.ParserSchema(), config.watermark, &source, enricher,
                    &sink, &dead_letters, &metrics.pipeline);
  if (end_after_window_ms >= 0) pipeline.EndAfterWindows(end_after_window_ms);
  if (tasks > 0) pipeline.RequireCoPartitioned({tasks, &KafkaDefaultPartition});
  if (eos != nullptr) {
    pipeline.SetCheckpointHooks(eos->coordinator);
    if (changelogs != nullptr) {
      eos->coordinator->UseChangelogs(
          changelogs->generation(), [logs = changelogs.get(), &metrics](uint64_t oldest) {
            Status st = logs->Release(oldest);
            metrics.checkpoint.changelog_disk_bytes.Set(static_cast<int64_t>(logs->disk_bytes()));
            return st;
          });
    }
    if (eos->resume) pipeline.ResumeFrom(*eos->resume);
    CTRJOIN_RETURN_IF_ERROR(eos->coordinator->Start());
  }
  g_enricher.store(enricher);
  g_pipeline.store(&pipeline);
  if (StopRequested()) pipeline.Stop();
  spdlog::info("ctrjoin: {} -> {} ({} shards, window {} ms, state budget {} MiB)",
               source.Describe(), sink.Describe(), shards, config.join.window_ms,
               config.state.memory_budget_mb);
  const auto start = std::chrono::steady_clock::now();
  Status st = pipeline.Run(make_shard);
  if (eos != nullptr) {
    Status closed = eos->coordinator->Close();
    if (st.ok()) st = closed;
  }
  own_ops.reset();  // stops and joins the server thread
  g_pipeline.store(nullptr);
  g_enricher.store(nullptr);
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const JoinMetrics& j = metrics.join;
  spdlog::info(
      "ctrjoin: done in {:.2f} s: {} impressions, {} clicks in; {} samples out ({} positive, {} "
      "negative, {} corrections); dead letters {}, duplicate clicks {}, duplicate impressions {}, "
      "orphan clicks {}, late clicks {}, clicks outside window {}, late impressions {}",
      secs, metrics.pipeline.impressions_in.Get(), metrics.pipeline.clicks_in.Get(),
      metrics.pipeline.samples_out.Get(), j.positives.Get(), j.negatives.Get(), j.corrections.Get(),
      metrics.pipeline.dead_letters.Get(), j.duplicate_clicks.Get(), j.duplicate_impressions.Get(),
      j.orphan_clicks.Get(), j.late_clicks.Get(), j.clicks_outside_window.Get(),
      j.late_impressions.Get());
  if (eos != nullptr) {
    const CheckpointMetrics& c = metrics.checkpoint;
    spdlog::info(
        "ctrjoin: checkpoints {} ({} committed, {} aborted epochs, {} restores), last committed "
        "epoch {}, state written {:.1f} MiB; checkpoint duration p99 <= {} ms (max {:.1f}); "
        "barrier to commit p99 <= {} ms (max {:.1f})",
        c.completed.Get(), c.committed.Get(), c.aborted_epochs.Get(), c.restores.Get(),
        c.last_committed_epoch.Get(), c.bytes_total.Get() / 1048576.0,
        c.duration.QuantileBoundMs(0.99), c.duration.max_ms(), c.commit_lag.QuantileBoundMs(0.99),
        c.commit_lag.max_ms());
  }
  if (enricher != nullptr) {
    const LookupMetrics& l = metrics.lookup;
    const auto sum = [&l](Counter LookupCounters::*field) { return l.Sum(field); };
    const uint64_t hits = sum(&LookupCounters::cache_hits);
    const uint64_t lookups = hits + sum(&LookupCounters::cache_misses);
    spdlog::info(
        "ctrjoin: feature lookups {}: cache hits {} ({:.1f}%), store rows {}, store calls {}, "
        "coalesced {}, retries {}, errors {}, partial {}, breaker openings {}",
        lookups, hits, lookups > 0 ? 100.0 * hits / lookups : 0.0, sum(&LookupCounters::requests),
        sum(&LookupCounters::store_calls), sum(&LookupCounters::coalesced),
        sum(&LookupCounters::retries), sum(&LookupCounters::errors), sum(&LookupCounters::partial),
        l.breaker_openings.Get());
  }
  return st;
}

namespace {

// Runs the pipeline described by config; a replay (options non-null) ends
// after the windows of its range and reports progress.
// The lock wait of the process's own directories: gives up on a stop, and
// says every few seconds what it waits for.
LockWait MakeLockWait(std::chrono::milliseconds wait) {
  LockWait w;
  w.timeout = wait.count() < 0 ? std::chrono::milliseconds::max() : wait;
  w.stop_requested = StopRequested;
  w.report = [](long holder, std::chrono::milliseconds waited) {
    spdlog::info("waiting for a job directory held by pid {} ({} s so far)", holder,
                 waited.count() / 1000);
  };
  return w;
}

// One process per job: the state and checkpoint directories, locked before
// anything in them is read or written, for as long as the run lasts. (A
// transactional file sink locks its own directory.)
struct JobLocks {
  std::unique_ptr<DirectoryLock> state;
  std::unique_ptr<DirectoryLock> checkpoints;
};

Result<JobLocks> LockJob(const Config& config, std::chrono::milliseconds wait) {
  JobLocks locks;
  auto state = DirectoryLock::Acquire(config.state.dir, "state.dir", MakeLockWait(wait));
  if (!state.ok()) return state.status();
  locks.state = std::move(state).value();
  if (config.checkpoint.enabled) {
    auto checkpoints =
        DirectoryLock::Acquire(config.checkpoint.dir, "checkpoint.dir", MakeLockWait(wait));
    if (!checkpoints.ok()) return checkpoints.status();
    locks.checkpoints = std::move(checkpoints).value();
  }
  return locks;
}

// Opens a dependency at start-up. One that does not answer (TimedOut,
// Unavailable: brokers down, a store not listening) is retried with backoff
// (0.5 s doubling to 10 s, +-20% jitter) until it answers, the run is
// stopped, or startup.timeout_ms passes; /ready names what start-up waits
// for meanwhile. Any other error ends the start at once. nullopt: stopped
// (SIGINT/SIGTERM) while waiting.
template <typename T>
Result<std::optional<T>> OpenWithRetry(const Config& config, Metrics& metrics,
                                       const std::string& what,
                                       const std::function<Result<T>()>& open) {
  using namespace std::chrono;
  const auto start = steady_clock::now();
  auto backoff = milliseconds(500);
  std::mt19937 rng(std::random_device{}());
  for (int attempt = 1;; ++attempt) {
    Result<T> r = open();
    const double waited = duration<double>(steady_clock::now() - start).count();
    if (r.ok()) {
      if (attempt > 1) {
        spdlog::info("start-up: {} answered after {:.1f} s ({} attempts)", what, waited, attempt);
      }
      return std::optional<T>(std::move(r).value());
    }
    const StatusCode code = r.status().code();
    if (code != StatusCode::kTimedOut && code != StatusCode::kUnavailable) return r.status();
    const auto limit = milliseconds(config.startup.timeout_ms);
    if (config.startup.timeout_ms > 0 && steady_clock::now() - start + backoff > limit) {
      return r.status().WithContext(
          fmt::format("start-up: gave up on {} after {:.1f} s and {} attempts (startup.timeout_ms)",
                      what, waited, attempt));
    }
    const auto wait = duration_cast<milliseconds>(
        backoff * std::uniform_real_distribution<double>(0.8, 1.2)(rng));
    spdlog::warn("start-up: {} does not answer ({}); attempt {} failed, next in {:.1f} s", what,
                 r.status().message(), attempt, wait.count() / 1000.0);
    metrics.startup.Set(fmt::format("waiting for {} ({} attempts, {:.0f} s; next in {:.1f} s): {}",
                                    what, attempt, waited, wait.count() / 1000.0,
                                    r.status().message()));
    for (auto until = steady_clock::now() + wait; steady_clock::now() < until;) {
      if (StopRequested()) {
        spdlog::info("start-up: stopped while waiting for {}", what);
        return std::optional<T>();
      }
      std::this_thread::sleep_for(milliseconds(50));
    }
    backoff = std::min<milliseconds>(backoff * 2, seconds(10));
  }
}

// /metrics, /healthz and /ready, first thing, so that a start that waits
// shows; null when http.enabled is off.
Result<std::unique_ptr<OpsServer>> StartOps(const Config& config, Metrics& metrics) {
  if (!config.http.enabled) return std::unique_ptr<OpsServer>();
  return OpsServer::Start(config, metrics, config.checkpoint.enabled);
}

// ops: the run's HTTP endpoint, if the caller started it (replay does,
// before it resolves its range); else started here.
Status RunFromConfig(const Config& config, Metrics& metrics, const ReplayOptions* replay,
                     const StartOptions& start, std::unique_ptr<OpsServer> ops = nullptr) {
  if (ops == nullptr) {
    auto server = StartOps(config, metrics);
    if (!server.ok()) return server.status();
    ops = std::move(server).value();
  }
  const std::string brokers_what =
      config.source.type == SourceType::kKafka
          ? fmt::format("source.kafka (brokers {})", config.source.kafka.brokers)
          : "source.files";
  metrics.startup.Set("opening " + brokers_what);
  auto opened = OpenWithRetry<std::unique_ptr<Source>>(config, metrics, brokers_what, [&] {
    return MakeSource(config, replay != nullptr, start.recover.reset_state);
  });
  if (!opened.ok()) return opened.status();
  if (!opened->has_value()) return Status::Ok();  // stopped while waiting
  Result<std::unique_ptr<Source>> source = std::move(**opened);
  auto* kafka_source = dynamic_cast<KafkaSource*>(source->get());
  const int64_t end_after = replay != nullptr ? config.join.window_ms : -1;
  // Started once the source is at its resume positions, so that what an
  // earlier run read does not count towards this run's rate.
  std::unique_ptr<ReplayProgress> progress;
  auto start_progress = [&] {
    if (replay == nullptr || kafka_source == nullptr) return;
    const bool terminal = replay->progress == ReplayProgressMode::kAuto
                              ? isatty(2) == 1
                              : replay->progress == ReplayProgressMode::kTerminal;
    progress = std::make_unique<ReplayProgress>(kafka_source, &metrics, terminal);
  };
  const std::string store_what =
      fmt::format("feature_store ({})", NameOf(config.feature_store.type));
  auto enriched = OpenWithRetry<Enrichment>(config, metrics, store_what,
                                            [&] { return MakeEnrichment(config, metrics); });
  if (!enriched.ok()) return enriched.status();
  if (!enriched->has_value()) return Status::Ok();  // stopped while waiting
  Enrichment* enrichment = &**enriched;
  const OutputSchema schema = config.PublishedSchema();
  // Beside the parts; beside a single file as <file>.schema.json, unless
  // it is no regular file (/dev/stdout, a FIFO: `ctrjoin schema` prints it).
  if (config.sink.type == SinkType::kFile) {
    namespace fs = std::filesystem;
    if (config.checkpoint.enabled || config.sink.Rolled()) {
      CTRJOIN_RETURN_IF_ERROR(PublishSchema(schema, config.sink.path).WithContext("sink.path"));
      spdlog::info("output schema {} published in {}/_schema.json", schema.Id(), config.sink.path);
    } else if (const fs::path file = fs::absolute(config.sink.path);
               !fs::exists(file) || fs::is_regular_file(file)) {
      CTRJOIN_RETURN_IF_ERROR(
          PublishFile(file.parent_path(), file.filename().string() + ".schema.json", schema.Json())
              .WithContext("sink.path"));
    }
  }
  if (!config.checkpoint.enabled) {
    auto dead_letters = MakeDeadLetterSink(config.dead_letter, &metrics.producer);
    if (!dead_letters.ok()) return dead_letters.status();
    SinkConfig sink_config = config.sink;
    sink_config.kafka.schema_id = schema.Id();
    auto sink = MakeSink(sink_config, &metrics.producer);
    if (!sink.ok()) return sink.status();
    start_progress();
    metrics.startup.Set("");
    return RunPipelineWith(config, metrics, **source, enrichment->service.get(), **sink,
                           **dead_letters, nullptr, end_after, ops.get());
  }

  // Exactly once: a transactional sink driven by the checkpoint coordinator.
  const bool epoch_dead_letters = DeadLettersInEpochs(config);
  std::unique_ptr<DeadLetterSink> outside_epochs;
  if (epoch_dead_letters) {
    spdlog::info("dead letters are committed with the epochs, to {}",
                 config.sink.type == SinkType::kFile ? config.sink.path + "/dead-letters/"
                                                     : "topic " + config.dead_letter.kafka.topic);
  } else {
    auto d = MakeDeadLetterSink(config.dead_letter, &metrics.producer);
    if (!d.ok()) return d.status();
    outside_epochs = std::move(d).value();
    spdlog::warn(
        "dead_letter.type '{}' does not fit sink.type '{}': dead letters are written outside "
        "the epochs, and again after a restart (txn/README.md, \"Dead letters\")",
        NameOf(config.dead_letter.type), NameOf(config.sink.type));
  }
  std::unique_ptr<ChangelogTrimmer> trimmer;  // outlives txn_sink, which borrows it
  std::unique_ptr<TransactionalSink> txn_sink;
  CommitLog log;
  // Mode group: the tasks' state is in the changelog topic (validated: a
  // Kafka sink and source).
  std::optional<ChangelogTopicOptions> task_changelog;
  if (kafka_source != nullptr && kafka_source->co_partitions() > 0) {
    task_changelog = ChangelogTopicOptions{
        config.source.kafka.brokers, config.source.kafka.group_id + "-changelog",
        config.source.kafka.group_id, config.source.kafka.properties};
    CTRJOIN_RETURN_IF_ERROR(EnsureChangelogTopic(*task_changelog, kafka_source->co_partitions()));
  }
  if (config.sink.type == SinkType::kKafka) {
    // Every id the job ever used is fenced, also after its pool shrank.
    KafkaTransactionalSinkOptions options = config.KafkaTxnSinkOptions();
    if (task_changelog.has_value()) {
      // Each process its own ids, the same after a restart: the restart
      // then aborts what its predecessor left open.
      Result<std::string> instance = InstanceId(config.state.dir);
      if (!instance.ok()) return instance.status();
      options.transactional_id_prefix += "-" + *instance;
      options.changelog_topic = task_changelog->topic;
      auto opened_trimmer = ChangelogTrimmer::Open(
          task_changelog->brokers, task_changelog->properties, task_changelog->topic);
      if (!opened_trimmer.ok()) return opened_trimmer.status();
      trimmer = std::move(opened_trimmer).value();
      options.changelog_trimmer = trimmer.get();
    }
    Result<int> used = CheckpointStore::RecordedPoolSize(config.checkpoint.dir);
    if (!used.ok()) return used.status();
    options.fence_pool_size = *used;
    options.metrics = &metrics.producer;
    if (epoch_dead_letters) options.dead_letter_topic = config.dead_letter.kafka.topic;
    auto opened_sink = OpenWithRetry<std::unique_ptr<KafkaTransactionalSink>>(
        config, metrics, fmt::format("sink.kafka (brokers {})", options.brokers),
        [&] { return KafkaTransactionalSink::Open(options); });
    if (!opened_sink.ok()) return opened_sink.status();
    if (!opened_sink->has_value()) return Status::Ok();  // stopped while waiting
    std::unique_ptr<KafkaTransactionalSink> s = std::move(**opened_sink);
    CTRJOIN_RETURN_IF_ERROR(
        CheckpointStore::RecordPoolSize(config.checkpoint.dir, options.pool_size));
    KafkaTransactionalSink* kafka_sink = s.get();
    txn_sink = std::move(s);
    // Validated: a Kafka sink has a Kafka source.
    log = KafkaCommitLog(kafka_source, kafka_sink);
    log.state_in_output = task_changelog.has_value();
  } else {
    TransactionalFileSinkOptions o;
    o.dir = config.sink.path;
    o.format = config.sink.format;
    o.compression = config.sink.compression;
    o.roll_bytes = config.sink.roll_bytes;
    o.roll_ms = config.sink.roll_ms;
    o.lock_wait = MakeLockWait(start.lock_wait);
    auto s = TransactionalFileSink::Open(o);
    if (!s.ok()) return s.status();
    txn_sink = std::move(s).value();
  }
  auto coordinator =
      CheckpointCoordinator::Open(config.checkpoint, txn_sink.get(), log, &metrics.checkpoint);
  if (!coordinator.ok()) return coordinator.status();
  ExactlyOnce eos{coordinator->get(), std::nullopt, task_changelog, trimmer.get()};
  metrics.startup.Set(
      "recovering: reading the committed epoch (waits while a transaction that sent offsets "
      "for the input is still open)");
  auto resume = (*coordinator)->Recover(start.recover);
  if (resume.status().code() == StatusCode::kStopped) {
    // A stop ended a wait of the recovery (for stable committed offsets):
    // nothing was started, nothing is lost.
    spdlog::info("start-up: stopped while recovering: {}", resume.status().ToString());
    return Status::Ok();
  }
  if (!resume.ok()) return resume.status();
  eos.resume = std::move(resume).value();
  if (eos.resume) CTRJOIN_RETURN_IF_ERROR((*source)->Seek(eos.resume->positions));
  start_progress();
  DeadLetterSink& dead_letters =
      epoch_dead_letters ? static_cast<DeadLetterSink&>(**coordinator) : *outside_epochs;
  metrics.startup.Set("");
  return RunPipelineWith(config, metrics, **source, enrichment->service.get(), **coordinator,
                         dead_letters, &eos, end_after, ops.get());
}

}  // namespace

Status RunPipeline(const Config& config, Metrics& metrics, const StartOptions& start) {
  Result<JobLocks> locks = LockJob(config, start.lock_wait);
  if (!locks.ok()) return locks.status();
  return RunFromConfig(config, metrics, /*replay=*/nullptr, start);
}

Result<Config> ReplayConfig(const Config& live, const ReplayOptions& options) {
  if (live.source.type != SourceType::kKafka) {
    return Status::InvalidArgument(
        fmt::format("source.type: replay reads a range of Kafka topics, this config reads '{}'",
                    NameOf(live.source.type)));
  }
  CTRJOIN_RETURN_IF_ERROR(options.range.Validate());
  if (options.name.empty() ||
      options.name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                     "0123456789-_.") != std::string::npos) {
    return Status::InvalidArgument(
        fmt::format("--name: letters, digits, '-', '_' and '.' only, got '{}'", options.name));
  }
  Config c = live;
  const std::string suffix = "-replay-" + options.name;
  c.source.kafka.group_id = live.source.kafka.group_id + suffix;
  c.source.kafka.mode = KafkaMode::kAssign;
  c.source.kafka.stop_at_end = true;
  c.state.dir = live.state.dir + "/replay-" + options.name;
  c.checkpoint.dir = live.checkpoint.dir == live.state.dir + "/checkpoints"
                         ? c.state.dir + "/checkpoints"
                         : live.checkpoint.dir + "/replay-" + options.name;
  c.http.server.address = options.http_address;
  // Beside the live job, which holds the embedded store's lock and loaded it.
  c.feature_store.embedded.read_only = true;
  c.feature_store.embedded.load.clear();
  // The live run's dead letters are its own: a replay's go next to its state.
  c.dead_letter.type = DeadLetterType::kFile;
  c.dead_letter.path = c.state.dir + "/dead-letters.jsonl";
  if (live.sink.type == SinkType::kStdout) {
    c.checkpoint.enabled = false;
    return c;
  }
  if (options.output.empty()) {
    return Status::InvalidArgument(
        fmt::format("--output: required: the replay's own {} (never the live run's)",
                    live.sink.type == SinkType::kKafka ? "topic" : "directory"));
  }
  // A replay is restartable only from its own checkpoints.
  c.checkpoint.enabled = true;
  if (live.sink.type == SinkType::kKafka) {
    // Every topic the live job reads or writes is refused.
    const std::pair<const std::string*, const char*> taken[] = {
        {&live.sink.kafka.topic, "output topic"},
        {&live.source.kafka.impressions_topic, "impressions topic"},
        {&live.source.kafka.clicks_topic, "clicks topic"},
        {&live.dead_letter.kafka.topic, "dead-letter topic"},
    };
    for (const auto& [topic, what] : taken) {
      if (options.output == *topic) {
        return Status::InvalidArgument(fmt::format(
            "--output: '{}' is the live run's {}; a replay writes its own", options.output, what));
      }
    }
    c.sink.kafka.topic = options.output;
    c.sink.transactional_id_prefix = !options.transactional_id_prefix.empty()
                                         ? options.transactional_id_prefix
                                         : live.sink.transactional_id_prefix + suffix;
    if (c.sink.transactional_id_prefix == live.sink.transactional_id_prefix) {
      return Status::InvalidArgument(
          "--transactional-id-prefix: must differ from the live run's sink.transactional_id_prefix "
          "(the live run's transactions would be fenced)");
    }
  } else {
    // Compared as canonical paths ("out/", "./out" and a symlink to it are
    // "out"), and neither may hold the other.
    std::error_code ec;
    namespace fs = std::filesystem;
    auto canonical = [&ec](const std::string& path) {
      fs::path p = fs::weakly_canonical(fs::absolute(path, ec), ec);
      return p.has_filename() ? p : p.parent_path();  // "out/" is "out"
    };
    const fs::path out = canonical(options.output);
    const fs::path taken = canonical(live.sink.path);
    auto within = [](const fs::path& inner, const fs::path& outer) {
      auto [o, i] = std::mismatch(outer.begin(), outer.end(), inner.begin(), inner.end());
      return o == outer.end();
    };
    if (ec || within(out, taken) || within(taken, out)) {
      return Status::InvalidArgument(fmt::format(
          "--output: '{}' is, holds or lies in the live run's sink.path '{}'; a replay writes "
          "its own directory",
          options.output, live.sink.path));
    }
    c.sink.path = options.output;
  }
  CTRJOIN_RETURN_IF_ERROR(c.Validate());
  return c;
}

Status RunReplay(const Config& live, const ReplayOptions& options, Metrics& metrics,
                 const StartOptions& start) {
  Result<Config> config = ReplayConfig(live, options);
  if (!config.ok()) return config.status();
  Result<JobLocks> locks = LockJob(*config, start.lock_wait);
  if (!locks.ok()) return locks.status();
  // The range is resolved once, by the first run under this name, and kept:
  // "the end at start-up" and offsets-for-times must not move on a resume.
  const std::string range_file = config->state.dir + "/RANGE";
  Result<ResolvedRange> range = LoadResolvedRange(range_file, options.range);
  if (!range.ok() && range.status().code() != StatusCode::kNotFound) {
    return range.status().WithContext(fmt::format("--name {}", options.name));
  }
  auto ops = StartOps(*config, metrics);
  if (!ops.ok()) return ops.status();
  if (!range.ok()) {
    metrics.startup.Set("resolving the replay range");
    auto resolved = OpenWithRetry<ResolvedRange>(
        *config, metrics,
        fmt::format("the replay range (brokers {})", config->source.kafka.brokers),
        [&] { return ResolveReplayRange(config->source.kafka, options.range); });
    if (!resolved.ok()) return resolved.status();
    if (!resolved->has_value()) return Status::Ok();  // stopped while waiting
    range = std::move(**resolved);
    CTRJOIN_RETURN_IF_ERROR(SaveResolvedRange(range_file, options.range, *range));
  } else {
    spdlog::info("replay '{}': resuming the range resolved by its first run", options.name);
  }
  spdlog::info("replay '{}': {} = {} impressions; clicks from time {}: {}", options.name,
               options.range.Describe(), range->impressions, range->click_start_ms,
               range->Describe());
  config->source.kafka.start_offsets = range->start;
  config->source.kafka.end_offsets = range->end;
  CTRJOIN_RETURN_IF_ERROR(RunFromConfig(*config, metrics, &options, start, std::move(ops).value()));
  // The whole range is committed: a trainer waiting for the backfill sees
  // _SUCCESS (a stop leaves none; the resumed run writes it).
  if (StopRequested() || config->sink.type != SinkType::kFile) return Status::Ok();
  CTRJOIN_RETURN_IF_ERROR(WriteCompletionMarker(
      config->sink.path, config->sink.format,
      fmt::format("replay '{}' of {}", options.name, options.range.Describe())));
  spdlog::info("replay '{}': finished; {}/_SUCCESS written", options.name, config->sink.path);
  return Status::Ok();
}

namespace {

Status WriteFeatureRows(const GenerateOptions& options, const WorkloadOptions& workload);

// Every record of the workload's first n impressions (and the clicks they
// lead to), in arrival order; stops at the first error fn returns.
Status ForEachGenerated(const WorkloadOptions& workload, uint64_t n,
                        const std::function<Status(const GeneratedRecord&)>& fn) {
  WorkloadGenerator gen(workload);
  while (gen.impressions_generated() < n) CTRJOIN_RETURN_IF_ERROR(fn(gen.Next()));
  GeneratedRecord r;
  while (gen.Drain(r)) CTRJOIN_RETURN_IF_ERROR(fn(r));
  return Status::Ok();
}

// `ctrjoin gen --brokers`: the trace into Kafka, record timestamps = arrival,
// keyed by impression id under Kafka's default partitioner, so the two topics
// are co-partitioned (what `source.kafka.mode: group` needs).
Status ProduceTrace(const GenerateOptions& options, const WorkloadOptions& workload) {
  auto producer = BulkProducer::Open({{"bootstrap.servers", options.brokers},
                                      {"linger.ms", "20"},
                                      {"partitioner", "murmur2_random"}});
  if (!producer.ok()) return producer.status().WithContext("gen");
  CTRJOIN_RETURN_IF_ERROR(
      ForEachGenerated(workload, options.impressions, [&](const GeneratedRecord& r) {
        const std::string& topic =
            r.stream == StreamKind::kImpression ? options.impressions_topic : options.clicks_topic;
        return (*producer)->Produce(topic, -1, r.json, r.arrival_ms, r.key);
      }));
  return (*producer)->Flush(60'000).WithContext("gen");
}

}  // namespace

Status GenerateTrace(const GenerateOptions& options, const WorkloadOptions& workload) {
  if (!options.brokers.empty()) {
    CTRJOIN_RETURN_IF_ERROR(ProduceTrace(options, workload));
    return WriteFeatureRows(options, workload);
  }
  auto impressions = LineWriter::OpenFile(options.impressions_path, false);
  if (!impressions.ok()) return impressions.status();
  auto clicks = LineWriter::OpenFile(options.clicks_path, false);
  if (!clicks.ok()) return clicks.status();
  std::unique_ptr<LineWriter> truth;
  if (!options.truth_path.empty()) {
    auto t = LineWriter::OpenFile(options.truth_path, false);
    if (!t.ok()) return t.status();
    truth = std::move(t).value();
  }
  CTRJOIN_RETURN_IF_ERROR(
      ForEachGenerated(workload, options.impressions, [&](const GeneratedRecord& r) {
        LineWriter& out = r.stream == StreamKind::kImpression ? **impressions : **clicks;
        if (truth != nullptr && r.p_click >= 0) {
          CTRJOIN_RETURN_IF_ERROR(truth->WriteLine(
              fmt::format(R"({{"impression_id":"{}","p_click":{}}})", r.impression_id, r.p_click)));
        }
        return out.WriteLine(r.json);
      }));
  CTRJOIN_RETURN_IF_ERROR((*impressions)->Flush());
  CTRJOIN_RETURN_IF_ERROR((*clicks)->Flush());
  if (truth != nullptr) CTRJOIN_RETURN_IF_ERROR(truth->Flush());
  return WriteFeatureRows(options, workload);
}

namespace {

Status WriteFeatureRows(const GenerateOptions& options, const WorkloadOptions& workload) {
  if (options.features_path.empty()) return Status::Ok();
  auto features = LineWriter::OpenFile(options.features_path, false);
  if (!features.ok()) return features.status();
  Status written;
  GenerateFeatureRows(workload, [&](const std::string& json) {
    if (written.ok()) written = (*features)->WriteLine(json);
  });
  CTRJOIN_RETURN_IF_ERROR(written);
  return (*features)->Flush();
}

}  // namespace

}  // namespace ctrjoin
