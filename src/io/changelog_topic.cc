#include "src/io/changelog_topic.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <utility>

#include "src/io/kafka_client.h"

namespace ctrjoin {

namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr int kRequestTimeoutMs = 10'000;
constexpr int kPollMs = 100;
constexpr std::chrono::seconds kNoteEvery{5};

Result<KafkaHandle> NewClient(const ChangelogTopicOptions& options, rd_kafka_type_t type) {
  std::map<std::string, std::string> properties = options.properties;
  properties["bootstrap.servers"] = options.brokers;
  if (type == RD_KAFKA_CONSUMER) {
    // librdkafka's consumer needs a group even to assign; this one is never
    // joined and commits nothing.
    properties["group.id"] = options.group_id + ".changelog-restore";
    properties["isolation.level"] = "read_committed";
    properties["enable.auto.commit"] = "false";
    properties["enable.partition.eof"] = "true";
    properties["auto.offset.reset"] = "earliest";
    // The end of a partition shows as soon as a fetch reaches it (20 ms: a
    // restore waiting for an open transaction asks 50 times a second).
    properties.try_emplace("fetch.wait.max.ms", "20");
  }
  Result<KafkaConf> conf = MakeKafkaConf(properties);
  if (!conf.ok()) return conf.status().WithContext("source.kafka.properties");
  return MakeKafkaHandle(type, std::move(conf).value());
}

}  // namespace

Status EnsureChangelogTopic(const ChangelogTopicOptions& options, int32_t tasks) {
  Result<KafkaHandle> client = NewClient(options, RD_KAFKA_PRODUCER);
  if (!client.ok()) return client.status();
  CTRJOIN_RETURN_IF_ERROR(
      CreateKafkaTopics(client->get(), {{options.topic, tasks}}, kRequestTimeoutMs)
          .WithContext(fmt::format("changelog topic '{}'", options.topic)));
  Result<std::vector<int32_t>> ids =
      KafkaTopicPartitions(client->get(), options.topic, kRequestTimeoutMs);
  if (!ids.ok()) return ids.status();
  if (static_cast<int32_t>(ids->size()) != tasks) {
    return Status::InvalidArgument(fmt::format(
        "changelog topic '{}' has {} partitions, but the job has {} tasks (the input topics' "
        "partition count): a task's state is in the partition of its number, so the topic must "
        "have exactly as many; the inputs' partition count changed, which moves keys between "
        "tasks: start the job anew (a new source.kafka.group_id)",
        options.topic, ids->size(), tasks));
  }
  spdlog::info("checkpoint: task state goes to changelog topic '{}' ({} partitions)", options.topic,
               tasks);
  return Status::Ok();
}

Result<TaskChangelogRead> ReadTaskChangelog(const ChangelogTopicOptions& options, int32_t task,
                                            const std::string& path,
                                            const ChangelogReadProgress& progress) {
  const std::string what = fmt::format("changelog {}[{}]", options.topic, task);
  Result<KafkaHandle> client = NewClient(options, RD_KAFKA_CONSUMER);
  if (!client.ok()) return client.status();
  rd_kafka_t* rk = client->get();
  // Starts at the log start as an offset: assigned at "beginning", the
  // consumer would look it up itself, and librdkafka 2.0.2 puts that lookup
  // off by a fixed 500 ms when the partition's leader is not known yet, as
  // it never is on a new client. This query finds the leader and the offset
  // at once. (The offset may be trimmed meanwhile: auto.offset.reset.) If
  // the query fails (e.g. a leader moving, which librdkafka does not retry
  // here), the consumer looks the offset up itself after all.
  int64_t log_start = 0;
  int64_t log_end = -1;
  int64_t start_at = RD_KAFKA_OFFSET_BEGINNING;
  if (const Status queried =
          KafkaStatus(rd_kafka_query_watermark_offsets(rk, options.topic.c_str(), task, &log_start,
                                                       &log_end, kRequestTimeoutMs),
                      what + ": log start offset");
      queried.ok()) {
    start_at = log_start;
  } else {
    spdlog::info("checkpoint: restoring task {}: {}; reading from its beginning instead", task,
                 queried.ToString());
    log_start = 0;
    log_end = -1;
  }
  KafkaPartitionList parts(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(parts.get(), options.topic.c_str(), task)->offset = start_at;
  CTRJOIN_RETURN_IF_ERROR(KafkaStatus(rd_kafka_assign(rk, parts.get()), what));
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return Status::IoError(fmt::format("{}: cannot create {}", what, path));

  TaskChangelogRead read;
  // The partition's log start and end offsets: as the query above answered
  // (its end is the last stable offset), then as last fetched (librdkafka
  // caches them from fetch responses; the end is then the high watermark).
  int64_t low = log_start;
  int64_t high = log_end;
  int64_t position = log_start;  // the next offset to read
  auto refresh = [&] {
    int64_t lo = 0;
    int64_t hi = 0;
    if (rd_kafka_get_watermark_offsets(rk, options.topic.c_str(), task, &lo, &hi) ==
        RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (lo >= 0) low = lo;
      if (hi >= 0) high = hi;
    }
    position = std::max(position, low);
    if (progress) progress(position, high, read.bytes);
  };
  if (progress) progress(position, high, read.bytes);
  const SteadyClock::time_point start = SteadyClock::now();
  SteadyClock::time_point next_note = start + kNoteEvery;
  while (true) {
    KafkaMessage msg(rd_kafka_consumer_poll(rk, kPollMs));
    if (SteadyClock::now() >= next_note) {
      next_note += kNoteEvery;
      spdlog::info(
          "checkpoint: restoring task {}: {} chunks ({} bytes) read, at offset {} of {}; waiting "
          "for the rest of {}, or for a transaction still open on it to end",
          task, read.records, read.bytes, position, high, what);
    }
    if (!msg) continue;
    if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      // read_committed stops at the last stable offset: past it, records
      // of a transaction still open, which may yet commit.
      position = msg->offset;
      refresh();
      read.end = msg->offset;
      if (msg->offset >= high) break;
      continue;
    }
    if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return KafkaStatus(msg->err, what, rd_kafka_message_errstr(msg.get()));
    }
    out.write(static_cast<const char*>(msg->payload), static_cast<std::streamsize>(msg->len));
    read.records += 1;
    read.bytes += msg->len;
    position = msg->offset + 1;
    refresh();
  }
  out.close();
  if (!out) return Status::IoError(fmt::format("{}: writing {}", what, path));
  spdlog::debug("checkpoint: {} read to offset {} in {:.2f} s", what, read.end,
                std::chrono::duration<double>(SteadyClock::now() - start).count());
  return read;
}

}  // namespace ctrjoin
