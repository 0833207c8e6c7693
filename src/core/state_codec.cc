#include "src/core/state_codec.h"

#include <cstring>
#include <type_traits>
#include <variant>

namespace ctrjoin {

namespace {

void PutVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

bool GetVarint(std::string_view& in, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64 && !in.empty(); shift += 7) {
    const auto byte = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    v |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

void PutString(std::string& out, std::string_view s) {
  PutVarint(out, s.size());
  out.append(s);
}

bool GetString(std::string_view& in, std::string& s) {
  uint64_t n = 0;
  if (!GetVarint(in, n) || n > in.size()) return false;
  s.assign(in.data(), n);
  in.remove_prefix(n);
  return true;
}

void PutDouble(std::string& out, double d) {
  uint64_t bits;
  std::memcpy(&bits, &d, sizeof bits);
  PutFixed64(out, bits);
}

bool GetDouble(std::string_view& in, double& d) {
  uint64_t bits = 0;
  if (!GetFixed64(in, bits)) return false;
  std::memcpy(&d, &bits, sizeof d);
  return true;
}

// A feature value's tag: FeatureValue's alternative index.
enum class ValueTag : uint8_t { kNumber = 0, kString = 1, kNumbers = 2, kInt64 = 3, kInt64s = 4 };

void PutInt64(std::string& out, int64_t v) { PutFixed64(out, static_cast<uint64_t>(v)); }

bool GetInt64(std::string_view& in, int64_t& v) {
  uint64_t bits = 0;
  if (!GetFixed64(in, bits)) return false;
  v = static_cast<int64_t>(bits);
  return true;
}

void EncodeFeatures(const std::vector<Feature>& features, std::string& out) {
  PutVarint(out, features.size());
  for (const Feature& f : features) {
    PutString(out, f.name);
    out.push_back(static_cast<char>(f.value.index()));
    std::visit(
        [&out](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, double>) {
            PutDouble(out, v);
          } else if constexpr (std::is_same_v<T, int64_t>) {
            PutInt64(out, v);
          } else if constexpr (std::is_same_v<T, std::string>) {
            PutString(out, v);
          } else {
            PutVarint(out, v.size());
            for (const auto x : v) {
              if constexpr (std::is_same_v<T, std::vector<double>>) {
                PutDouble(out, x);
              } else {
                PutInt64(out, x);
              }
            }
          }
        },
        f.value);
  }
}

// Reads a list of m fixed 8-byte values.
template <typename T>
bool GetList(std::string_view& in, bool (*get)(std::string_view&, T&), std::vector<T>& out) {
  uint64_t m = 0;
  if (!GetVarint(in, m) || m > in.size() / 8) return false;
  out.resize(m);
  for (T& x : out) {
    if (!get(in, x)) return false;
  }
  return true;
}

bool DecodeFeatures(std::string_view& in, std::vector<Feature>& out) {
  uint64_t n = 0;
  if (!GetVarint(in, n) || n > in.size()) return false;
  out.clear();
  out.reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    Feature f;
    if (!GetString(in, f.name) || in.empty()) return false;
    const auto tag = static_cast<ValueTag>(in.front());
    in.remove_prefix(1);
    switch (tag) {
      case ValueTag::kNumber: {
        double d = 0;
        if (!GetDouble(in, d)) return false;
        f.value = d;
        break;
      }
      case ValueTag::kString: {
        std::string s;
        if (!GetString(in, s)) return false;
        f.value = std::move(s);
        break;
      }
      case ValueTag::kNumbers: {
        std::vector<double> v;
        if (!GetList(in, GetDouble, v)) return false;
        f.value = std::move(v);
        break;
      }
      case ValueTag::kInt64: {
        int64_t v = 0;
        if (!GetInt64(in, v)) return false;
        f.value = v;
        break;
      }
      case ValueTag::kInt64s: {
        std::vector<int64_t> v;
        if (!GetList(in, GetInt64, v)) return false;
        f.value = std::move(v);
        break;
      }
      default: return false;
    }
    out.push_back(std::move(f));
  }
  return true;
}

}  // namespace

void PutFixed64(std::string& out, uint64_t v) {
  char buf[8];
  for (int i = 0; i < 8; ++i) buf[i] = static_cast<char>(v >> (8 * i));
  out.append(buf, 8);
}

bool GetFixed64(std::string_view& in, uint64_t& v) {
  if (in.size() < 8) return false;
  v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(in[i])) << (8 * i);
  in.remove_prefix(8);
  return true;
}

void PutBigEndian64(std::string& out, uint64_t v) {
  char buf[8];
  for (int i = 0; i < 8; ++i) buf[i] = static_cast<char>(v >> (56 - 8 * i));
  out.append(buf, 8);
}

uint64_t ReadBigEndian64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

void EncodeImpression(const Impression& imp, std::string& out) {
  PutString(out, imp.impression_id);
  PutString(out, imp.user_id);
  PutString(out, imp.item_id);
  PutFixed64(out, static_cast<uint64_t>(imp.ts.ms));
  out.push_back(imp.features_partial ? 1 : 0);
  EncodeFeatures(imp.features, out);
  EncodeFeatures(imp.lookup_features, out);
}

Status DecodeImpression(std::string_view in, Impression& out) {
  uint64_t ts = 0;
  if (!GetString(in, out.impression_id) || !GetString(in, out.user_id) ||
      !GetString(in, out.item_id) || !GetFixed64(in, ts) || in.empty()) {
    return Status::Corruption("undecodable impression in join state");
  }
  out.ts = EventTime{static_cast<int64_t>(ts)};
  out.features_partial = in.front() != 0;
  in.remove_prefix(1);
  if (!DecodeFeatures(in, out.features) || !DecodeFeatures(in, out.lookup_features) ||
      !in.empty()) {
    return Status::Corruption("undecodable impression in join state");
  }
  return Status::Ok();
}

}  // namespace ctrjoin
