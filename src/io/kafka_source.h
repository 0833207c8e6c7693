#pragma once
// KafkaSource: reads the impressions and clicks topics with one librdkafka
// consumer (isolation.level=read_committed), either by assigning every
// partition of both topics (mode "assign") or through a consumer group
// (mode "group"). Reports partition assignment changes in SourceBatch so
// the watermark tracker knows which partitions hold the watermark back.
//
// Next, Seek, CommittedEpoch and ConsumerLag are called from the source node
// or before it starts (Source contract); OffsetsFor and NewGroupMetadata
// from the checkpoint coordinator's committer thread (they read only what
// is fixed after start-up); Progress from any thread. Owns
// the librdkafka consumer handle.

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "src/core/enum_names.h"
#include "src/core/status.h"
#include "src/io/kafka_client.h"
#include "src/pipeline/source.h"

namespace ctrjoin {

// kAssign: every partition of both topics; kGroup: the consumer group
// shares the partitions out.
enum class KafkaMode { kAssign, kGroup };
constexpr auto NamesOf(KafkaMode) {
  return std::to_array<NamedValue<KafkaMode>>(
      {{KafkaMode::kAssign, "assign"}, {KafkaMode::kGroup, "group"}});
}

// Where a partition without a committed offset starts. The names are
// librdkafka's auto.offset.reset values.
enum class StartPosition { kEarliest, kLatest };
constexpr auto NamesOf(StartPosition) {
  return std::to_array<NamedValue<StartPosition>>(
      {{StartPosition::kEarliest, "earliest"}, {StartPosition::kLatest, "latest"}});
}

// The tag of offsets ctrjoin commits (their Kafka offset metadata):
// "ctrjoin-epoch=<epoch>", and in mode group " instance=<id>" after it.
struct CommitTag {
  uint64_t epoch = 0;
  std::string instance;  // empty when the tag has none

  std::string Format() const;
  // nullopt for metadata that is no ctrjoin tag.
  static std::optional<CommitTag> Parse(std::string_view metadata);
};

// In mode group with an instance id, the consumer's client.id is this
// prefix and the id (unless the config's properties set one), so that the
// group's description (`ctrjoin tasks`) names the process holding a task.
inline constexpr std::string_view kInstanceClientPrefix = "ctrjoin-";

struct KafkaSourceOptions {
  std::string brokers;  // required, e.g. "127.0.0.1:9092"
  std::string impressions_topic = "impressions";
  std::string clicks_topic = "clicks";
  std::string group_id = "ctrjoin";
  KafkaMode mode = KafkaMode::kAssign;
  StartPosition start = StartPosition::kEarliest;
  // Stop at the end offsets as of start-up (a bounded run; closes every window).
  bool stop_at_end = false;
  int poll_timeout_ms = 100;
  // A partition whose records (by Kafka timestamp) run more than this ahead
  // of the slowest partition with records left is paused until that one
  // catches up (ReadAlignment, src/io/read_alignment.h); 0 (the default)
  // turns it off.
  int64_t max_read_ahead_ms = 0;
  std::map<std::string, std::string> properties;  // extra librdkafka settings
  // Set by `ctrjoin replay` (not config keys). Where a partition starts when
  // the group has no committed offset for it (instead of `start`), and where
  // a bounded run (stop_at_end) ends instead of the end offset at start-up.
  std::map<PartitionId, int64_t> start_offsets;
  std::map<PartitionId, int64_t> end_offsets;
  // Set in mode "group" once CheckCoPartitioned (src/io/co_partitioning.h)
  // passed (not a config key): the partition count of each topic.
  int32_t co_partitions = 0;
  // Set in mode "group" with checkpoints (not a config key): a revocation is
  // reported as SourceBatch::revoking and the partitions are given up only
  // at ReleaseRevoked, after the epoch holding their input committed; a lost
  // assignment (the session timed out) fails the run as fenced.
  bool commit_on_revoke = false;
  // Set in mode "group" with checkpoints (not a config key): this process's
  // instance id (src/app), written into the committed offsets' tag so that
  // `ctrjoin tasks` can say which process last committed a task.
  std::string instance;
  // Not a config key: polled while CommittedEpoch waits for stable offsets
  // (up to 15 min); true ends the wait with Stopped (the process stops).
  // May be empty.
  std::function<bool()> stop_requested;

  Status Validate() const;  // names the bad field: "source.kafka.brokers: ..."
};

class KafkaSource : public Source {
 public:
  static Result<std::unique_ptr<KafkaSource>> Open(const KafkaSourceOptions& options);
  ~KafkaSource() override;

  Result<SourceBatch> Next(size_t max_records) override;
  // Mode "assign" only: re-assigns the named partitions at these offsets.
  Status Seek(const SourcePositions& positions) override;
  // Mode "assign": every assigned partition's absolute start offset (no
  // committed offset: `start` resolved once, at start-up, against the
  // partition's log start or end).
  SourcePositions StartPositions() const override;
  std::string Describe() const override;
  // From librdkafka's cached high watermarks (no broker round trip).
  std::vector<PartitionLag> ConsumerLag() override;
  int64_t UnreachableSinceMs() override;
  int64_t PausedPartitions() override;
  Status ReleaseRevoked() override;

  // How far a bounded run (stop_at_end) got, per partition. Callable from
  // any thread (progress reporting); updated once per batch.
  struct PartitionProgress {
    PartitionId id;
    int64_t start = 0;     // first offset of the run
    int64_t end = 0;       // end offset (exclusive)
    int64_t position = 0;  // next offset to read
  };
  std::vector<PartitionProgress> Progress() const;
  // options.co_partitions: 0 unless the inputs were checked co-partitioned.
  int32_t co_partitions() const;

  // Exactly-once with a Kafka sink: the input offsets are committed in the
  // sink's transactions, tagged with the epoch (offset metadata, CommitTag). The epoch of the
  // group's committed offsets; 0 when nothing was committed with an epoch.
  Result<uint64_t> CommittedEpoch();
  // The offsets to commit for a checkpoint: positions of every assigned
  // partition, tagged with epoch. Partitions without a position are left out.
  KafkaPartitionList OffsetsFor(const SourcePositions& positions, uint64_t epoch) const;
  // For send_offsets_to_transaction; the caller destroys it.
  rd_kafka_consumer_group_metadata_t* NewGroupMetadata() const;

 private:
  struct Impl;
  explicit KafkaSource(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ctrjoin
