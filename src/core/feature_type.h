#pragma once
// Feature types: what a feature value is (int64, float, string, or a list of
// int64 or of float), how a config declares one, and how text (an HBase cell,
// a declared default) becomes a value of a declared type or, undeclared, of
// the type the inference rule gives it. The rule and the declaration syntax
// are documented in src/README.md ("Feature types"); the event parser applies
// the same rule to JSON values.
//
// Nothing is ever rounded into a type: a number that does not fit the type
// it is given (a float beyond float32's range, a nonzero that float32 would
// flush to zero, an integer that float32 or int64 cannot hold exactly) is
// refused, and the inference rule keeps such text a string.
//
// Pure functions over values: any thread.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "src/core/enum_names.h"
#include "src/core/event.h"
#include "src/core/status.h"

namespace ctrjoin {

// The types, numbered as FeatureValue's alternatives.
enum class FeatureType : uint8_t {
  kFloat = 0,
  kString = 1,
  kFloatList = 2,
  kInt64 = 3,
  kInt64List = 4,
};
constexpr auto NamesOf(FeatureType) {
  return std::to_array<NamedValue<FeatureType>>({{FeatureType::kInt64, "int64"},
                                                 {FeatureType::kFloat, "float"},
                                                 {FeatureType::kString, "string"},
                                                 {FeatureType::kInt64List, "int64_list"},
                                                 {FeatureType::kFloatList, "float_list"}});
}

inline FeatureType TypeOf(const FeatureValue& value) {
  return static_cast<FeatureType>(value.index());
}

// A declared feature: its type, and the value it takes when a record (or a
// store row) does not have it; without a default an absent feature stays
// absent.
struct FeatureDecl {
  FeatureType type = FeatureType::kFloat;
  std::optional<FeatureValue> default_value;
  bool operator==(const FeatureDecl&) const = default;
};

// Declarations by name, in name order (the order defaults are added in and
// the published schema lists them).
using FeatureDecls = std::map<std::string, FeatureDecl, std::less<>>;

// Reads a declaration: "<type>" or "<type>=<default>", the default written
// as a cell would be ("int64=0", "string=unknown", "float_list=[0.5, 1]").
// The error says what is wrong; the caller names the key.
Result<FeatureDecl> ParseFeatureDecl(std::string_view spec);
// Reads a config map name -> declaration; errors name "<key>.<name>".
Result<FeatureDecls> ParseFeatureDecls(const std::map<std::string, std::string>& specs,
                                       const std::string& key);

// A declaration as ParseFeatureDecl reads it ("int64=0").
std::string FeatureDeclText(const FeatureDecl& decl);

// Whether tf.Example's float (float32) holds v without overflowing to an
// infinity or flushing a nonzero to zero (it may round v's last digits).
bool FitsFloat32(double v);
// Whether float32 holds the integer v exactly.
bool ExactInFloat32(int64_t v);

// Text as a value of the declared type; the error says why it is not one
// ("'12.5' is not an int64").
Result<FeatureValue> ParseFeatureText(std::string_view text, FeatureType type);
// Text as a value of the type the inference rule gives it: an integer
// written as JSON writes one (no leading zeros, no sign but '-') that fits
// int64 is an int64; another JSON number that fits float32 a float; a JSON
// array of such integers an int64_list, of such numbers a float_list (its
// integers exact in float32; "[]" is a float_list); anything else, "007" and
// "1e39" included, stays the string it is.
FeatureValue InferFeatureText(std::string_view text);

}  // namespace ctrjoin
