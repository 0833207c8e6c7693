#include "tests/support/kafka_broker/broker_core.h"

#include <algorithm>
#include <chrono>
#include <limits>

namespace ctrjoin::testbroker {

std::int64_t WallNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

std::string DataPath(const BrokerOptions& options, const char* name) {
  return options.data_dir.empty() ? std::string() : options.data_dir + "/" + name;
}

const ApiVersionRange* FindApi(std::int16_t key) {
  for (const ApiVersionRange& api : kSupportedApis) {
    if (static_cast<std::int16_t>(api.key) == key) return &api;
  }
  return nullptr;
}

}  // namespace

BrokerCore::BrokerCore(const BrokerOptions& options, Server* server, const Logger* logger)
    : options_(options),
      server_(server),
      logger_(logger),
      logs_(options.data_dir),
      offsets_(DataPath(options, "offsets")),
      txns_(&logs_, &offsets_, DataPath(options, "transactions"), options, logger),
      groups_(options, logger) {}

Status BrokerCore::Load() {
  if (!options_.data_dir.empty()) CTRJOIN_RETURN_IF_ERROR(MakeDirectories(options_.data_dir));
  CTRJOIN_RETURN_IF_ERROR(logs_.Load().WithContext("loading logs"));
  CTRJOIN_RETURN_IF_ERROR(offsets_.Load().WithContext("loading offsets"));
  CTRJOIN_RETURN_IF_ERROR(txns_.Load().WithContext("loading transactions"));
  appends_seen_ = logs_.appends();
  return Status::Ok();
}

HandlerOutcome BrokerCore::Handle(const RequestHeader& header, const ReplyTarget& target,
                                  WireReader& body) {
  const ApiVersionRange* api = FindApi(header.api_key);
  if (logger_->debug_enabled()) {
    logger_->Debug("connection {}: api {} v{} correlation {} client {}", target.connection_id,
                   header.api_key, header.api_version, header.correlation_id,
                   header.client_id.value_or("(null)"));
  }
  if (api == nullptr) {
    logger_->Warn("unknown api key {} (client {}); closing the connection", header.api_key,
                  header.client_id.value_or("(null)"));
    return HandlerOutcome::Close();
  }
  // ApiVersions answers even unsupported versions of itself, so clients can
  // fall back; any other unsupported version has no response layout.
  if (api->key == ApiKey::kApiVersions) return HandleApiVersions(header, body);
  if (header.api_version < api->min_version || header.api_version > api->max_version) {
    logger_->Warn("unsupported version {} of api key {} (client {}); closing the connection",
                  header.api_version, header.api_key, header.client_id.value_or("(null)"));
    return HandlerOutcome::Close();
  }
  switch (api->key) {
    case ApiKey::kProduce: return HandleProduce(header, body);
    case ApiKey::kFetch: return HandleFetch(header, target, body);
    case ApiKey::kListOffsets: return HandleListOffsets(header, body);
    case ApiKey::kMetadata: return HandleMetadata(header, body);
    case ApiKey::kOffsetCommit: return HandleOffsetCommit(header, body);
    case ApiKey::kOffsetFetch: return HandleOffsetFetch(header, body);
    case ApiKey::kFindCoordinator: return HandleFindCoordinator(header, body);
    case ApiKey::kJoinGroup: return HandleJoinGroup(header, target, body);
    case ApiKey::kHeartbeat: return HandleHeartbeat(header, body);
    case ApiKey::kLeaveGroup: return HandleLeaveGroup(header, body);
    case ApiKey::kSyncGroup: return HandleSyncGroup(header, target, body);
    case ApiKey::kDescribeGroups: return HandleDescribeGroups(header, body);
    case ApiKey::kListGroups: return HandleListGroups(header, body);
    case ApiKey::kApiVersions: return HandleApiVersions(header, body);
    case ApiKey::kCreateTopics: return HandleCreateTopics(header, body);
    case ApiKey::kDeleteRecords: return HandleDeleteRecords(header, body);
    case ApiKey::kInitProducerId: return HandleInitProducerId(header, body);
    case ApiKey::kAddPartitionsToTxn: return HandleAddPartitionsToTxn(header, body);
    case ApiKey::kAddOffsetsToTxn: return HandleAddOffsetsToTxn(header, body);
    case ApiKey::kEndTxn: return HandleEndTxn(header, body);
    case ApiKey::kTxnOffsetCommit: return HandleTxnOffsetCommit(header, body);
  }
  return HandlerOutcome::Close();
}

void BrokerCore::Poll(std::int64_t now_ms) {
  if (now_ms >= next_txn_check_ms_) {
    txns_.AbortTimedOut(WallNowMs());
    next_txn_check_ms_ = now_ms + options_.transaction_check_interval_ms;
  }
  groups_.Poll(now_ms);
  PollParkedFetches(now_ms);
}

std::int64_t BrokerCore::NextDeadlineMs() const {
  std::int64_t next = std::min(next_txn_check_ms_, groups_.NextDeadlineMs());
  for (const ParkedFetch& parked : parked_fetches_) next = std::min(next, parked.deadline_ms);
  if (!parked_fetches_.empty() && logs_.appends() != appends_seen_) return 0;
  return next;
}

}  // namespace ctrjoin::testbroker
