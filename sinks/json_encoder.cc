#include "sinks/json_encoder.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string_view>
#include <type_traits>
#include <variant>

namespace ctrjoin {

namespace {

// Dead-letter payloads are cut to this many bytes so one huge bad record
// cannot blow up the dead-letter output.
constexpr size_t kMaxDeadLetterPayloadBytes = 64 * 1024;

// Appends an integer, or a finite double in std::to_chars' shortest form,
// which parses back to the same double ("3", "0.1", "1e-07").
template <typename Number>
void AppendNumber(Number value, std::string& out) {
  char buf[32];
  const auto result = std::to_chars(buf, buf + sizeof(buf), value);
  out.append(buf, result.ptr);
}

// Appends a double so that it parses back to the same double. NaN and
// infinities have no JSON spelling: they become null. From 2^53 up, the
// exponent form is forced: plain digits there would read back as an integer,
// and some parsers reject integers beyond 64 bits (simdjson 3.0.1 fails on
// 123456789012345683968, which to_chars writes for 1.2345678901234568e20).
void AppendDouble(double value, std::string& out) {
  if (!std::isfinite(value)) {
    out += "null";
    return;
  }
  if (value == 0 && std::signbit(value)) {
    out += "-0.0";  // "-0" would read back as the integer 0
    return;
  }
  if (std::fabs(value) < 0x1p53) {
    AppendNumber(value, out);
    return;
  }
  char buf[32];
  const auto result = std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::scientific);
  out.append(buf, result.ptr);
}

// Length of the well-formed UTF-8 sequence starting at s[i] (RFC 3629), or 0
// if the bytes there are not one (stray continuation byte, overlong form,
// surrogate, above U+10FFFF, or cut short).
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char lead = byte(i);
  size_t length = 0;
  unsigned char second_min = 0x80;
  unsigned char second_max = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) second_min = 0xA0;  // overlong
    if (lead == 0xED) second_max = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) second_min = 0x90;  // overlong
    if (lead == 0xF4) second_max = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (s.size() - i < length) return 0;
  if (byte(i + 1) < second_min || byte(i + 1) > second_max) return 0;
  for (size_t k = i + 2; k < i + length; ++k) {
    if (byte(k) < 0x80 || byte(k) > 0xBF) return 0;
  }
  return length;
}

void AppendFeatureValueImpl(const FeatureValue& value, std::string& out) {
  std::visit(
      [&out](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, double>) {
          AppendDouble(v, out);
        } else if constexpr (std::is_same_v<T, int64_t>) {
          AppendNumber(v, out);
        } else if constexpr (std::is_same_v<T, std::string>) {
          AppendJsonString(v, out);
        } else {
          out += '[';
          for (size_t i = 0; i < v.size(); ++i) {
            if (i > 0) out += ',';
            if constexpr (std::is_same_v<T, std::vector<double>>) {
              AppendDouble(v[i], out);
            } else {
              AppendNumber(v[i], out);
            }
          }
          out += ']';
        }
      },
      value);
}

// Appends `"name":value` for each feature, with a leading comma unless this
// is the first member of the object.
void AppendFeatures(const std::vector<Feature>& features, bool& first, std::string& out) {
  for (const Feature& feature : features) {
    if (!first) out += ',';
    first = false;
    AppendJsonString(feature.name, out);
    out += ':';
    AppendFeatureValueImpl(feature.value, out);
  }
}

// Appends `,"key":` (keys are constants that need no escaping).
void AppendKey(std::string_view key, std::string& out) {
  out += ",\"";
  out += key;
  out += "\":";
}

}  // namespace

void AppendFeatureValueJson(const FeatureValue& value, std::string& out) {
  AppendFeatureValueImpl(value, out);
}

void AppendJsonString(std::string_view s, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  size_t run_start = 0;  // start of bytes not yet appended, copied in runs
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      if (const size_t length = Utf8SequenceLength(s, i); length > 0) {
        i += length;
        continue;
      }
    }
    out.append(s.data() + run_start, i - run_start);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xF];
        } else {
          // A byte that does not start well-formed UTF-8: the output must
          // stay valid JSON, so it becomes U+FFFD.
          out += "\\ufffd";
        }
    }
    ++i;
    run_start = i;
  }
  out.append(s.data() + run_start, s.size() - run_start);
  out += '"';
}

void AppendSampleJson(const Sample& sample, std::string& out) {
  out += "{\"sample_id\":\"";
  AppendNumber(sample.sample_id, out);
  out += '"';
  AppendKey("label", out);
  AppendNumber(sample.label, out);
  AppendKey("impression_id", out);
  AppendJsonString(sample.impression.impression_id, out);
  AppendKey("user_id", out);
  AppendJsonString(sample.impression.user_id, out);
  AppendKey("item_id", out);
  AppendJsonString(sample.impression.item_id, out);
  AppendKey("ts", out);
  AppendNumber(sample.impression.ts.ms, out);
  if (sample.label == 1) {
    AppendKey("click_ts", out);
    AppendNumber(sample.click_ts.ms, out);
  }
  if (sample.correction) out += ",\"correction\":true";
  if (sample.impression.features_partial) out += ",\"partial\":true";
  AppendKey("features", out);
  out += '{';
  bool first = true;
  AppendFeatures(sample.impression.features, first, out);
  AppendFeatures(sample.impression.lookup_features, first, out);
  out += "}}";
}

void AppendDeadLetterJson(const DeadLetter& letter, std::string& out) {
  out += "{\"reason\":";
  AppendJsonString(letter.reason, out);
  AppendKey("reason_code", out);
  AppendJsonString(NameOf(letter.code), out);
  AppendKey("stream", out);
  AppendJsonString(StreamName(letter.pos.stream), out);
  AppendKey("partition", out);
  AppendNumber(letter.pos.partition, out);
  AppendKey("offset", out);
  AppendNumber(letter.pos.offset.value, out);
  std::string_view payload = letter.payload;
  const bool truncated = payload.size() > kMaxDeadLetterPayloadBytes;
  if (truncated) {
    // Cut before a UTF-8 continuation byte so a character is not split
    // (at most 3 steps back).
    size_t cut = kMaxDeadLetterPayloadBytes;
    for (int step = 0; step < 3 && (static_cast<unsigned char>(payload[cut]) & 0xC0) == 0x80;
         ++step) {
      --cut;
    }
    payload = payload.substr(0, cut);
  }
  AppendKey("payload", out);
  AppendJsonString(payload, out);
  if (truncated) out += ",\"payload_truncated\":true";
  out += '}';
}

}  // namespace ctrjoin
