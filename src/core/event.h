#pragma once
// Core value types that flow through the pipeline: raw records from sources,
// parsed impressions and clicks, labelled samples and dead letters.
// All are plain move-only-friendly values; they carry their own key, event
// time and source position (no implicit "current" anything).

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "src/core/enum_names.h"

namespace ctrjoin {

// Event time in milliseconds since the Unix epoch.
struct EventTime {
  int64_t ms = 0;
  static constexpr EventTime Min() { return {std::numeric_limits<int64_t>::min()}; }
  static constexpr EventTime Max() { return {std::numeric_limits<int64_t>::max()}; }
  auto operator<=>(const EventTime&) const = default;
};

// a + b, clamped to the int64 range (event-time arithmetic near the ends).
inline int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) {
    return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  }
  return r;
}

// A Kafka offset or a line number in a file: never a plain int.
struct Offset {
  int64_t value = -1;
  auto operator<=>(const Offset&) const = default;
};

enum class StreamKind : uint8_t { kImpression = 0, kClick = 1 };

const char* StreamName(StreamKind kind);

// Where a record came from: used for watermarks (per partition), dead-letter
// reports and, later, checkpoint offsets.
struct SourcePosition {
  StreamKind stream = StreamKind::kImpression;
  int32_t partition = 0;  // Kafka partition, or 0 for a file
  Offset offset;          // Kafka offset, or 1-based line number in a file
};

// One undecoded record as a source delivers it.
struct RawRecord {
  SourcePosition pos;
  std::string payload;
};

// A feature's value, by type (src/core/feature_type.h names the types and
// says how JSON and cell text become them). The alternatives' order is the
// state codec's tag: new ones go at the end.
using FeatureValue =
    std::variant<double, std::string, std::vector<double>, int64_t, std::vector<int64_t>>;

struct Feature {
  std::string name;
  FeatureValue value;
  bool operator==(const Feature&) const = default;
};

struct Impression {
  std::string impression_id;
  std::string user_id;
  std::string item_id;
  EventTime ts;
  std::vector<Feature> features;         // the impression's own features
  std::vector<Feature> lookup_features;  // looked up at arrival, prefixed: "user.age"
  bool features_partial = false;         // a lookup failed and emit_partial let it through
  bool operator==(const Impression&) const = default;
};

struct Click {
  std::string impression_id;
  EventTime ts;
};

// A record that could not be used, with the reason and where it came from.
// Why an input record was rejected, as a code for metrics and alerts (the
// dead letter's reason says it in words).
enum class RejectCode {
  kTooLarge,           // longer than schema.max_record_bytes
  kInvalidJson,        // not JSON, or not a JSON object
  kMissingField,       // a required field is absent
  kWrongType,          // a field of the wrong JSON type
  kInvalidValue,       // a value out of its range: empty or long id, negative ts, too many
                       // features, a number its feature type cannot hold
  kShadowedName,       // a feature named like a sample field or a lookup's columns, or given twice
  kFutureTs,           // ts further ahead of the wall clock than schema.max_future_ms
  kUndeclaredFeature,  // a feature schema.features does not declare, with strict_features
  kWrongPartition,     // group mode: not on the partition its impression id belongs to
};
inline constexpr size_t kRejectCodes = 9;
constexpr auto NamesOf(RejectCode) {
  return std::to_array<NamedValue<RejectCode>>(
      {{RejectCode::kTooLarge, "too_large"},
       {RejectCode::kInvalidJson, "invalid_json"},
       {RejectCode::kMissingField, "missing_field"},
       {RejectCode::kWrongType, "wrong_type"},
       {RejectCode::kInvalidValue, "invalid_value"},
       {RejectCode::kShadowedName, "shadowed_name"},
       {RejectCode::kFutureTs, "future_ts"},
       {RejectCode::kUndeclaredFeature, "undeclared_feature"},
       {RejectCode::kWrongPartition, "wrong_partition"}});
}

struct DeadLetter {
  SourcePosition pos;
  std::string reason;
  std::string payload;  // the raw record, possibly truncated
  RejectCode code = RejectCode::kInvalidValue;
};

// The fields every sample carries beside its features. tf.Example puts them
// in one map with the features, so no feature may be named like one (the
// parser dead-letters an impression whose feature is).
inline constexpr std::string_view kSampleFieldNames[] = {"sample_id", "label",      "impression_id",
                                                         "user_id",   "item_id",    "ts",
                                                         "click_ts",  "correction", "partial"};

// A labelled training sample.
struct Sample {
  uint64_t sample_id = 0;                 // xxh3-64 of impression_id
  int label = 0;                          // 1 = clicked within the window, 0 = not
  bool correction = false;                // a late click turned an emitted negative positive
  Impression impression;                  // ids, ts, own and looked-up features
  EventTime click_ts = EventTime::Min();  // set for positives
};

}  // namespace ctrjoin
