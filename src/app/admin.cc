#include "src/app/admin.h"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string_view>

#include "sinks/kafka_txn_sink.h"
#include "src/app/app.h"
#include "src/io/kafka_client.h"
#include "src/io/kafka_source.h"
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

namespace {

// A partition's committed offset and tag, and its end offset.
struct TaskPartition {
  int64_t committed = -1;  // -1: none
  std::optional<CommitTag> tag;
  int64_t end = -1;
};

std::string OffsetsCell(const TaskPartition& p) {
  if (p.committed < 0) return fmt::format("-/{}", p.end);
  return fmt::format("{}/{} ({})", p.committed, p.end, std::max<int64_t>(0, p.end - p.committed));
}

// Which member of the group holds each task now, from the group's
// description (DescribeGroups): a ctrjoin process as "instance <id>" (its
// client id is ctrjoin-<id>), another client by its client id. `note` says
// why it is not known, or that a rebalance is under way.
std::map<int32_t, std::string> TaskHolders(rd_kafka_t* rk, const std::string& group_id,
                                           const std::string& impressions_topic, int timeout_ms,
                                           std::string& note) {
  std::map<int32_t, std::string> holders;
  const rd_kafka_group_list* raw = nullptr;
  const rd_kafka_resp_err_t err = rd_kafka_list_groups(rk, group_id.c_str(), &raw, timeout_ms);
  // __PARTIAL: a broker did not answer in time, but the list holds what came.
  std::unique_ptr<const rd_kafka_group_list, decltype(&rd_kafka_group_list_destroy)> list(
      raw, &rd_kafka_group_list_destroy);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR && (err != RD_KAFKA_RESP_ERR__PARTIAL || !list)) {
    note =
        fmt::format("held by: unknown, the group's description failed: {}", rd_kafka_err2str(err));
    return holders;
  }
  for (int g = 0; g < list->group_cnt; ++g) {
    const rd_kafka_group_info& group = list->groups[g];
    if (group.group == nullptr || group_id != group.group) continue;
    const std::string_view state = group.state != nullptr ? group.state : "";
    if (group.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      note = fmt::format("held by: unknown, the group's description failed: {}",
                         rd_kafka_err2str(group.err));
    } else if (state != "Stable" && state != "Empty" && state != "Dead") {
      note = fmt::format("held by: the group is rebalancing ({}); ask again", state);
    }
    for (int m = 0; m < group.member_cnt; ++m) {
      const rd_kafka_group_member_info& member = group.members[m];
      const std::string_view client = member.client_id != nullptr ? member.client_id : "";
      const std::string name =
          client.starts_with(kInstanceClientPrefix)
              ? fmt::format("instance {}", client.substr(kInstanceClientPrefix.size()))
              : fmt::format("client {}", client);
      Result<std::map<std::string, std::vector<int32_t>>> assignment = ParseConsumerAssignment(
          std::string_view(static_cast<const char*>(member.member_assignment),
                           static_cast<size_t>(member.member_assignment_size)));
      if (!assignment.ok()) {
        note =
            fmt::format("held by: member {}: {}", member.member_id, assignment.status().message());
        continue;
      }
      if (auto it = assignment->find(impressions_topic); it != assignment->end()) {
        for (int32_t p : it->second) holders[p] = name;
      }
    }
  }
  return holders;
}

}  // namespace

Status ShowTasks(const Config& config, std::FILE* out) {
  const KafkaSourceOptions& kafka = config.source.kafka;
  if (config.source.type != SourceType::kKafka || kafka.mode != KafkaMode::kGroup) {
    return Status::InvalidArgument(
        "source.kafka.mode: only mode group has tasks (partition p of both input topics); in "
        "mode assign one process reads every partition");
  }
  constexpr int kTimeoutMs = 10'000;
  std::map<std::string, std::string> properties = kafka.properties;
  properties["bootstrap.servers"] = kafka.brokers;
  properties["group.id"] = kafka.group_id;  // only read: never joined, nothing committed
  properties["enable.auto.commit"] = "false";
  // What is committed now, not waiting for an epoch's pending offsets.
  properties["isolation.level"] = "read_uncommitted";
  Result<KafkaConf> conf = MakeKafkaConf(properties);
  if (!conf.ok()) return conf.status().WithContext("source.kafka.properties");
  Result<KafkaHandle> client = MakeKafkaHandle(RD_KAFKA_CONSUMER, std::move(conf).value());
  if (!client.ok()) return client.status();
  rd_kafka_t* rk = client->get();

  const std::string topics[2] = {kafka.impressions_topic, kafka.clicks_topic};
  Result<std::vector<int32_t>> counts[2] = {KafkaTopicPartitions(rk, topics[0], kTimeoutMs),
                                            KafkaTopicPartitions(rk, topics[1], kTimeoutMs)};
  for (const auto& ids : counts) {
    if (!ids.ok()) return ids.status();
  }
  const int32_t tasks = static_cast<int32_t>(std::min(counts[0]->size(), counts[1]->size()));
  const std::string changelog = kafka.group_id + "-changelog";
  Result<std::vector<int32_t>> changelog_ids = KafkaTopicPartitionsOnce(rk, changelog, kTimeoutMs);
  if (!changelog_ids.ok() && changelog_ids.status().code() != StatusCode::kNotFound) {
    return changelog_ids.status();
  }
  const bool has_changelog = changelog_ids.ok();

  std::string holders_note;
  const std::map<int32_t, std::string> holders =
      TaskHolders(rk, kafka.group_id, topics[0], kTimeoutMs, holders_note);

  KafkaPartitionList committed(rd_kafka_topic_partition_list_new(2 * tasks));
  for (int32_t p = 0; p < tasks; ++p) {
    for (const std::string& topic : topics) {
      rd_kafka_topic_partition_list_add(committed.get(), topic.c_str(), p);
    }
  }
  CTRJOIN_RETURN_IF_ERROR(
      KafkaStatus(rd_kafka_committed(rk, committed.get(), kTimeoutMs),
                  fmt::format("group '{}': committed offsets", kafka.group_id)));
  std::fprintf(out, "group %s: %d tasks (task p = partition p of %s and %s)\n",
               kafka.group_id.c_str(), tasks, topics[0].c_str(), topics[1].c_str());
  std::fprintf(out,
               has_changelog ? "state: changelog topic %s, partition = task\n"
                             : "state: no changelog topic %s (no run with checkpoints yet)\n",
               changelog.c_str());
  std::fprintf(out, "offsets are committed/end (lag); '-': nothing committed yet\n");
  std::fprintf(out, "%-5s %-28s %-28s %-20s %-20s %s\n", "task", "impressions", "clicks",
               "changelog offsets", "held by", "last commit");
  for (int32_t p = 0; p < tasks; ++p) {
    TaskPartition parts[2];
    for (int s = 0; s < 2; ++s) {
      const rd_kafka_topic_partition_t& c =
          *rd_kafka_topic_partition_list_find(committed.get(), topics[s].c_str(), p);
      if (c.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return KafkaStatus(c.err, fmt::format("group '{}': committed offset of {}[{}]",
                                              kafka.group_id, topics[s], p));
      }
      parts[s].committed = c.offset >= 0 ? c.offset : -1;
      parts[s].tag =
          CommitTag::Parse(std::string_view(static_cast<const char*>(c.metadata), c.metadata_size));
      int64_t low = 0;
      CTRJOIN_RETURN_IF_ERROR(
          KafkaStatus(rd_kafka_query_watermark_offsets(rk, topics[s].c_str(), p, &low,
                                                       &parts[s].end, kTimeoutMs),
                      fmt::format("end offset of {}[{}]", topics[s], p)));
    }
    std::string kept = "-";
    if (has_changelog) {
      int64_t low = 0;
      int64_t high = 0;
      CTRJOIN_RETURN_IF_ERROR(KafkaStatus(
          rd_kafka_query_watermark_offsets(rk, changelog.c_str(), p, &low, &high, kTimeoutMs),
          fmt::format("offsets of {}[{}]", changelog, p)));
      kept = low == high ? fmt::format("{}.. (empty)", low) : fmt::format("{}..{}", low, high);
    }
    // Both partitions are committed together; the impressions' tag says it.
    const std::optional<CommitTag>& tag = parts[0].tag.has_value() ? parts[0].tag : parts[1].tag;
    std::string last = "never";
    if (tag.has_value()) {
      last = tag->instance.empty()
                 ? fmt::format("epoch {}", tag->epoch)
                 : fmt::format("epoch {} of instance {}", tag->epoch, tag->instance);
    } else if (parts[0].committed >= 0 || parts[1].committed >= 0) {
      last = "not by ctrjoin (no epoch tag)";
    }
    auto holder = holders.find(p);
    std::fprintf(out, "%-5d %-28s %-28s %-20s %-20s %s\n", p, OffsetsCell(parts[0]).c_str(),
                 OffsetsCell(parts[1]).c_str(), kept.c_str(),
                 holder != holders.end() ? holder->second.c_str() : "-", last.c_str());
  }
  if (!holders_note.empty()) std::fprintf(out, "%s\n", holders_note.c_str());
  if (counts[0]->size() != counts[1]->size()) {
    std::fprintf(out,
                 "warning: %s has %zu partitions and %s %zu: they are not co-partitioned, which "
                 "mode group refuses at start\n",
                 topics[0].c_str(), counts[0]->size(), topics[1].c_str(), counts[1]->size());
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
