#pragma once
// The schema an output publishes (sinks/README.md, "The published schema"):
// every field a sample can carry, its type, when it is present and whether
// it is for training; the declared features and lookup columns; what
// happens to undeclared ones. Written as JSON into a file sink's directory
// (_schema.json) and, as a TensorFlow feature spec for tf.io.parse_example,
// beside it (_tf_feature_spec.py); its id goes with every Kafka value
// (header ctrjoin-schema-id). Built once at start-up from the config on
// main's thread; immutable, then read from any thread.

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "sinks/sample_format.h"
#include "src/core/feature_type.h"
#include "src/core/status.h"

namespace ctrjoin {

struct OutputSchema {
  SampleFormat format = SampleFormat::kJson;
  FileCompression compression = FileCompression::kNone;
  FeatureDecls features;  // schema.features
  bool strict_features = false;
  // Each lookup's name and declared columns.
  std::vector<std::pair<std::string, FeatureDecls>> lookups;

  // The published schema (JSON, one object, keys in a fixed order).
  std::string Json() const;
  // 16 hex digits of xxh3-64 over Json(): changes whenever the schema does.
  std::string Id() const;
  // Python source defining FEATURE_SPEC (for tf.io.parse_example) and
  // NOT_FOR_TRAINING: a fixed-length entry for what every sample has (or has
  // a default), a VarLenFeature for lists and for what may be absent.
  std::string TfFeatureSpec() const;
};

// Writes text to dir/name atomically (dir created if need be; temporary
// file, fsync, rename, directory fsync).
Status PublishFile(const std::filesystem::path& dir, const std::string& name,
                   const std::string& text);

// Writes _schema.json and _tf_feature_spec.py into dir, each atomically
// (temporary file, fsync, rename) and the directory fsynced.
Status PublishSchema(const OutputSchema& schema, const std::filesystem::path& dir);

}  // namespace ctrjoin
