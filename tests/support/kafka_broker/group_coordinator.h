#pragma once
// Classic consumer-group membership (JoinGroup / SyncGroup / Heartbeat /
// LeaveGroup) following Kafka's GroupCoordinator state machine, reduced to
// what one node needs:
//
//   Empty --join--> PreparingRebalance --all joined / timeout--> CompletingRebalance
//   CompletingRebalance --leader's SyncGroup--> Stable --join/leave/expiry--> Preparing...
//
// JoinGroup and follower SyncGroup requests are parked: their callbacks run
// when the rebalance (or the leader's assignment) completes. Members that
// neither heartbeat nor wait in a parked request for their session timeout
// are removed, which starts a rebalance. Protocol-agnostic: wire encoding
// lives in the callbacks the request handlers pass in.
//
// Owned by BrokerCore; event-loop thread only. Times are steady-clock ms.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/kafka_broker/kafka_error.h"
#include "tests/support/kafka_broker/logger.h"
#include "tests/support/kafka_broker/options.h"

namespace ctrjoin::testbroker {

struct GroupProtocol {
  std::string name;
  std::string metadata;
};

struct JoinGroupRequest {
  std::string group_id;
  std::int32_t session_timeout_ms = 0;
  std::int32_t rebalance_timeout_ms = 0;
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::string protocol_type;
  std::vector<GroupProtocol> protocols;
  std::string client_id;
};

struct JoinGroupMember {
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::string metadata;
};

struct JoinGroupResult {
  KafkaError error = KafkaError::kNone;
  std::int32_t generation = -1;
  std::string protocol_name;
  std::string leader;
  std::string member_id;
  std::vector<JoinGroupMember> members;  // only for the leader
};

struct SyncGroupResult {
  KafkaError error = KafkaError::kNone;
  std::string assignment;
};

// A group as DescribeGroups shows it.
struct GroupDescription {
  struct Member {
    std::string member_id;
    std::string client_id;
    std::string metadata;    // its subscription for the group's protocol
    std::string assignment;  // what the leader assigned it (Stable only)
  };
  std::string group_id;
  std::string state;  // Kafka's names: Empty, PreparingRebalance, ..., Dead (unknown)
  std::string protocol_type;
  std::string protocol_name;
  std::vector<Member> members;
};

using JoinCallback = std::function<void(const JoinGroupResult&)>;
using SyncCallback = std::function<void(const SyncGroupResult&)>;

class GroupCoordinator {
 public:
  GroupCoordinator(const BrokerOptions& options, const Logger* logger)
      : options_(options), logger_(logger) {}

  // |done| runs exactly once, possibly before Join returns.
  void Join(JoinGroupRequest request, std::int64_t now, JoinCallback done);
  void Sync(const std::string& group_id, std::int32_t generation, const std::string& member_id,
            const std::vector<std::pair<std::string, std::string>>& assignments, std::int64_t now,
            SyncCallback done);
  KafkaError Heartbeat(const std::string& group_id, std::int32_t generation,
                       const std::string& member_id, std::int64_t now);
  KafkaError Leave(const std::string& group_id, const std::string& member_id, std::int64_t now);

  // Whether an OffsetCommit with this identity may commit now (Kafka's
  // validateOffsetCommit): generation -1 with no member id is a "simple"
  // commit allowed while the group has no members.
  KafkaError CheckOffsetCommit(const std::string& group_id, std::int32_t generation,
                               const std::string& member_id) const;

  // Whether a TxnOffsetCommit (v3, KIP-447) with this consumer identity may
  // stage offsets (Kafka's doTxnCommitOffsets): a member id the group does
  // not know is UNKNOWN_MEMBER_ID, a generation >= 0 that is not the
  // group's is ILLEGAL_GENERATION; generation -1 with no member id (a
  // consumer outside the group protocol, or v0-2) is left to the producer
  // epoch's fencing.
  KafkaError CheckTxnOffsetCommit(const std::string& group_id, std::int32_t generation,
                                  const std::string& member_id) const;

  // Every group (id, protocol type), for ListGroups.
  std::vector<std::pair<std::string, std::string>> List() const;
  // One group for DescribeGroups; an unknown one is "Dead" with no members.
  GroupDescription Describe(const std::string& group_id) const;

  // Completes rebalances whose wait is over and expires dead members.
  void Poll(std::int64_t now);
  std::int64_t NextDeadlineMs() const;

 private:
  enum class State { kEmpty, kPreparingRebalance, kCompletingRebalance, kStable };
  struct Member {
    std::string id;
    std::optional<std::string> group_instance_id;
    std::string client_id;
    std::int32_t session_timeout_ms = 0;
    std::int32_t rebalance_timeout_ms = 0;
    std::vector<GroupProtocol> protocols;
    std::string assignment;
    std::int64_t session_deadline = 0;
    JoinCallback pending_join;
    SyncCallback pending_sync;
  };
  struct Group {
    std::string id;
    State state = State::kEmpty;
    std::int32_t generation = 0;
    std::string protocol_type;
    std::string protocol_name;
    std::string leader;
    std::map<std::string, Member> members;
    std::vector<std::string> join_order;   // member ids, oldest first
    std::int64_t rebalance_deadline = 0;   // PreparingRebalance: complete by then
    std::int64_t initial_delay_until = 0;  // new group: wait for more members
  };

  static const char* StateName(State state);
  void PrepareRebalance(Group& group, std::int64_t now, const char* reason);
  void MaybeCompleteJoin(Group& group, std::int64_t now);
  void CompleteJoin(Group& group, std::int64_t now);
  void RemoveMember(Group& group, const std::string& member_id, std::int64_t now,
                    const char* reason);
  std::optional<std::string> SelectProtocol(const Group& group) const;
  bool SupportsProtocols(const Group& group, const JoinGroupRequest& request) const;
  std::string NewMemberId(const std::string& client_id);

  BrokerOptions options_;
  const Logger* logger_;
  std::map<std::string, Group> groups_;
  std::uint64_t next_member_ = 1;
};

}  // namespace ctrjoin::testbroker
