#pragma once
// The encodings a sample sink can write, chosen by `sink.format`:
//   json        one JSON object per line (sinks/json_encoder.h)
//   tf_example  a tensorflow.Example (sinks/tf_example_encoder.h); in files
//               each record is TFRecord-framed, as a Kafka value it is bare.
// Pure functions: any thread.

#include <string>

#include "src/core/enum_names.h"
#include "src/core/event.h"

namespace ctrjoin {

enum class SampleFormat { kJson, kTfExample };
constexpr auto NamesOf(SampleFormat) {
  return std::to_array<NamedValue<SampleFormat>>(
      {{SampleFormat::kJson, "json"}, {SampleFormat::kTfExample, "tf_example"}});
}

// How a file sink compresses its files: not at all, or GZIP (one gzip
// stream per file; TensorFlow reads TFRecords so with
// compression_type="GZIP").
enum class FileCompression { kNone, kGzip };
constexpr auto NamesOf(FileCompression) {
  return std::to_array<NamedValue<FileCompression>>(
      {{FileCompression::kNone, "none"}, {FileCompression::kGzip, "gzip"}});
}

// A Kafka value's content type (its content-type header):
// "application/json" or "application/x-protobuf; messageType=tensorflow.Example".
const char* SampleContentType(SampleFormat format);

// A file's extension: "jsonl", "tfrecord", "tfrecord.gz".
std::string FileExtension(SampleFormat format, FileCompression compression);

// One sample as a file record: a JSON line ending in '\n', or a TFRecord.
void AppendSampleRecord(SampleFormat format, const Sample& sample, std::string& out);
// One sample as a message value: JSON without newline, or a bare tf.Example.
void AppendSampleValue(SampleFormat format, const Sample& sample, std::string& out);

}  // namespace ctrjoin
