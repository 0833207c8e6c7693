#pragma once
// EventParser: decodes one JSON record (impression or click, by the stream it
// came from) into a typed event, or explains why it cannot.
//
// Field names are configurable (SchemaOptions). A record is rejected with a
// reason that names the field when: it is not a JSON object, a required field
// is missing or has the wrong type, an id is empty or longer than
// max_id_bytes, ts is negative or more than max_future_ms ahead of the
// wall clock, a feature value is not of its declared or inferred type or
// does not fit it (src/core/feature_type.h: nothing is rounded), a feature
// is undeclared under strict_features, or a feature name would shadow another name of the sample: a
// sample field (kSampleFieldNames), a lookup's column ("<lookup name>.*") or
// an earlier feature of the same record. ids may be JSON strings or integers
// (integers become their decimal text). Unknown top-level fields are ignored.
//
// Thread-safety: one EventParser per thread (it owns a simdjson parser and
// its buffers). Called from the pipeline's parse node.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "src/core/event.h"
#include "src/core/status.h"

namespace ctrjoin {

struct SchemaOptions {
  std::string impression_id_field = "impression_id";
  std::string user_id_field = "user_id";
  std::string item_id_field = "item_id";
  std::string ts_field = "ts";
  std::string features_field = "features";  // optional in records
  std::string click_impression_id_field = "impression_id";
  std::string click_ts_field = "ts";
  size_t max_id_bytes = 256;
  size_t max_features = 1024;
  int64_t max_future_ms = 86'400'000;  // 1 day ahead of the wall clock
  size_t max_record_bytes = 1 << 20;
  // Declared impression features: name -> "<type>" or "<type>=<default>"
  // (src/core/feature_type.h). A declared feature's value must be of its
  // type; an undeclared one's type is inferred, or with strict_features the
  // record is dead-lettered.
  std::map<std::string, std::string> features;
  bool strict_features = false;
  // Not a config key: the lookups' names (Config::ParserSchema). Features
  // "<name>.*" are that lookup's columns, so an impression's own feature may
  // not be named so.
  std::vector<std::string> lookup_names;

  Status Validate() const;  // names the bad field: "schema.max_id_bytes: ..."
};

// Why a record was rejected: a code (for metrics) and the words, which name
// the field ("ts: expected an integer (epoch ms), got a string").
struct Rejection {
  RejectCode code = RejectCode::kInvalidValue;
  std::string message;  // empty: not rejected
  bool empty() const { return message.empty(); }
};

// Either a parsed event or why it was rejected.
using ParseResult = std::variant<Impression, Click, Rejection>;

// The impression id an impression or click carries; nullptr for a rejection.
inline const std::string* ImpressionIdOf(const ParseResult& parsed) {
  if (const auto* imp = std::get_if<Impression>(&parsed)) return &imp->impression_id;
  if (const auto* click = std::get_if<Click>(&parsed)) return &click->impression_id;
  return nullptr;
}

class EventParser {
 public:
  explicit EventParser(SchemaOptions options);
  ~EventParser();
  EventParser(const EventParser&) = delete;
  EventParser& operator=(const EventParser&) = delete;

  // now_ms is the wall clock used for the "far in the future" check.
  ParseResult Parse(StreamKind stream, std::string_view json, int64_t now_ms);

 private:
  struct Impl;
  SchemaOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ctrjoin
