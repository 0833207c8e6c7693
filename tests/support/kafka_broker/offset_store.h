#pragma once
// Consumer group offsets: committed offsets per group, and offsets written
// by TxnOffsetCommit that stay pending (invisible to OffsetFetch) per
// (group, producer id) until the transaction commits or aborts.
//
// With a data directory the whole store is rewritten atomically to
// "<dir>/offsets" after each change; it is small in tests.
//
// Owned by BrokerCore; used by the group and transaction coordinators on the
// event-loop thread.

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "src/core/status.h"
#include "tests/support/kafka_broker/topic_partition.h"

namespace ctrjoin::testbroker {

struct OffsetEntry {
  std::int64_t offset = -1;
  std::int32_t leader_epoch = -1;
  std::optional<std::string> metadata;
};

using OffsetMap = std::map<TopicPartition, OffsetEntry>;

class OffsetStore {
 public:
  // |path| empty: in-memory only.
  explicit OffsetStore(std::string path) : path_(std::move(path)) {}

  Status Load();

  Status Commit(const std::string& group, const OffsetMap& offsets);
  Status AddPending(const std::string& group, std::int64_t producer_id, const OffsetMap& offsets);
  // Moves (commit) or drops (abort) what |producer_id| left pending in |group|.
  Status CompletePending(const std::string& group, std::int64_t producer_id, bool commit);

  // nullptr if nothing is committed for the group / partition.
  const OffsetMap* Committed(const std::string& group) const;
  const OffsetEntry* Find(const std::string& group, const TopicPartition& tp) const;
  // Whether a transaction still open holds an offset of tp for group (an
  // OffsetFetch that requires stable offsets is then answered
  // UNSTABLE_OFFSET_COMMIT, KIP-447).
  bool HasPending(const std::string& group, const TopicPartition& tp) const;

 private:
  struct GroupOffsets {
    OffsetMap committed;
    std::map<std::int64_t, OffsetMap> pending;  // by producer id
  };

  Status Save() const;

  std::string path_;
  std::map<std::string, GroupOffsets> groups_;
};

}  // namespace ctrjoin::testbroker
