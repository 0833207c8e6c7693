#pragma once
// The broker's request processing: decodes each Kafka request, calls the
// component that owns the state, and encodes the response at the version
// the client used. One handler per API, grouped by area in
// handlers_meta.cc, handlers_log.cc, handlers_group.cc and handlers_txn.cc.
//
// Owns all broker state: logs, committed offsets, the transaction and group
// coordinators, and parked (long-poll) Fetch requests. Every method runs on
// the event-loop thread (Load() runs before the loop starts). Replies to
// parked requests go through the Server it was given, which outlives it.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "src/core/status.h"
#include "tests/support/kafka_broker/group_coordinator.h"
#include "tests/support/kafka_broker/log_manager.h"
#include "tests/support/kafka_broker/logger.h"
#include "tests/support/kafka_broker/offset_store.h"
#include "tests/support/kafka_broker/options.h"
#include "tests/support/kafka_broker/server.h"
#include "tests/support/kafka_broker/txn_coordinator.h"
#include "tests/support/kafka_broker/wire.h"

namespace ctrjoin::testbroker {

// The API keys this broker serves.
enum class ApiKey : std::int16_t {
  kProduce = 0,
  kFetch = 1,
  kListOffsets = 2,
  kMetadata = 3,
  kOffsetCommit = 8,
  kOffsetFetch = 9,
  kFindCoordinator = 10,
  kJoinGroup = 11,
  kHeartbeat = 12,
  kLeaveGroup = 13,
  kSyncGroup = 14,
  kDescribeGroups = 15,
  kListGroups = 16,
  kApiVersions = 18,
  kCreateTopics = 19,
  kDeleteRecords = 21,
  kInitProducerId = 22,
  kAddPartitionsToTxn = 24,
  kAddOffsetsToTxn = 25,
  kEndTxn = 26,
  kTxnOffsetCommit = 28,
};

struct ApiVersionRange {
  ApiKey key;
  std::int16_t min_version;
  std::int16_t max_version;
};

// The advertised versions. Minimum 0 everywhere: librdkafka 2.0.2 disables
// features (transactions, coordinator lookups) when a broker's range does
// not include the old versions it probes for.
inline constexpr ApiVersionRange kSupportedApis[] = {
    {ApiKey::kProduce, 0, 7},         {ApiKey::kFetch, 0, 11},
    {ApiKey::kListOffsets, 0, 2},     {ApiKey::kMetadata, 0, 4},
    {ApiKey::kOffsetCommit, 0, 7},    {ApiKey::kOffsetFetch, 0, 7},
    {ApiKey::kFindCoordinator, 0, 2}, {ApiKey::kJoinGroup, 0, 5},
    {ApiKey::kHeartbeat, 0, 3},       {ApiKey::kLeaveGroup, 0, 1},
    {ApiKey::kSyncGroup, 0, 3},       {ApiKey::kApiVersions, 0, 3},
    {ApiKey::kCreateTopics, 0, 4},    {ApiKey::kDeleteRecords, 0, 1},
    {ApiKey::kInitProducerId, 0, 1},  {ApiKey::kAddPartitionsToTxn, 0, 1},
    {ApiKey::kAddOffsetsToTxn, 0, 1}, {ApiKey::kEndTxn, 0, 1},
    {ApiKey::kTxnOffsetCommit, 0, 3}, {ApiKey::kDescribeGroups, 0, 0},
    {ApiKey::kListGroups, 0, 0},
};

// Milliseconds since the Unix epoch (record and transaction timestamps).
std::int64_t WallNowMs();

class BrokerCore : public RequestProcessor {
 public:
  BrokerCore(const BrokerOptions& options, Server* server, const Logger* logger);

  // Loads topics, logs, offsets and transaction state from the data directory.
  Status Load();

  HandlerOutcome Handle(const RequestHeader& header, const ReplyTarget& target,
                        WireReader& body) override;
  void Poll(std::int64_t now_ms) override;
  std::int64_t NextDeadlineMs() const override;

 private:
  struct FetchPartition {
    std::int32_t partition = 0;
    std::int64_t fetch_offset = 0;
    std::int32_t max_bytes = 0;
  };
  using FetchTopic = TopicEntries<FetchPartition>;
  struct FetchRequest {
    std::int16_t version = 0;
    std::int32_t correlation_id = 0;
    std::int32_t max_wait_ms = 0;
    std::int32_t min_bytes = 0;
    std::int32_t max_bytes = 0;
    Isolation isolation = Isolation::kReadUncommitted;
    std::vector<FetchTopic> topics;
  };
  struct ParkedFetch {
    ReplyTarget target;
    FetchRequest request;
    std::int64_t deadline_ms = 0;
  };

  // handlers_meta.cc
  HandlerOutcome HandleApiVersions(const RequestHeader& header, WireReader& r);
  HandlerOutcome HandleMetadata(const RequestHeader& header, WireReader& r);
  HandlerOutcome HandleCreateTopics(const RequestHeader& header, WireReader& r);
  HandlerOutcome HandleFindCoordinator(const RequestHeader& header, WireReader& r);
  // handlers_log.cc
  HandlerOutcome HandleProduce(const RequestHeader& header, WireReader& r);
  HandlerOutcome HandleFetch(const RequestHeader& header, const ReplyTarget& target, WireReader& r);
  HandlerOutcome HandleListOffsets(const RequestHeader& header, WireReader& r);
  HandlerOutcome HandleDeleteRecords(const RequestHeader& header, WireReader& r);
  HandlerOutcome HandleListGroups(const RequestHeader& header, WireReader& r);
  HandlerOutcome HandleDescribeGroups(const RequestHeader& header, WireReader& r);
  // The response to |request|, or nullopt if it should keep waiting for
  // MinBytes (never nullopt when |deadline_reached|).
  std::optional<OutFrame> TryCompleteFetch(const FetchRequest& request, bool deadline_reached);
  void PollParkedFetches(std::int64_t now_ms);
  // handlers_group.cc
  HandlerOutcome HandleJoinGroup(const RequestHeader& header, const ReplyTarget& target,
                                 WireReader& r);
  HandlerOutcome HandleSyncGroup(const RequestHeader& header, const ReplyTarget& target,
                                 WireReader& r);
  HandlerOutcome HandleHeartbeat(const RequestHeader& header, WireReader& r);
  HandlerOutcome HandleLeaveGroup(const RequestHeader& header, WireReader& r);
  HandlerOutcome HandleOffsetCommit(const RequestHeader& header, WireReader& r);
  HandlerOutcome HandleOffsetFetch(const RequestHeader& header, WireReader& r);
  // handlers_txn.cc
  HandlerOutcome HandleInitProducerId(const RequestHeader& header, WireReader& r);
  HandlerOutcome HandleAddPartitionsToTxn(const RequestHeader& header, WireReader& r);
  HandlerOutcome HandleAddOffsetsToTxn(const RequestHeader& header, WireReader& r);
  HandlerOutcome HandleEndTxn(const RequestHeader& header, WireReader& r);
  HandlerOutcome HandleTxnOffsetCommit(const RequestHeader& header, WireReader& r);

  BrokerOptions options_;
  Server* server_;
  const Logger* logger_;
  LogManager logs_;
  OffsetStore offsets_;
  TxnCoordinator txns_;
  GroupCoordinator groups_;
  std::vector<ParkedFetch> parked_fetches_;
  std::uint64_t appends_seen_ = 0;  // logs_.appends() when parked fetches were last checked
  std::int64_t next_txn_check_ms_ = 0;
};

}  // namespace ctrjoin::testbroker
