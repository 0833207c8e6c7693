#include "src/app/config_key.h"

#include <algorithm>

namespace ctrjoin {

namespace config_key_internal {

namespace {

// CheckUnknown below the entry at path (relative to the table's root).
Status CheckUnknownBelow(const YAML::Node& map, const std::string& prefix, const std::string& path,
                         const std::vector<std::string>& keys) {
  for (const auto& entry : map) {
    const std::string key = Join(path, entry.first.as<std::string>());
    if (std::find(keys.begin(), keys.end(), key) != keys.end()) continue;
    const bool leads_to_keys = std::any_of(
        keys.begin(), keys.end(), [&](const std::string& k) { return k.starts_with(key + "."); });
    if (!leads_to_keys) {
      return Status::InvalidArgument(Join(prefix, key) + ": unknown key (see src/app/README.md)");
    }
    // Anything but a mapping here was refused when its keys were read.
    if (entry.second.IsMap()) {
      CTRJOIN_RETURN_IF_ERROR(CheckUnknownBelow(entry.second, prefix, key, keys));
    }
  }
  return Status::Ok();
}

std::string EscapeCell(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

std::string Join(const std::string& prefix, const std::string& key) {
  return prefix.empty() ? key : prefix + "." + key;
}

Status Expected(const std::string& name, const std::string& what, const YAML::Node& value) {
  const std::string got = value.IsScalar() ? "'" + value.Scalar() + "'" : "a non-scalar value";
  return Status::InvalidArgument(name + ": expected " + what + ", got " + got);
}

Result<std::optional<YAML::Node>> Find(const YAML::Node& map, const std::string& prefix,
                                       const std::string& path) {
  const size_t dot = path.find('.');
  const std::string level = path.substr(0, dot);
  // A copy, not an assignment: assigning to a yaml-cpp node writes through it.
  const YAML::Node child = map[level];
  if (dot == std::string::npos) {
    return child ? std::optional<YAML::Node>(child) : std::nullopt;
  }
  if (!child || child.IsNull()) return std::optional<YAML::Node>();
  const std::string name = Join(prefix, level);
  if (!child.IsMap()) return Expected(name, "a mapping", child);
  return Find(child, name, path.substr(dot + 1));
}

Status CheckUnknown(const YAML::Node& map, const std::string& prefix,
                    const std::vector<std::string>& keys) {
  return CheckUnknownBelow(map, prefix, "", keys);
}

Status DecodeMap(const YAML::Node& value, const std::string& name,
                 std::map<std::string, std::string>& out) {
  if (!value.IsMap()) return Expected(name, "a mapping of strings", value);
  std::map<std::string, std::string> decoded;
  for (const auto& kv : value) {
    const std::string key = kv.first.as<std::string>();
    if (!kv.second.IsScalar()) {
      return Status::InvalidArgument(name + "." + key + ": expected a string");
    }
    decoded[key] = kv.second.Scalar();
  }
  out = std::move(decoded);
  return Status::Ok();
}

std::string ShowMap(const std::map<std::string, std::string>& value) {
  std::string text;
  for (const auto& [k, v] : value) text += (text.empty() ? "" : ", ") + k + ": " + v;
  return "{" + text + "}";
}

std::string TypeText(ValueKind kind, const std::vector<std::string>& choices) {
  switch (kind) {
    case ValueKind::kBool: return "bool";
    case ValueKind::kInteger: return "integer";
    case ValueKind::kCount: return "integer ≥ 0";
    case ValueKind::kString: return "string";
    case ValueKind::kMap: return "map of strings";
    case ValueKind::kList: return "list of mappings";
    case ValueKind::kChoice: {
      std::string text;
      for (const std::string& c : choices) text += (text.empty() ? "`" : " | `") + c + "`";
      return text;
    }
  }
  return "";
}

std::string DefaultText(const std::string& shown) {
  return shown.empty() ? "(none)" : "`" + shown + "`";
}

}  // namespace config_key_internal

std::string MarkdownTable(const std::vector<ReferenceRow>& rows) {
  std::string text = "| key | type | default | meaning |\n|---|---|---|---|\n";
  for (const ReferenceRow& r : rows) {
    text += "| `" + r.key + "` | " + config_key_internal::EscapeCell(r.type) + " | " +
            config_key_internal::EscapeCell(r.default_value) + " | " +
            config_key_internal::EscapeCell(r.meaning) + " |\n";
  }
  return text;
}

}  // namespace ctrjoin
