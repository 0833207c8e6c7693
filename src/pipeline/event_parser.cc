#include "src/pipeline/event_parser.h"

#include <simdjson.h>

#include <algorithm>
#include <utility>
#include <vector>

namespace ctrjoin {

namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

// Field readers return an empty Rejection on success (no allocation, so the
// happy path stays cheap) and the code and reason otherwise.
using Reason = Rejection;

// The JSON type of an element, worded for "got ..." in a reason.
const char* TypeName(element_type type) {
  switch (type) {
    case element_type::ARRAY: return "an array";
    case element_type::OBJECT: return "an object";
    case element_type::INT64: return "an integer";
    case element_type::UINT64: return "an integer";
    case element_type::DOUBLE: return "a floating-point number";
    case element_type::STRING: return "a string";
    case element_type::BOOL: return "a boolean";
    case element_type::NULL_VALUE: return "null";
  }
  return "an unknown value";
}

// A duration for the far-future reason: "2 days", "5 hours", "1500 ms".
// Rounds down; switches to a unit only when at least two of it fit.
std::string DescribeDuration(uint64_t ms) {
  struct Unit {
    uint64_t ms;
    const char* name;
  };
  constexpr Unit kUnits[] = {
      {86'400'000, "days"}, {3'600'000, "hours"}, {60'000, "minutes"}, {1'000, "seconds"}};
  for (const Unit& unit : kUnits) {
    if (ms >= 2 * unit.ms) return std::to_string(ms / unit.ms) + " " + unit.name;
  }
  return std::to_string(ms) + " ms";
}

// Finds a required field; the reason says it is missing.
Reason FindRequired(const simdjson::dom::object& obj, std::string_view field, element& out) {
  if (obj.at_key(field).get(out) != simdjson::SUCCESS) {
    return {RejectCode::kMissingField, std::string(field) + ": missing"};
  }
  return {};
}

// Reads an id: a non-empty string of at most max_bytes, or an integer
// written as its decimal text.
Reason ReadId(const simdjson::dom::object& obj, std::string_view field, size_t max_bytes,
              std::string& out) {
  element value;
  if (Reason reason = FindRequired(obj, field, value); !reason.empty()) return reason;
  switch (value.type()) {
    case element_type::STRING: out.assign(value.get_string().value_unsafe()); break;
    case element_type::INT64: out = std::to_string(value.get_int64().value_unsafe()); break;
    case element_type::UINT64: out = std::to_string(value.get_uint64().value_unsafe()); break;
    case element_type::ARRAY:
    case element_type::OBJECT:
    case element_type::DOUBLE:
    case element_type::BOOL:
    case element_type::NULL_VALUE:
      return {
          RejectCode::kWrongType,
          std::string(field) + ": expected a string or an integer, got " + TypeName(value.type())};
  }
  if (out.empty()) return {RejectCode::kInvalidValue, std::string(field) + ": must not be empty"};
  if (out.size() > max_bytes) {
    return {RejectCode::kInvalidValue,
            std::string(field) + ": longer than " + std::to_string(max_bytes) + " bytes"};
  }
  return {};
}

// Reads an event time: an integer number of epoch milliseconds, >= 0.
// The wall-clock bound is checked by the caller.
Reason ReadTs(const simdjson::dom::object& obj, std::string_view field, int64_t& out) {
  element value;
  if (Reason reason = FindRequired(obj, field, value); !reason.empty()) return reason;
  switch (value.type()) {
    case element_type::INT64: out = value.get_int64().value_unsafe(); break;
    case element_type::UINT64:
      return {RejectCode::kInvalidValue,
              std::string(field) + ": " + std::to_string(value.get_uint64().value_unsafe()) +
                  " is out of range (epoch ms must fit a signed 64-bit integer)"};
    case element_type::ARRAY:
    case element_type::OBJECT:
    case element_type::DOUBLE:
    case element_type::STRING:
    case element_type::BOOL:
    case element_type::NULL_VALUE:
      return {
          RejectCode::kWrongType,
          std::string(field) + ": expected an integer (epoch ms), got " + TypeName(value.type())};
  }
  if (out < 0) {
    return {RejectCode::kInvalidValue,
            std::string(field) + ": must not be negative, got " + std::to_string(out)};
  }
  return {};
}

// Converts a JSON number of any kind to a double (the DOM converts integers
// too); false if it is not a number.
bool NumberAsDouble(const element& value, double& out) {
  return value.get_double().get(out) == simdjson::SUCCESS;
}

// Reads one feature value. On failure returns what was found instead
// ("a boolean", "an array containing a string").
std::string ReadFeatureValue(const element& value, FeatureValue& out) {
  double number = 0;
  if (NumberAsDouble(value, number)) {
    out = number;
    return {};
  }
  if (value.type() == element_type::STRING) {
    out = std::string(value.get_string().value_unsafe());
    return {};
  }
  if (value.type() != element_type::ARRAY) return TypeName(value.type());
  simdjson::dom::array array = value.get_array().value_unsafe();
  std::vector<double> numbers;
  numbers.reserve(array.size());
  for (element item : array) {
    if (!NumberAsDouble(item, number)) {
      return std::string("an array containing ") + TypeName(item.type());
    }
    numbers.push_back(number);
  }
  out = std::move(numbers);
  return {};
}

// Reads the optional features object, keeping the order of the JSON.
// Why an impression's own feature may not have this name (empty: it may).
Reason CheckFeatureName(std::string_view name, const SchemaOptions& options) {
  for (std::string_view reserved : kSampleFieldNames) {
    if (name == reserved) {
      return {RejectCode::kShadowedName,
              "shadows the sample field '" + std::string(reserved) + "'"};
    }
  }
  for (const std::string& lookup : options.lookup_names) {
    if (name.size() > lookup.size() && name.starts_with(lookup) && name[lookup.size()] == '.') {
      return {RejectCode::kShadowedName,
              "shadows the columns of lookup '" + lookup + "' (" + lookup + ".*)"};
    }
  }
  return {};
}

// A name given twice in one object (JSON allows it; a feature map does
// not), or nullptr. Pairwise for the usual few features (no allocation on
// the parse path), sorted beyond.
const std::string* NameGivenTwice(const std::vector<Feature>& features) {
  constexpr size_t kPairwiseUpTo = 32;
  if (features.size() <= kPairwiseUpTo) {
    for (size_t i = 1; i < features.size(); ++i) {
      for (size_t j = 0; j < i; ++j) {
        if (features[i].name == features[j].name) return &features[i].name;
      }
    }
    return nullptr;
  }
  std::vector<const std::string*> names;
  names.reserve(features.size());
  for (const Feature& f : features) names.push_back(&f.name);
  std::sort(names.begin(), names.end(), [](auto* a, auto* b) { return *a < *b; });
  auto twice =
      std::adjacent_find(names.begin(), names.end(), [](auto* a, auto* b) { return *a == *b; });
  return twice == names.end() ? nullptr : *twice;
}

Reason ReadFeatures(const simdjson::dom::object& obj, const SchemaOptions& options,
                    std::vector<Feature>& out) {
  const std::string& field = options.features_field;
  element value;
  if (obj.at_key(field).get(value) != simdjson::SUCCESS) return {};
  simdjson::dom::object features;
  if (value.get_object().get(features) != simdjson::SUCCESS) {
    return {RejectCode::kWrongType, field + ": expected an object, got " + TypeName(value.type())};
  }
  out.reserve(std::min(features.size(), options.max_features));
  for (simdjson::dom::key_value_pair entry : features) {
    if (out.size() == options.max_features) {
      return {RejectCode::kInvalidValue, field + ": more than max_features=" +
                                             std::to_string(options.max_features) + " entries"};
    }
    Feature& feature = out.emplace_back();
    feature.name.assign(entry.key);
    if (Reason r = CheckFeatureName(feature.name, options); !r.empty()) {
      return {r.code, field + "." + feature.name + ": " + r.message};
    }
    if (std::string got = ReadFeatureValue(entry.value, feature.value); !got.empty()) {
      return {RejectCode::kWrongType,
              field + "." + feature.name +
                  ": expected a number, a string or an array of numbers, got " + got};
    }
  }
  if (const std::string* twice = NameGivenTwice(out)) {
    return {RejectCode::kShadowedName, field + "." + *twice + ": appears twice"};
  }
  return {};
}

// Rejects a ts more than max_future_ms ahead of now_ms.
Reason CheckNotFuture(std::string_view field, int64_t ts, int64_t now_ms, int64_t max_future_ms) {
  if (ts <= now_ms) return {};
  // ts > now_ms, so the unsigned difference is exact even if now_ms < 0.
  const uint64_t ahead = static_cast<uint64_t>(ts) - static_cast<uint64_t>(now_ms);
  if (ahead <= static_cast<uint64_t>(max_future_ms)) return {};
  return {RejectCode::kFutureTs,
          std::string(field) + ": " + DescribeDuration(ahead) +
              " ahead of the wall clock (max_future_ms=" + std::to_string(max_future_ms) + ")"};
}

Reason ReadImpression(const simdjson::dom::object& obj, const SchemaOptions& options,
                      int64_t now_ms, Impression& out) {
  const size_t max_id = options.max_id_bytes;
  if (Reason r = ReadId(obj, options.impression_id_field, max_id, out.impression_id); !r.empty()) {
    return r;
  }
  if (Reason r = ReadId(obj, options.user_id_field, max_id, out.user_id); !r.empty()) return r;
  if (Reason r = ReadId(obj, options.item_id_field, max_id, out.item_id); !r.empty()) return r;
  if (Reason r = ReadTs(obj, options.ts_field, out.ts.ms); !r.empty()) return r;
  if (Reason r = CheckNotFuture(options.ts_field, out.ts.ms, now_ms, options.max_future_ms);
      !r.empty()) {
    return r;
  }
  return ReadFeatures(obj, options, out.features);
}

Reason ReadClick(const simdjson::dom::object& obj, const SchemaOptions& options, int64_t now_ms,
                 Click& out) {
  if (Reason r =
          ReadId(obj, options.click_impression_id_field, options.max_id_bytes, out.impression_id);
      !r.empty()) {
    return r;
  }
  if (Reason r = ReadTs(obj, options.click_ts_field, out.ts.ms); !r.empty()) return r;
  return CheckNotFuture(options.click_ts_field, out.ts.ms, now_ms, options.max_future_ms);
}

}  // namespace

Status SchemaOptions::Validate() const {
  const std::pair<const char*, const std::string*> names[] = {
      {"impression_id_field", &impression_id_field},
      {"user_id_field", &user_id_field},
      {"item_id_field", &item_id_field},
      {"ts_field", &ts_field},
      {"features_field", &features_field},
      {"click_impression_id_field", &click_impression_id_field},
      {"click_ts_field", &click_ts_field},
  };
  for (const auto& [option, value] : names) {
    if (value->empty()) {
      return Status::InvalidArgument(std::string("schema.") + option + ": must not be empty");
    }
  }
  if (max_id_bytes < 1 || max_id_bytes > 65536) {
    return Status::InvalidArgument("schema.max_id_bytes: must be in [1, 65536], got " +
                                   std::to_string(max_id_bytes));
  }
  if (max_features < 1) {
    return Status::InvalidArgument("schema.max_features: must be at least 1, got 0");
  }
  if (max_future_ms < 0) {
    return Status::InvalidArgument("schema.max_future_ms: must not be negative, got " +
                                   std::to_string(max_future_ms));
  }
  if (max_record_bytes < 64) {
    return Status::InvalidArgument("schema.max_record_bytes: must be at least 64, got " +
                                   std::to_string(max_record_bytes));
  }
  return Status::Ok();
}

// Owns the simdjson parser. simdjson copies each record into a padded buffer
// that the parser keeps and reuses, and the parsed document lives in the
// parser too: every dom view dies on the next parse, so readers copy out
// everything they keep.
struct EventParser::Impl {
  simdjson::dom::parser parser;

  // Parses json as one JSON object.
  Reason ParseObject(std::string_view json, size_t max_record_bytes, simdjson::dom::object& out) {
    if (json.size() > max_record_bytes) {
      return {RejectCode::kTooLarge,
              "record: " + std::to_string(json.size()) +
                  " bytes, more than max_record_bytes=" + std::to_string(max_record_bytes)};
    }
    element root;
    if (simdjson::error_code error = parser.parse(json.data(), json.size()).get(root)) {
      return {RejectCode::kInvalidJson,
              std::string("invalid JSON: ") + simdjson::error_message(error)};
    }
    if (root.get_object().get(out) != simdjson::SUCCESS) {
      return {RejectCode::kInvalidJson,
              std::string("invalid JSON: expected an object, got ") + TypeName(root.type())};
    }
    return {};
  }
};

EventParser::EventParser(SchemaOptions options)
    : options_(std::move(options)), impl_(std::make_unique<Impl>()) {}

EventParser::~EventParser() = default;

ParseResult EventParser::Parse(StreamKind stream, std::string_view json, int64_t now_ms) {
  simdjson::dom::object obj;
  if (Reason reason = impl_->ParseObject(json, options_.max_record_bytes, obj); !reason.empty()) {
    return reason;
  }
  switch (stream) {
    case StreamKind::kImpression: {
      Impression impression;
      if (Reason reason = ReadImpression(obj, options_, now_ms, impression); !reason.empty()) {
        return reason;
      }
      return impression;
    }
    case StreamKind::kClick: {
      Click click;
      if (Reason reason = ReadClick(obj, options_, now_ms, click); !reason.empty()) return reason;
      return click;
    }
  }
  return Rejection{RejectCode::kInvalidValue, "unknown stream"};
}

}  // namespace ctrjoin
