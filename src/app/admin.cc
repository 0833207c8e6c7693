#include "src/app/admin.h"

#include <fmt/format.h>

#include <ctime>
#include <filesystem>

#include "sinks/kafka_txn_sink.h"
#include "src/app/app.h"
#include "src/state/changelog.h"
#include "txn/checkpoint_store.h"

namespace ctrjoin {

namespace {

namespace fs = std::filesystem;

std::string UtcTime(int64_t ms) {
  if (ms == EventTime::Min().ms) return "-";
  if (ms == EventTime::Max().ms) return "end";
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03}Z", buf, ms % 1000 < 0 ? 0 : ms % 1000);
}

}  // namespace

Status ListCheckpoints(const Config& config, std::FILE* out) {
  auto store = CheckpointStore::Inspect(config.checkpoint.dir);
  if (!store.ok()) return store.status();
  auto epochs = (*store)->List();
  if (!epochs.ok()) return epochs.status();
  std::fprintf(out, "%s: %zu complete checkpoints\n", config.checkpoint.dir.c_str(),
               epochs->size());
  if (config.source.type == SourceType::kKafka && config.source.kafka.mode == KafkaMode::kGroup) {
    std::fprintf(out,
                 "mode group: they record only this process's epochs; each task's state and "
                 "offsets are in Kafka (topic %s-changelog, partition = task, and group %s's "
                 "committed offsets), which is what a task restores from\n",
                 config.source.kafka.group_id.c_str(), config.source.kafka.group_id.c_str());
  }
  if (epochs->empty()) return Status::Ok();
  std::fprintf(out, "%-8s %-24s %6s %-24s %12s\n", "epoch", "created (UTC)", "shards",
               "watermark (UTC)", "log bytes");
  for (uint64_t epoch : *epochs) {
    auto meta = (*store)->Load(epoch);
    if (!meta.ok()) {
      std::fprintf(out, "%-8llu unreadable: %s\n", static_cast<unsigned long long>(epoch),
                   meta.status().ToString().c_str());
      continue;
    }
    std::fprintf(out, "%-8llu %-24s %6u %-24s %12llu\n", static_cast<unsigned long long>(epoch),
                 UtcTime(meta->created_ms).c_str(), meta->shards,
                 UtcTime(meta->watermark.ms).c_str(),
                 static_cast<unsigned long long>(meta->state_bytes));
  }
  return Status::Ok();
}

Status ShowCheckpoint(const Config& config, uint64_t epoch, std::FILE* out) {
  auto store = CheckpointStore::Inspect(config.checkpoint.dir);
  if (!store.ok()) return store.status();
  auto meta = (*store)->Load(epoch);
  if (!meta.ok()) return meta.status().WithContext(fmt::format("checkpoint {}", epoch));
  std::fprintf(out, "checkpoint %llu in %s\n", static_cast<unsigned long long>(epoch),
               config.checkpoint.dir.c_str());
  std::fprintf(out, "  created    %s\n", UtcTime(meta->created_ms).c_str());
  std::fprintf(out, "  watermark  %s (%lld)\n", UtcTime(meta->watermark.ms).c_str(),
               static_cast<long long>(meta->watermark.ms));
  std::fprintf(out, "  log bytes  %llu (changelog bytes the epoch appended)\n",
               static_cast<unsigned long long>(meta->state_bytes));
  std::fprintf(out, "  key groups %u\n", meta->key_groups);
  std::fprintf(out, "  input positions (next offset or line to read):\n");
  for (const auto& [id, pos] : meta->positions) {
    std::fprintf(out, "    %-11s [%d] %lld\n", StreamName(id.stream), id.partition,
                 static_cast<long long>(pos));
  }
  std::fprintf(out, "  max event time per partition:\n");
  for (const auto& [id, ts] : meta->partition_max_ts) {
    std::fprintf(
        out, "    %-11s [%d] %s\n", StreamName(id.stream), id.partition,
        ts == EventTime::Min() ? "none yet (holds the watermark back)" : UtcTime(ts.ms).c_str());
  }
  std::fprintf(out, "  shards: %u (changelog generation %llu)\n", meta->shards,
               static_cast<unsigned long long>(meta->changelog_generation));
  for (uint32_t i = 0; i < meta->shards; ++i) {
    const std::string dir = fmt::format("{}/changelog/gen-{}/shard-{}", config.checkpoint.dir,
                                        meta->changelog_generation, i);
    std::fprintf(out, "    shard-%u  marker in segment %llu at byte %llu; %llu bytes on disk\n", i,
                 static_cast<unsigned long long>(meta->shard_logs[i].segment),
                 static_cast<unsigned long long>(meta->shard_logs[i].offset),
                 static_cast<unsigned long long>(ChangelogDiskBytes(dir)));
  }
  return Status::Ok();
}

Status AbortTransactions(const Config& config, const std::string& prefix, int pool_size,
                         std::FILE* out) {
  if (config.sink.type != SinkType::kKafka) {
    return Status::InvalidArgument(
        fmt::format("sink.type: transactions belong to a Kafka sink, this config's sink is '{}'",
                    NameOf(config.sink.type)));
  }
  KafkaTransactionalSinkOptions o = config.KafkaTxnSinkOptions();
  if (!prefix.empty()) {
    o.transactional_id_prefix = prefix;
  } else if (config.source.type == SourceType::kKafka &&
             config.source.kafka.mode == KafkaMode::kGroup && config.checkpoint.enabled) {
    // Each process of the job has ids of its own (txn/README.md, "Several
    // processes on one job"): this config's state.dir names this one's.
    Result<std::string> instance = ReadInstanceId(config.state.dir);
    if (!instance.ok()) {
      return instance.status().WithContext(
          "abort-transactions in mode group (a process's ids are <prefix>-<instance>-<i>; "
          "--prefix names them directly)");
    }
    o.transactional_id_prefix += "-" + *instance;
  }
  if (pool_size != 0) o.pool_size = pool_size;
  CTRJOIN_RETURN_IF_ERROR(o.Validate());
  // Open initialises transactions on every id of the pool, which is the abort.
  auto sink = KafkaTransactionalSink::Open(o);
  if (!sink.ok()) return sink.status();
  std::fprintf(out,
               "aborted any open transaction of %s-0 .. %s-%d on %s (their previous producers "
               "are fenced)\n",
               o.transactional_id_prefix.c_str(), o.transactional_id_prefix.c_str(),
               o.pool_size - 1, o.brokers.c_str());
  return Status::Ok();
}

}  // namespace ctrjoin
