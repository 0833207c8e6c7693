#include "src/core/feature_type.h"

#include <bit>
#include <cfloat>
#include <charconv>
#include <cmath>
#include <vector>

namespace ctrjoin {

namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// What a JSON number literal is: not one, an integer, or one with a
// fraction or an exponent.
enum class JsonNumber { kNone, kInteger, kReal };

JsonNumber ClassifyJsonNumber(std::string_view s) {
  size_t i = 0;
  if (i < s.size() && s[i] == '-') ++i;
  if (i == s.size() || !IsDigit(s[i])) return JsonNumber::kNone;
  if (s[i] == '0') {
    ++i;
  } else {
    while (i < s.size() && IsDigit(s[i])) ++i;
  }
  JsonNumber kind = JsonNumber::kInteger;
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (i == s.size() || !IsDigit(s[i])) return JsonNumber::kNone;
    while (i < s.size() && IsDigit(s[i])) ++i;
    kind = JsonNumber::kReal;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (i == s.size() || !IsDigit(s[i])) return JsonNumber::kNone;
    while (i < s.size() && IsDigit(s[i])) ++i;
    kind = JsonNumber::kReal;
  }
  return i == s.size() ? kind : JsonNumber::kNone;
}

bool ParseInt64(std::string_view s, int64_t& out) {
  if (s.empty()) return false;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

bool ParseDouble(std::string_view s, double& out) {
  if (s.empty()) return false;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size() && std::isfinite(out);
}

// Splits "[a, b]" into its trimmed elements; false if s is not bracketed or
// has an empty element.
bool SplitList(std::string_view s, std::vector<std::string_view>& out) {
  s = Trim(s);
  if (s.size() < 2 || s.front() != '[' || s.back() != ']') return false;
  s = Trim(s.substr(1, s.size() - 2));
  out.clear();
  if (s.empty()) return true;
  while (true) {
    const size_t comma = s.find(',');
    const std::string_view item = Trim(s.substr(0, comma));
    if (item.empty()) return false;
    out.push_back(item);
    if (comma == std::string_view::npos) return true;
    s.remove_prefix(comma + 1);
  }
}

// One float element or value of the declared type: a number that fits
// float32, exactly if it is written as an integer.
Status ParseFloat(std::string_view text, double& out) {
  int64_t integer = 0;
  if (ParseInt64(text, integer)) {
    if (!ExactInFloat32(integer)) {
      return Status::InvalidArgument("'" + std::string(text) +
                                     "' is an integer float32 cannot hold exactly");
    }
    out = static_cast<double>(integer);
    return Status::Ok();
  }
  if (!ParseDouble(text, out)) {
    return Status::InvalidArgument("'" + std::string(text) + "' is not a number");
  }
  if (!FitsFloat32(out)) {
    return Status::InvalidArgument("'" + std::string(text) + "' is outside float32's range");
  }
  return Status::Ok();
}

Status ParseInt(std::string_view text, int64_t& out) {
  if (!ParseInt64(text, out)) {
    return Status::InvalidArgument("'" + std::string(text) + "' is not an int64");
  }
  return Status::Ok();
}

}  // namespace

bool FitsFloat32(double v) {
  if (!std::isfinite(v)) return false;
  // Above FLT_MAX by less than half its last place, a double still rounds
  // down to FLT_MAX.
  constexpr double kRoundsToInfinity = 0x1.ffffffp127;
  if (std::fabs(v) >= kRoundsToInfinity) return false;
  return v == 0 || static_cast<float>(v) != 0;
}

bool ExactInFloat32(int64_t v) {
  // |v| as unsigned (INT64_MIN included); float32 has 24 significant bits.
  uint64_t magnitude = v < 0 ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  if (magnitude == 0) return true;
  magnitude >>= std::countr_zero(magnitude);
  return magnitude < (uint64_t{1} << 24);
}

namespace {

// ParseFeatureText into out (values are built in place: no temporaries).
Status ParseInto(std::string_view text, FeatureType type, FeatureValue& out) {
  switch (type) {
    case FeatureType::kString: out.emplace<std::string>(text); return Status::Ok();
    case FeatureType::kInt64: return ParseInt(Trim(text), out.emplace<int64_t>());
    case FeatureType::kFloat: return ParseFloat(Trim(text), out.emplace<double>());
    case FeatureType::kInt64List:
    case FeatureType::kFloatList: {
      std::vector<std::string_view> items;
      if (!SplitList(text, items)) {
        return Status::InvalidArgument("'" + std::string(text) +
                                       "' is not a list ('[1, 2]', '[]')");
      }
      if (type == FeatureType::kInt64List) {
        auto& values = out.emplace<std::vector<int64_t>>(items.size());
        for (size_t i = 0; i < items.size(); ++i) {
          CTRJOIN_RETURN_IF_ERROR(ParseInt(items[i], values[i]));
        }
        return Status::Ok();
      }
      auto& values = out.emplace<std::vector<double>>(items.size());
      for (size_t i = 0; i < items.size(); ++i) {
        CTRJOIN_RETURN_IF_ERROR(ParseFloat(items[i], values[i]));
      }
      return Status::Ok();
    }
  }
  return Status::InvalidArgument("unknown feature type");
}

}  // namespace

Result<FeatureValue> ParseFeatureText(std::string_view text, FeatureType type) {
  FeatureValue value;
  CTRJOIN_RETURN_IF_ERROR(ParseInto(text, type, value));
  return value;
}

FeatureValue InferFeatureText(std::string_view text) {
  switch (ClassifyJsonNumber(text)) {
    case JsonNumber::kInteger: {
      int64_t v = 0;
      if (ParseInt64(text, v)) return v;
      break;
    }
    case JsonNumber::kReal: {
      double v = 0;
      if (ParseDouble(text, v) && FitsFloat32(v)) return v;
      break;
    }
    case JsonNumber::kNone: {
      std::vector<std::string_view> items;
      if (!SplitList(text, items)) break;
      bool all_integers = !items.empty();
      for (std::string_view item : items) {
        const JsonNumber kind = ClassifyJsonNumber(item);
        if (kind == JsonNumber::kNone) return std::string(text);
        all_integers = all_integers && kind == JsonNumber::kInteger;
      }
      const FeatureType type = all_integers ? FeatureType::kInt64List : FeatureType::kFloatList;
      FeatureValue list;
      if (ParseInto(text, type, list).ok()) return list;
      break;
    }
  }
  return std::string(text);
}

Result<FeatureDecl> ParseFeatureDecl(std::string_view spec) {
  const size_t equals = spec.find('=');
  const std::string_view type_name = Trim(spec.substr(0, equals));
  FeatureDecl decl;
  CTRJOIN_RETURN_IF_ERROR(ParseEnum(type_name, "type", decl.type));
  if (equals != std::string_view::npos) {
    Result<FeatureValue> value = ParseFeatureText(spec.substr(equals + 1), decl.type);
    if (!value.ok()) {
      return Status::InvalidArgument("default: " + value.status().message());
    }
    decl.default_value = std::move(*value);
  }
  return decl;
}

Result<FeatureDecls> ParseFeatureDecls(const std::map<std::string, std::string>& specs,
                                       const std::string& key) {
  FeatureDecls decls;
  for (const auto& [name, spec] : specs) {
    if (name.empty()) return Status::InvalidArgument(key + ": a feature name must not be empty");
    Result<FeatureDecl> decl = ParseFeatureDecl(spec);
    if (!decl.ok()) {
      return Status::InvalidArgument(key + "." + name + ": " + decl.status().message() +
                                     " (write '<type>' or '<type>=<default>')");
    }
    decls.emplace(name, std::move(*decl));
  }
  return decls;
}

std::string FeatureDeclText(const FeatureDecl& decl) {
  std::string text(NameOf(decl.type));
  if (!decl.default_value) return text;
  text += '=';
  const auto number = [](auto v) {
    char buf[32];
    const auto result = std::to_chars(buf, buf + sizeof(buf), v);
    return std::string(buf, result.ptr);
  };
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>) {
          text += v;
        } else if constexpr (std::is_arithmetic_v<T>) {
          text += number(v);
        } else {
          text += '[';
          for (size_t i = 0; i < v.size(); ++i) text += (i > 0 ? ", " : "") + number(v[i]);
          text += ']';
        }
      },
      *decl.default_value);
  return text;
}

}  // namespace ctrjoin
