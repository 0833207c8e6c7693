#pragma once
// Plain (non-transactional) file outputs: samples to a file (JSON lines or
// TFRecords of tf.Example) or to stdout (JSON lines), and dead letters to a
// JSON-lines file. Each owns a
// stdio stream with a large buffer; Flush() pushes it to the OS (and fsyncs
// files). The transactional file sink is sinks/txn_file_sink.h.
//
// Called only from the pipeline's serial sink/route nodes (Sink contract).

#include <cstdio>
#include <memory>
#include <string>

#include "sinks/sample_format.h"
#include "src/pipeline/sink.h"

namespace ctrjoin {

// Writes lines to a FILE*; closes it at destruction when it owns it. Flush
// also fsyncs an owned regular file; a pipe, FIFO or terminal (sink.path
// /dev/stdout) is only flushed: it has nothing to make durable.
// Called from one thread at a time (the sink node or the caller that owns it).
class LineWriter {
 public:
  static Result<std::unique_ptr<LineWriter>> OpenFile(const std::string& path, bool append);
  static std::unique_ptr<LineWriter> Stdout();
  static std::unique_ptr<LineWriter> Stderr();
  ~LineWriter();

  Status WriteLine(const std::string& line);
  Status Write(std::string_view bytes);
  Status Flush();
  const std::string& name() const { return name_; }

 private:
  LineWriter(std::FILE* file, std::string name, bool owned);
  std::FILE* file_;
  std::string name_;
  bool owned_;
  bool durable_;  // an owned regular file: Flush fsyncs it
};

class FileSampleSink : public SampleSink {
 public:
  FileSampleSink(std::unique_ptr<LineWriter> out, SampleFormat format)
      : out_(std::move(out)), format_(format) {}
  Status Write(std::span<const Sample> samples) override;
  Status Flush() override { return out_->Flush(); }
  std::string Describe() const override;

 private:
  std::unique_ptr<LineWriter> out_;
  const SampleFormat format_;
  std::string buffer_;  // reused
};

// Samples to rolled parts in a directory, without transactions (at least
// once: a crash leaves the open part in _staging/). The open part is
// <dir>/_staging/part.inprogress; when it reaches roll_bytes or roll_ms
// (checked at each write), and at Flush (end of input, shutdown), it is
// fsynced, gzipped if asked, and renamed to <dir>/part-<n, 20 digits>.<ext>,
// n counting up from the highest part already there. Readers glob
// <dir>/part-*. Called from the pipeline's sink node only.
struct RolledFileSinkOptions {
  std::string dir;
  SampleFormat format = SampleFormat::kJson;
  FileCompression compression = FileCompression::kNone;
  uint64_t roll_bytes = 0;  // 0: no size bound
  int64_t roll_ms = 0;      // 0: no age bound
};

class RolledFileSampleSink : public SampleSink {
 public:
  static Result<std::unique_ptr<RolledFileSampleSink>> Open(RolledFileSinkOptions options);
  ~RolledFileSampleSink() override;
  Status Write(std::span<const Sample> samples) override;
  Status Flush() override { return Roll(); }
  std::string Describe() const override;

 private:
  RolledFileSampleSink(RolledFileSinkOptions options, uint64_t next);
  // Publishes the open part, if it holds anything.
  Status Roll();

  const RolledFileSinkOptions options_;
  uint64_t next_;              // the next part's number
  std::FILE* file_ = nullptr;  // the open part, opened at the first write
  uint64_t bytes_ = 0;         // in the open part
  int64_t opened_ms_ = 0;      // monotonic
  std::string buffer_;         // reused
};

class JsonLinesDeadLetterSink : public DeadLetterSink {
 public:
  explicit JsonLinesDeadLetterSink(std::unique_ptr<LineWriter> out) : out_(std::move(out)) {}
  Status Write(const DeadLetter& letter) override;
  Status Flush() override { return out_->Flush(); }

 private:
  std::unique_ptr<LineWriter> out_;
  std::string line_;
};

}  // namespace ctrjoin
