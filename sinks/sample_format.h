#pragma once
// The encodings a sample sink can write, chosen by `sink.format`:
//   json        one JSON object per line (sinks/json_encoder.h)
//   tf_example  a tensorflow.Example (sinks/tf_example_encoder.h); in files
//               each record is TFRecord-framed, as a Kafka value it is bare.
// Pure functions: any thread.

#include <string>
#include <string_view>

#include "src/core/event.h"
#include "src/core/status.h"

namespace ctrjoin {

enum class SampleFormat { kJson, kTfExample };

// key names the config key in errors, e.g. "sink.format".
Result<SampleFormat> ParseSampleFormat(std::string_view name, const std::string& key);

// One sample as a file record: a JSON line ending in '\n', or a TFRecord.
void AppendSampleRecord(SampleFormat format, const Sample& sample, std::string& out);
// One sample as a message value: JSON without newline, or a bare tf.Example.
void AppendSampleValue(SampleFormat format, const Sample& sample, std::string& out);

}  // namespace ctrjoin
