#include "src/pipeline/event_parser.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <utility>
#include <vector>

#include "src/core/feature_type.h"

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

Reason OutOfType(std::string why) { return {RejectCode::kInvalidValue, std::move(why)}; }
Reason NotOfType(const char* expected, const element& value) {
  return {RejectCode::kWrongType,
          std::string("expected ") + expected + ", got " + TypeName(value.type())};
}

// A JSON number as a float (tf.Example's float32): an integer only if
// float32 holds it exactly, any other number only if it fits float32's
// range ("1e+39 is outside float32's range").
Reason ReadFloat(const element& value, double& out) {
  switch (value.type()) {
    case element_type::INT64: {
      const int64_t v = value.get_int64().value_unsafe();
      if (!ExactInFloat32(v)) {
        return OutOfType(std::to_string(v) + " is an integer float32 cannot hold exactly");
      }
      out = static_cast<double>(v);
      return {};
    }
    case element_type::UINT64:
      return OutOfType(std::to_string(value.get_uint64().value_unsafe()) +
                       " is an integer float32 cannot hold exactly");
    case element_type::DOUBLE:
      out = value.get_double().value_unsafe();
      if (!FitsFloat32(out)) return OutOfType(fmt::format("{} is outside float32's range", out));
      return {};
    default: return NotOfType("a number", value);
  }
}

// A JSON integer as an int64 (3.0 too: it is one exactly).
Reason ReadInt64(const element& value, int64_t& out) {
  switch (value.type()) {
    case element_type::INT64: out = value.get_int64().value_unsafe(); return {};
    case element_type::UINT64:
      return OutOfType(std::to_string(value.get_uint64().value_unsafe()) + " does not fit int64");
    case element_type::DOUBLE: {
      const double d = value.get_double().value_unsafe();
      // [-2^63, 2^63) holds every integral double that int64 can.
      if (d != std::trunc(d) || d < -0x1p63 || d >= 0x1p63) {
        return OutOfType(fmt::format("{} is not an int64", d));
      }
      out = static_cast<int64_t>(d);
      return {};
    }
    default: return NotOfType("an integer", value);
  }
}

template <typename T>
Reason ReadList(const element& value, Reason (*read)(const element&, T&), std::vector<T>& out) {
  if (value.type() != element_type::ARRAY) return NotOfType("an array", value);
  simdjson::dom::array array = value.get_array().value_unsafe();
  out.resize(array.size());
  size_t i = 0;
  for (element item : array) {
    if (Reason r = read(item, out[i]); !r.empty()) {
      return {r.code, "element " + std::to_string(i) + ": " + r.message};
    }
    ++i;
  }
  return {};
}

// Reads a value of the given type.
Reason ReadTyped(const element& value, FeatureType type, FeatureValue& out) {
  switch (type) {
    case FeatureType::kInt64: return ReadInt64(value, out.emplace<int64_t>());
    case FeatureType::kFloat: return ReadFloat(value, out.emplace<double>());
    case FeatureType::kString:
      if (value.type() != element_type::STRING) return NotOfType("a string", value);
      out = std::string(value.get_string().value_unsafe());
      return {};
    case FeatureType::kInt64List:
      return ReadList(value, ReadInt64, out.emplace<std::vector<int64_t>>());
    case FeatureType::kFloatList:
      return ReadList(value, ReadFloat, out.emplace<std::vector<double>>());
  }
  return {RejectCode::kInvalidValue, "unknown feature type"};
}

// What a value that has no feature type is: "a boolean", "an array
// containing a string".
std::string DescribeUntyped(const element& value) {
  if (value.type() != element_type::ARRAY) return TypeName(value.type());
  simdjson::dom::array array = value.get_array().value_unsafe();
  for (element item : array) {
    const element_type t = item.type();
    if (t != element_type::INT64 && t != element_type::UINT64 && t != element_type::DOUBLE) {
      return std::string("an array containing ") + TypeName(t);
    }
  }
  return TypeName(value.type());
}

// The type the inference rule gives an undeclared JSON value
// (src/core/feature_type.h): an integer is an int64, another number a
// float, an array of integers an int64_list, of numbers a float_list (an
// empty one too), a string a string; nullopt for anything else.
std::optional<FeatureType> InferType(const element& value) {
  switch (value.type()) {
    case element_type::INT64:
    case element_type::UINT64: return FeatureType::kInt64;
    case element_type::DOUBLE: return FeatureType::kFloat;
    case element_type::STRING: return FeatureType::kString;
    case element_type::ARRAY: {
      simdjson::dom::array array = value.get_array().value_unsafe();
      bool all_integers = array.size() > 0;
      for (element item : array) {
        const element_type t = item.type();
        if (t == element_type::DOUBLE) {
          all_integers = false;
        } else if (t != element_type::INT64 && t != element_type::UINT64) {
          return std::nullopt;
        }
      }
      return all_integers ? FeatureType::kInt64List : FeatureType::kFloatList;
    }
    default: return std::nullopt;
  }
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
                    const FeatureDecls& declared, std::vector<Feature>& out) {
  const std::string& field = options.features_field;
  element value;
  if (obj.at_key(field).get(value) == simdjson::SUCCESS) {
    simdjson::dom::object features;
    if (value.get_object().get(features) != simdjson::SUCCESS) {
      return {RejectCode::kWrongType,
              field + ": expected an object, got " + TypeName(value.type())};
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
      const auto decl = declared.find(feature.name);
      std::optional<FeatureType> type;
      if (decl != declared.end()) {
        type = decl->second.type;
      } else if (options.strict_features) {
        return {RejectCode::kUndeclaredFeature,
                field + "." + feature.name +
                    ": not declared in schema.features (schema.strict_features is on)"};
      } else {
        type = InferType(entry.value);
      }
      if (!type) {
        return {RejectCode::kWrongType,
                field + "." + feature.name +
                    ": expected a number, a string or an array of numbers, got " +
                    DescribeUntyped(entry.value)};
      }
      if (Reason r = ReadTyped(entry.value, *type, feature.value); !r.empty()) {
        return {r.code, field + "." + feature.name + " (" + std::string(NameOf(*type)) +
                            (decl != declared.end() ? ", declared" : ", inferred") +
                            "): " + r.message};
      }
    }
  }
  if (const std::string* twice = NameGivenTwice(out)) {
    return {RejectCode::kShadowedName, field + "." + *twice + ": appears twice"};
  }
  // Declared features the record does not have take their defaults.
  const size_t given = out.size();
  for (const auto& [name, decl] : declared) {
    if (!decl.default_value) continue;
    const auto has = [&name = name](const Feature& f) { return f.name == name; };
    if (std::none_of(out.begin(), out.begin() + given, has)) {
      out.push_back(Feature{name, *decl.default_value});
    }
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
                      const FeatureDecls& declared, int64_t now_ms, Impression& out) {
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
  return ReadFeatures(obj, options, declared, out.features);
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
  if (Result<FeatureDecls> decls = ParseFeatureDecls(features, "schema.features"); !decls.ok()) {
    return decls.status();
  } else {
    for (const auto& [name, decl] : *decls) {
      if (Reason r = CheckFeatureName(name, *this); !r.empty()) {
        return Status::InvalidArgument("schema.features." + name + ": " + r.message);
      }
    }
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
  FeatureDecls declared;  // schema.features, parsed

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
    : options_(std::move(options)), impl_(std::make_unique<Impl>()) {
  // Validate() has refused declarations that do not parse.
  if (Result<FeatureDecls> decls = ParseFeatureDecls(options_.features, "schema.features");
      decls.ok()) {
    impl_->declared = std::move(*decls);
  }
}

EventParser::~EventParser() = default;

ParseResult EventParser::Parse(StreamKind stream, std::string_view json, int64_t now_ms) {
  simdjson::dom::object obj;
  if (Reason reason = impl_->ParseObject(json, options_.max_record_bytes, obj); !reason.empty()) {
    return reason;
  }
  switch (stream) {
    case StreamKind::kImpression: {
      Impression impression;
      if (Reason reason = ReadImpression(obj, options_, impl_->declared, now_ms, impression);
          !reason.empty()) {
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
