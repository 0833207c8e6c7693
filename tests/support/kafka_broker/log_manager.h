#pragma once
// The broker's topics and their partition logs, and their persistence in the
// data directory: a "topics" file (one "name partitions" line per topic,
// replaced atomically) and, per topic, a directory
// "logs/<first 40 characters of the name>-<16 hex digits of its FNV-1a hash>/"
// with a "topic" file holding the full name, one append-only
// "<partition>.log" per partition and, once DeleteRecords moved it, its log
// start in "<partition>.start". Every file name stays far below
// NAME_MAX for any valid topic name (249 characters) and partition count.
// Logs of the earlier flat layout, "logs/<topic>-<partition>.log", are moved
// into their topic's directory when they are loaded.
//
// Owned by BrokerCore; used only on the event-loop thread (and by Load()
// before the loop starts).

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "src/core/status.h"
#include "tests/support/kafka_broker/kafka_error.h"
#include "tests/support/kafka_broker/partition_log.h"

namespace ctrjoin::testbroker {

class LogManager {
 public:
  // |data_dir| empty: in-memory only.
  explicit LogManager(std::string data_dir) : data_dir_(std::move(data_dir)) {}

  // Recreates topics and replays partition logs from the data directory.
  Status Load();

  // Creates |name| with |partitions| partitions. kTopicAlreadyExists,
  // kInvalidTopic or kInvalidPartitions leave nothing changed.
  KafkaError CreateTopic(const std::string& name, std::int32_t partitions);
  // The error CreateTopic would return, without creating anything.
  KafkaError CheckCreate(const std::string& name, std::int32_t partitions) const;

  // nullptr if the topic or partition does not exist.
  PartitionLog* Find(std::string_view topic, std::int32_t partition);
  // -1 if the topic does not exist.
  std::int32_t PartitionCount(std::string_view topic) const;
  std::vector<std::string> TopicNames() const;

  // DeleteRecords: moves the partition's log start to |offset| (-1: its
  // high watermark), kept across restarts in "<partition>.start" beside its
  // log. Returns the error and the log start after the call (-1 for an
  // unknown partition).
  std::pair<KafkaError, std::int64_t> DeleteRecords(std::string_view topic, std::int32_t partition,
                                                    std::int64_t offset);

  // Bumped by every append to any partition.
  std::uint64_t appends() const { return appends_; }
  // The largest producer id found in the logs by Load(), or -1.
  std::int64_t max_recovered_producer_id() const { return max_recovered_producer_id_; }

 private:
  using Partitions = std::vector<std::unique_ptr<PartitionLog>>;

  bool persistent() const { return !data_dir_.empty(); }
  std::string TopicDir(const std::string& topic) const;
  // Creates the topic's directory and its "topic" file, or checks that the
  // file names |topic| (Corruption if it names another topic).
  Status ClaimTopicDir(const std::string& topic) const;
  // Moves the partition's log of the flat layout to |path| if there is one
  // and nothing is at |path| yet.
  Status AdoptFlatLog(const std::string& topic, std::int32_t partition,
                      const std::string& path) const;
  std::string LogStartPath(const std::string& topic, std::int32_t partition) const;
  Result<Partitions> OpenPartitions(const std::string& topic, std::int32_t count, bool recover);
  Status SaveTopics() const;

  std::string data_dir_;
  std::map<std::string, Partitions, std::less<>> topics_;
  std::uint64_t appends_ = 0;
  std::int64_t max_recovered_producer_id_ = -1;
};

// Kafka's topic name rule: 1-249 chars of [a-zA-Z0-9._-], not "." or "..".
bool IsValidTopicName(std::string_view name);

}  // namespace ctrjoin::testbroker
