#include "sinks/sample_schema.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "sinks/json_encoder.h"
#include "src/core/fs_sync.h"
#include "src/core/hash.h"

namespace ctrjoin {

namespace {

// When a field is in a sample.
enum class Presence { kAlways, kPositives, kCorrections, kPartial, kOptional };
constexpr auto NamesOf(Presence) {
  return std::to_array<NamedValue<Presence>>({{Presence::kAlways, "always"},
                                              {Presence::kPositives, "positives"},
                                              {Presence::kCorrections, "corrections"},
                                              {Presence::kPartial, "partial"},
                                              {Presence::kOptional, "optional"}});
}

// What a trainer does with it: the label, an input, an id (an input too,
// as a categorical), or metadata that must not be one.
enum class Role { kLabel, kFeature, kId, kMetadata };
constexpr auto NamesOf(Role) {
  return std::to_array<NamedValue<Role>>({{Role::kLabel, "label"},
                                          {Role::kFeature, "feature"},
                                          {Role::kId, "id"},
                                          {Role::kMetadata, "metadata"}});
}

struct Field {
  std::string name;
  FeatureType type;
  Presence presence;
  Role role;
  std::string source;  // "sample", "impression" or "lookup:<name>"
  const FeatureValue* default_value = nullptr;
  std::string note;
};

// The fields every sample has (kSampleFieldNames), then the declared ones.
std::vector<Field> Fields(const OutputSchema& schema) {
  std::vector<Field> fields = {
      {"sample_id", FeatureType::kInt64, Presence::kAlways, Role::kMetadata, "sample", nullptr,
       "xxh3-64 of impression_id, stable across runs: in JSON the unsigned value as a decimal "
       "string, in tf.Example the same 64 bits as an int64 (negative from 2^63)"},
      {"label", FeatureType::kInt64, Presence::kAlways, Role::kLabel, "sample", nullptr,
       "1: clicked within the attribution window, 0: not"},
      {"impression_id", FeatureType::kString, Presence::kAlways, Role::kMetadata, "sample", nullptr,
       "unique per sample: an id, not an input"},
      {"user_id", FeatureType::kString, Presence::kAlways, Role::kId, "sample", nullptr, ""},
      {"item_id", FeatureType::kString, Presence::kAlways, Role::kId, "sample", nullptr, ""},
      {"ts", FeatureType::kInt64, Presence::kAlways, Role::kMetadata, "sample", nullptr,
       "the impression's event time, epoch ms (split by it)"},
      {"click_ts", FeatureType::kInt64, Presence::kPositives, Role::kMetadata, "sample", nullptr,
       "the labelling click's event time: present only on positives, so a label leak as an input"},
      {"correction", FeatureType::kInt64, Presence::kCorrections, Role::kMetadata, "sample",
       nullptr, "1: a late click turned an emitted negative positive (JSON: true)"},
      {"partial", FeatureType::kInt64, Presence::kPartial, Role::kMetadata, "sample", nullptr,
       "1: a lookup was given up, features are missing (JSON: true)"},
  };
  const auto add = [&](const std::string& name, const FeatureDecl& decl, std::string source) {
    fields.push_back({name, decl.type, decl.default_value ? Presence::kAlways : Presence::kOptional,
                      Role::kFeature, std::move(source),
                      decl.default_value ? &*decl.default_value : nullptr, ""});
  };
  for (const auto& [name, decl] : schema.features) add(name, decl, "impression");
  for (const auto& [lookup, columns] : schema.lookups) {
    for (const auto& [column, decl] : columns) add(lookup + "." + column, decl, "lookup:" + lookup);
  }
  return fields;
}

bool IsList(FeatureType type) {
  return type == FeatureType::kInt64List || type == FeatureType::kFloatList;
}

const char* TfDtype(FeatureType type) {
  switch (type) {
    case FeatureType::kInt64:
    case FeatureType::kInt64List: return "tf.int64";
    case FeatureType::kFloat:
    case FeatureType::kFloatList: return "tf.float32";
    case FeatureType::kString: return "tf.string";
  }
  return "tf.string";
}

// Writes text to dir/name atomically (the caller syncs dir).
Status WriteFileAtomically(const std::filesystem::path& dir, const std::string& name,
                           const std::string& text) {
  const std::filesystem::path path = dir / name;
  const std::filesystem::path tmp = dir / (name + ".tmp");
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) {
    return Status::IoError("creating " + tmp.string() + ": " + std::strerror(errno));
  }
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size() &&
                  std::fflush(f) == 0 && ::fsync(fileno(f)) == 0;
  std::fclose(f);
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    return Status::IoError("writing " + path.string() + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

}  // namespace

std::string OutputSchema::Json() const {
  std::string out = "{\n  \"schema_version\": 1,\n  \"format\": ";
  AppendJsonString(NameOf(format), out);
  out += ",\n  \"compression\": ";
  AppendJsonString(NameOf(compression), out);
  out += ",\n  \"files\": ";
  AppendJsonString("part-*." + FileExtension(format, compression), out);
  out += ",\n  \"fields\": [";
  bool first = true;
  for (const Field& f : Fields(*this)) {
    out += first ? "\n" : ",\n";
    first = false;
    out += "    {\"name\": ";
    AppendJsonString(f.name, out);
    out += ", \"type\": ";
    AppendJsonString(NameOf(f.type), out);
    out += ", \"present\": ";
    AppendJsonString(NameOf(f.presence), out);
    out += ", \"role\": ";
    AppendJsonString(NameOf(f.role), out);
    out += fmt::format(", \"for_training\": {}", f.role == Role::kMetadata ? "false" : "true");
    out += ", \"source\": ";
    AppendJsonString(f.source, out);
    if (f.default_value != nullptr) {
      out += ", \"default\": ";
      AppendFeatureValueJson(*f.default_value, out);
    }
    if (!f.note.empty()) {
      out += ", \"note\": ";
      AppendJsonString(f.note, out);
    }
    out += '}';
  }
  out += "\n  ],\n  \"undeclared\": {\"impression_features\": ";
  AppendJsonString(strict_features ? "dead-lettered" : "inferred", out);
  out += ", \"lookup_columns\": \"inferred\", \"lookups\": [";
  for (size_t i = 0; i < lookups.size(); ++i) {
    if (i > 0) out += ", ";
    AppendJsonString(lookups[i].first, out);
  }
  out +=
      "], \"rule\": \"an integer is int64, another number float (float32 in tf.Example), an "
      "array of integers int64_list, of numbers float_list, a string string; looked-up "
      "columns are named <lookup>.<column>\"}\n}\n";
  return out;
}

std::string OutputSchema::Id() const {
  const std::string json = Json();
  return fmt::format("{:016x}", XXH3_64bits(json.data(), json.size()));
}

std::string OutputSchema::TfFeatureSpec() const {
  std::string out = fmt::format(
      "# Generated by ctrjoin from schema {} (_schema.json): the features of its samples\n"
      "# for tf.io.parse_example(serialized, FEATURE_SPEC). Undeclared features are not\n"
      "# listed: declare them in schema.features or lookups[].columns to have them here.\n"
      "import tensorflow as tf\n\nFEATURE_SPEC = {{\n",
      Id());
  std::string not_for_training;
  for (const Field& f : Fields(*this)) {
    std::string entry = fmt::format("tf.io.VarLenFeature({})", TfDtype(f.type));
    if (IsList(f.type)) {
      // Lists have no fixed length.
    } else if (f.presence == Presence::kAlways) {
      std::string value;
      if (f.default_value != nullptr) {
        AppendFeatureValueJson(*f.default_value, value);
        value = ", default_value=" + value;
      }
      entry = fmt::format("tf.io.FixedLenFeature([], {}{})", TfDtype(f.type), value);
    } else if (f.presence == Presence::kCorrections || f.presence == Presence::kPartial) {
      // Flags: written only when 1.
      entry = fmt::format("tf.io.FixedLenFeature([], {}, default_value=0)", TfDtype(f.type));
    }
    std::string name;
    AppendJsonString(f.name, name);
    out += fmt::format("    {}: {},\n", name, entry);
    if (f.role == Role::kMetadata)
      not_for_training += (not_for_training.empty() ? "" : ", ") + name;
  }
  out += "}\n\n# Present for bookkeeping; not inputs of a model (click_ts leaks the label).\n";
  out += "NOT_FOR_TRAINING = [" + not_for_training + "]\n";
  return out;
}

Status PublishFile(const std::filesystem::path& dir, const std::string& name,
                   const std::string& text) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IoError("creating " + dir.string() + ": " + ec.message());
  CTRJOIN_RETURN_IF_ERROR(WriteFileAtomically(dir, name, text));
  return FsyncPath(dir, /*directory=*/true);
}

Status PublishSchema(const OutputSchema& schema, const std::filesystem::path& dir) {
  CTRJOIN_RETURN_IF_ERROR(PublishFile(dir, "_schema.json", schema.Json()));
  return PublishFile(dir, "_tf_feature_spec.py", schema.TfFeatureSpec());
}

}  // namespace ctrjoin
