#include "sinks/sample_format.h"

#include "sinks/json_encoder.h"
#include "sinks/tf_example_encoder.h"

namespace ctrjoin {

void AppendSampleRecord(SampleFormat format, const Sample& sample, std::string& out) {
  switch (format) {
    case SampleFormat::kJson:
      AppendSampleJson(sample, out);
      out.push_back('\n');
      return;
    case SampleFormat::kTfExample: {
      std::string example;
      AppendSampleTfExample(sample, example);
      AppendTfRecord(example, out);
      return;
    }
  }
}

void AppendSampleValue(SampleFormat format, const Sample& sample, std::string& out) {
  switch (format) {
    case SampleFormat::kJson: AppendSampleJson(sample, out); return;
    case SampleFormat::kTfExample: AppendSampleTfExample(sample, out); return;
  }
}

const char* SampleContentType(SampleFormat format) {
  return format == SampleFormat::kJson ? "application/json"
                                       : "application/x-protobuf; messageType=tensorflow.Example";
}

std::string FileExtension(SampleFormat format, FileCompression compression) {
  std::string ext = format == SampleFormat::kJson ? "jsonl" : "tfrecord";
  if (compression == FileCompression::kGzip) ext += ".gz";
  return ext;
}

}  // namespace ctrjoin
