#pragma once
// The names of an enum's values as config files, command lines and messages
// spell them. Each enum declares its names once, beside itself, as a
// function found by argument-dependent lookup:
//
//   enum class KafkaMode { kAssign, kGroup };
//   constexpr auto NamesOf(KafkaMode) {
//     return std::to_array<NamedValue<KafkaMode>>(
//         {{KafkaMode::kAssign, "assign"}, {KafkaMode::kGroup, "group"}});
//   }
//
// NameOf and ParseEnum below then work for it, and so do the config parser
// and its reference (src/app/config_key.h). Pure functions: any thread.

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

#include "src/core/status.h"

namespace ctrjoin {

template <typename T>
struct NamedValue {
  T value;
  std::string_view name;
};

// The name of value in names ("" if it has none).
template <typename T, size_t N>
constexpr std::string_view NameIn(const std::array<NamedValue<T>, N>& names, T value) {
  for (const NamedValue<T>& n : names) {
    if (n.value == value) return n.name;
  }
  return {};
}

// "'assign' or 'group'", "'stdout', 'file' or 'kafka'".
template <typename T, size_t N>
std::string ChoicesText(const std::array<NamedValue<T>, N>& names) {
  std::string text;
  for (size_t i = 0; i < N; ++i) {
    if (i > 0) text += i + 1 == N ? " or " : ", ";
    text += "'" + std::string(names[i].name) + "'";
  }
  return text;
}

// Sets out to the value named `name`; otherwise an error naming `key`:
// "source.kafka.mode: must be 'assign' or 'group', got 'x'".
template <typename T, size_t N>
Status ParseNameIn(const std::array<NamedValue<T>, N>& names, std::string_view name,
                   std::string_view key, T& out) {
  for (const NamedValue<T>& n : names) {
    if (n.name == name) {
      out = n.value;
      return Status::Ok();
    }
  }
  return Status::InvalidArgument(std::string(key) + ": must be " + ChoicesText(names) + ", got '" +
                                 std::string(name) + "'");
}

template <typename E>
constexpr std::string_view NameOf(E value) {
  return NameIn(NamesOf(E{}), value);
}

template <typename E>
Status ParseEnum(std::string_view name, std::string_view key, E& out) {
  return ParseNameIn(NamesOf(E{}), name, key, out);
}

}  // namespace ctrjoin
