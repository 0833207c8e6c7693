#pragma once
// How a config key is declared (STYLE.md, point 16). One entry of a
// section's table (src/app/config.cc) names the key, says what it means,
// reaches the options field it sets through an accessor and may carry a rule
// of its own; the field's type decides how the YAML value is read and what
// a mistyped one is told ("join.window_ms: expected an integer, got 'ten'").
// Reading, the table's rules, the reference in src/app/README.md (`ctrjoin
// config-reference`) and the tests' round trips all come from these entries;
// the defaults are the options structs' own.
//
// Used from main's thread at start-up; tables are built once and then only
// read.

#include <yaml-cpp/yaml.h>

#include <array>
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "src/core/enum_names.h"
#include "src/core/status.h"

namespace ctrjoin {

// What a key takes; decides the reference's type column.
enum class ValueKind { kBool, kInteger, kCount, kString, kMap, kChoice, kList };

// One row of the reference: a key, its type, its default and what it means.
struct ReferenceRow {
  std::string key;
  std::string type;
  std::string default_value;
  std::string meaning;
};

// The rows as a Markdown table (key, type, default, meaning).
std::string MarkdownTable(const std::vector<ReferenceRow>& rows);

// A rule the table checks itself, for a key no component validates; doc
// goes into the reference ("At least 64.").
template <typename T>
struct Rule {
  std::string doc;
  std::function<Status(const T& value, const std::string& name)> check;
};

// One key of a table over the struct S it fills (Config, or one element of
// a list such as LookupSpec). Built by Key, Choice and List below.
template <typename S>
struct ConfigKey {
  std::string key;  // dotted path below the table's root: "source.kafka.mode"
  ValueKind kind = ValueKind::kString;
  std::vector<std::string> choices;  // kChoice: the names, in the order declared
  std::string doc;
  std::string default_note;  // the reference's default when it is not the field's own value
  std::function<Status(const YAML::Node& value, const std::string& name, S& out)> read;
  // The value in YAML syntax ("{}" for an empty map); a list's is its length.
  std::function<std::string(const S&)> show;
  std::function<Status(const S&, const std::string& name)> check;  // null: no rule of its own
  // kList: the element's rows, their keys below `name` ("lookups[i].name").
  std::function<std::vector<ReferenceRow>(const std::string& name)> element_rows;
};

namespace config_key_internal {

std::string Join(const std::string& prefix, const std::string& key);
// "name: expected <what>, got '<scalar>'" (or "got a non-scalar value").
Status Expected(const std::string& name, const std::string& what, const YAML::Node& value);
// The node at the dotted path below map (a mapping); nullopt when a level is
// absent or null; an error naming a level that is not a mapping.
Result<std::optional<YAML::Node>> Find(const YAML::Node& map, const std::string& prefix,
                                       const std::string& path);
// Refuses the entries of map (a mapping) that are no key and lead to none;
// keys are paths below map.
Status CheckUnknown(const YAML::Node& map, const std::string& prefix,
                    const std::vector<std::string>& keys);
Status DecodeMap(const YAML::Node& value, const std::string& name,
                 std::map<std::string, std::string>& out);
std::string ShowMap(const std::map<std::string, std::string>& value);
std::string TypeText(ValueKind kind, const std::vector<std::string>& choices);
// A default as the reference shows it: `value`, or "(none)" for "".
std::string DefaultText(const std::string& shown);

template <typename S, typename Access>
using FieldOf = std::remove_cvref_t<std::invoke_result_t<Access&, S&>>;

template <typename T>
concept Named = std::is_enum_v<T> && requires(T v) {
  NamesOf(v);
};

template <typename T>
constexpr ValueKind KindOf() {
  if constexpr (std::is_same_v<T, bool>) {
    return ValueKind::kBool;
  } else if constexpr (std::is_integral_v<T>) {
    return std::is_unsigned_v<T> ? ValueKind::kCount : ValueKind::kInteger;
  } else if constexpr (std::is_same_v<T, std::string>) {
    return ValueKind::kString;
  } else {
    static_assert(std::is_same_v<T, std::map<std::string, std::string>>, "no such key type");
    return ValueKind::kMap;
  }
}

template <typename T>
const char* TypeName() {
  switch (KindOf<T>()) {
    case ValueKind::kBool: return "true or false";
    case ValueKind::kCount: return "a non-negative integer";
    case ValueKind::kInteger: return "an integer";
    default: return "a string";
  }
}

template <typename T>
Status Decode(const YAML::Node& value, const std::string& name, T& out) {
  if constexpr (KindOf<T>() == ValueKind::kMap) {
    return DecodeMap(value, name, out);
  } else {
    if (!value.IsScalar()) return Expected(name, "a scalar", value);
    T parsed;
    if (!YAML::convert<T>::decode(value, parsed)) return Expected(name, TypeName<T>(), value);
    out = parsed;
    return Status::Ok();
  }
}

template <typename T>
std::string Show(const T& value) {
  if constexpr (KindOf<T>() == ValueKind::kBool) {
    return value ? "true" : "false";
  } else if constexpr (KindOf<T>() == ValueKind::kString) {
    return value;
  } else if constexpr (KindOf<T>() == ValueKind::kMap) {
    return ShowMap(value);
  } else {
    return std::to_string(value);
  }
}

}  // namespace config_key_internal

// The rows of a table, keys below prefix ("lookups[i]"), defaults from
// `defaults`.
template <typename S>
std::vector<ReferenceRow> ReferenceRows(const std::vector<ConfigKey<S>>& keys, const S& defaults,
                                        const std::string& prefix) {
  namespace in = config_key_internal;
  std::vector<ReferenceRow> rows;
  for (const ConfigKey<S>& k : keys) {
    const std::string name = in::Join(prefix, k.key);
    rows.push_back({name, in::TypeText(k.kind, k.choices),
                    k.default_note.empty() ? in::DefaultText(k.show(defaults)) : k.default_note,
                    k.doc});
    if (k.element_rows) {
      for (ReferenceRow& row : k.element_rows(name)) rows.push_back(std::move(row));
    }
  }
  return rows;
}

// Reads the keys found below map (a YAML mapping) into out, then refuses
// entries that are no key; errors name the key below prefix ("" or
// "lookups[0]").
template <typename S>
Status ReadKeys(const YAML::Node& map, const std::string& prefix,
                const std::vector<ConfigKey<S>>& keys, S& out) {
  namespace in = config_key_internal;
  std::vector<std::string> paths;
  for (const ConfigKey<S>& k : keys) {
    Result<std::optional<YAML::Node>> value = in::Find(map, prefix, k.key);
    if (!value.ok()) return value.status();
    if (*value) CTRJOIN_RETURN_IF_ERROR(k.read(**value, in::Join(prefix, k.key), out));
    paths.push_back(k.key);
  }
  return in::CheckUnknown(map, prefix, paths);
}

// Runs the keys' own rules; errors name the key below prefix.
template <typename S>
Status CheckKeys(const std::vector<ConfigKey<S>>& keys, const S& value, const std::string& prefix) {
  for (const ConfigKey<S>& k : keys) {
    if (k.check) CTRJOIN_RETURN_IF_ERROR(k.check(value, config_key_internal::Join(prefix, k.key)));
  }
  return Status::Ok();
}

// A key with a fixed set of names (the values' order is the reference's).
template <typename S, typename Access, typename T, size_t N>
ConfigKey<S> Choice(std::string key, Access access, const std::array<NamedValue<T>, N>& names,
                    std::string doc) {
  ConfigKey<S> k;
  k.key = std::move(key);
  k.kind = ValueKind::kChoice;
  for (const NamedValue<T>& n : names) k.choices.emplace_back(n.name);
  k.doc = std::move(doc);
  k.read = [access, names](const YAML::Node& value, const std::string& name, S& out) {
    if (!value.IsScalar()) return config_key_internal::Expected(name, "a scalar", value);
    return ParseNameIn(names, value.Scalar(), name, access(out));
  };
  k.show = [access, names](const S& s) { return std::string(NameIn(names, access(s))); };
  return k;
}

// A key of the field's own type: bool, an integer, a string, a map of
// strings, or an enum with NamesOf (src/core/enum_names.h). rule: the
// table's own check of it; default_note: see ConfigKey.
template <typename S, typename Access, typename T = config_key_internal::FieldOf<S, Access>>
ConfigKey<S> Key(std::string key, Access access, std::string doc, Rule<T> rule = {},
                 std::string default_note = {}) {
  namespace in = config_key_internal;
  ConfigKey<S> k;
  if constexpr (in::Named<T>) {
    k = Choice<S>(std::move(key), access, NamesOf(T{}), std::move(doc));
  } else {
    k.key = std::move(key);
    k.kind = in::KindOf<T>();
    k.doc = std::move(doc);
    k.read = [access](const YAML::Node& value, const std::string& name, S& out) {
      return in::Decode(value, name, access(out));
    };
    k.show = [access](const S& s) { return in::Show(access(s)); };
  }
  if (rule.check) {
    k.doc += " " + rule.doc;
    k.check = [access, check = std::move(rule.check)](const S& s, const std::string& name) {
      return check(access(s), name);
    };
  }
  k.default_note = std::move(default_note);
  return k;
}

// A list of mappings, each read with the element's keys: `lookups`.
template <typename S, typename Access, typename E>
ConfigKey<S> List(std::string key, Access access, const std::vector<ConfigKey<E>>& element_keys,
                  std::string doc) {
  namespace in = config_key_internal;
  ConfigKey<S> k;
  k.key = std::move(key);
  k.kind = ValueKind::kList;
  k.doc = std::move(doc);
  k.read = [access, element_keys](const YAML::Node& value, const std::string& name, S& out) {
    if (value.IsNull()) return Status::Ok();
    if (!value.IsSequence()) return in::Expected(name, "a list", value);
    std::vector<E>& list = access(out);
    list.clear();
    for (size_t i = 0; i < value.size(); ++i) {
      const std::string element = name + "[" + std::to_string(i) + "]";
      if (!value[i].IsMap()) return Status::InvalidArgument(element + ": expected a mapping");
      E e;
      CTRJOIN_RETURN_IF_ERROR(ReadKeys(value[i], element, element_keys, e));
      list.push_back(std::move(e));
    }
    return Status::Ok();
  };
  k.show = [access](const S& s) {
    return access(s).empty() ? std::string("[]")
                             : "[" + std::to_string(access(s).size()) + " entries]";
  };
  k.check = [access, element_keys](const S& s, const std::string& name) {
    const std::vector<E>& list = access(s);
    for (size_t i = 0; i < list.size(); ++i) {
      CTRJOIN_RETURN_IF_ERROR(
          CheckKeys(element_keys, list[i], name + "[" + std::to_string(i) + "]"));
    }
    return Status::Ok();
  };
  k.element_rows = [element_keys](const std::string& name) {
    return ReferenceRows(element_keys, E{}, name + "[i]");
  };
  return k;
}

}  // namespace ctrjoin
