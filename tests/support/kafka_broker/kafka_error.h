#pragma once
// Kafka protocol error codes used by the test broker (values from Kafka's
// Errors.java). Every broker component reports per-request outcomes with
// these; they go on the wire unchanged. Plain values, used on the event-loop
// thread only.

#include <cstdint>

namespace ctrjoin::testbroker {

enum class KafkaError : std::int16_t {
  kNone = 0,
  kOffsetOutOfRange = 1,
  kCorruptMessage = 2,
  kUnknownTopicOrPartition = 3,
  kMessageTooLarge = 10,
  kCoordinatorNotAvailable = 15,
  kNotCoordinator = 16,
  kInvalidTopic = 17,
  kIllegalGeneration = 22,
  kInconsistentGroupProtocol = 23,
  kInvalidGroupId = 24,
  kUnknownMemberId = 25,
  kInvalidSessionTimeout = 26,
  kRebalanceInProgress = 27,
  kUnsupportedVersion = 35,
  kTopicAlreadyExists = 36,
  kInvalidPartitions = 37,
  kInvalidReplicationFactor = 38,
  kInvalidRequest = 42,
  kOutOfOrderSequenceNumber = 45,
  kDuplicateSequenceNumber = 46,
  kInvalidProducerEpoch = 47,
  kInvalidTxnState = 48,
  kInvalidProducerIdMapping = 49,
  kInvalidTransactionTimeout = 50,
  kConcurrentTransactions = 51,
  kOperationNotAttempted = 55,
  kKafkaStorageError = 56,
  kUnknownProducerId = 59,
  kGroupIdNotFound = 69,
  kMemberIdRequired = 79,
  kInvalidRecord = 87,
  kUnstableOffsetCommit = 88,
};

inline std::int16_t Code(KafkaError e) { return static_cast<std::int16_t>(e); }

}  // namespace ctrjoin::testbroker
