#include "sinks/tf_example_encoder.h"

#include <cstring>
#include <type_traits>
#include <variant>

#include "src/core/crc32c.h"

namespace ctrjoin {

namespace {

// Protobuf wire format.
constexpr int kLengthDelimited = 2;

void PutVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void PutTag(std::string& out, int field, int wire_type) {
  PutVarint(out, static_cast<uint64_t>(field) << 3 | wire_type);
}

void PutLengthDelimited(std::string& out, int field, std::string_view bytes) {
  PutTag(out, field, kLengthDelimited);
  PutVarint(out, bytes.size());
  out.append(bytes);
}

// Feature { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2;
//                        Int64List int64_list = 3; } }, each list's values
// in field 1 (packed for numbers).
std::string BytesFeature(std::string_view value) {
  std::string list;
  PutLengthDelimited(list, 1, value);
  std::string feature;
  PutLengthDelimited(feature, 1, list);
  return feature;
}

std::string FloatFeature(const double* values, size_t n) {
  std::string packed;
  for (size_t i = 0; i < n; ++i) {
    const float f = static_cast<float>(values[i]);
    char buf[4];
    std::memcpy(buf, &f, 4);  // little-endian fixed32 on x86-64
    packed.append(buf, 4);
  }
  std::string list;
  PutLengthDelimited(list, 1, packed);
  std::string feature;
  PutLengthDelimited(feature, 2, list);
  return feature;
}

std::string Int64Feature(const int64_t* values, size_t n) {
  std::string packed;
  for (size_t i = 0; i < n; ++i) PutVarint(packed, static_cast<uint64_t>(values[i]));
  std::string list;
  PutLengthDelimited(list, 1, packed);
  std::string feature;
  PutLengthDelimited(feature, 3, list);
  return feature;
}

std::string Int64Feature(int64_t value) { return Int64Feature(&value, 1); }

// One entry of Features.feature (map<string, Feature> = field 1 of Features):
// a message { string key = 1; Feature value = 2; }.
void PutEntry(std::string& features, std::string_view name, const std::string& feature) {
  std::string entry;
  PutLengthDelimited(entry, 1, name);
  PutLengthDelimited(entry, 2, feature);
  PutLengthDelimited(features, 1, entry);
}

// Floats go into a FloatList (float32): the parser and the cell decoder let
// through only numbers that fit it (src/core/feature_type.h).
void PutFeatures(std::string& features, const std::vector<Feature>& list) {
  for (const Feature& f : list) {
    std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, double>) {
            PutEntry(features, f.name, FloatFeature(&v, 1));
          } else if constexpr (std::is_same_v<T, int64_t>) {
            PutEntry(features, f.name, Int64Feature(v));
          } else if constexpr (std::is_same_v<T, std::string>) {
            PutEntry(features, f.name, BytesFeature(v));
          } else if constexpr (std::is_same_v<T, std::vector<double>>) {
            PutEntry(features, f.name, FloatFeature(v.data(), v.size()));
          } else {
            PutEntry(features, f.name, Int64Feature(v.data(), v.size()));
          }
        },
        f.value);
  }
}

void PutFixed32(std::string& out, uint32_t v) {
  char buf[4];
  for (int i = 0; i < 4; ++i) buf[i] = static_cast<char>(v >> (8 * i));
  out.append(buf, 4);
}

}  // namespace

void AppendSampleTfExample(const Sample& sample, std::string& out) {
  const Impression& imp = sample.impression;
  std::string features;
  PutEntry(features, "sample_id", Int64Feature(static_cast<int64_t>(sample.sample_id)));
  PutEntry(features, "label", Int64Feature(sample.label));
  PutEntry(features, "impression_id", BytesFeature(imp.impression_id));
  PutEntry(features, "user_id", BytesFeature(imp.user_id));
  PutEntry(features, "item_id", BytesFeature(imp.item_id));
  PutEntry(features, "ts", Int64Feature(imp.ts.ms));
  if (sample.label == 1) PutEntry(features, "click_ts", Int64Feature(sample.click_ts.ms));
  if (sample.correction) PutEntry(features, "correction", Int64Feature(1));
  if (imp.features_partial) PutEntry(features, "partial", Int64Feature(1));
  PutFeatures(features, imp.features);
  PutFeatures(features, imp.lookup_features);
  PutLengthDelimited(out, 1, features);  // Example.features
}

uint32_t MaskedCrc32c(std::string_view data) {
  const uint32_t crc = Crc32c(reinterpret_cast<const uint8_t*>(data.data()), data.size());
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

void AppendTfRecord(std::string_view data, std::string& out) {
  std::string length;
  const uint64_t n = data.size();
  for (int i = 0; i < 8; ++i) length.push_back(static_cast<char>(n >> (8 * i)));
  out.append(length);
  PutFixed32(out, MaskedCrc32c(length));
  out.append(data);
  PutFixed32(out, MaskedCrc32c(data));
}

}  // namespace ctrjoin
