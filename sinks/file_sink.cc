#include "sinks/file_sink.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "sinks/json_encoder.h"

namespace ctrjoin {

namespace {
constexpr size_t kBufferBytes = 1 << 20;
}

LineWriter::LineWriter(std::FILE* file, std::string name, bool owned)
    : file_(file), name_(std::move(name)), owned_(owned), durable_(false) {
  std::setvbuf(file_, nullptr, _IOFBF, kBufferBytes);
  struct stat st;
  durable_ = owned_ && ::fstat(fileno(file_), &st) == 0 && S_ISREG(st.st_mode);
}

LineWriter::~LineWriter() {
  if (owned_) std::fclose(file_);
}

Result<std::unique_ptr<LineWriter>> LineWriter::OpenFile(const std::string& path, bool append) {
  std::error_code ec;
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  std::FILE* f = std::fopen(path.c_str(), append ? "ab" : "wb");
  if (f == nullptr) {
    return Status::InvalidArgument("cannot open " + path + " for writing: " + std::strerror(errno));
  }
  return std::unique_ptr<LineWriter>(new LineWriter(f, path, true));
}

std::unique_ptr<LineWriter> LineWriter::Stdout() {
  return std::unique_ptr<LineWriter>(new LineWriter(stdout, "stdout", false));
}

std::unique_ptr<LineWriter> LineWriter::Stderr() {
  return std::unique_ptr<LineWriter>(new LineWriter(stderr, "stderr", false));
}

Status LineWriter::WriteLine(const std::string& line) {
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() ||
      std::fputc('\n', file_) == EOF) {
    return Status::IoError("writing " + name_ + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

Status LineWriter::Flush() {
  if (std::fflush(file_) != 0) {
    return Status::IoError("flushing " + name_ + ": " + std::strerror(errno));
  }
  if (durable_ && ::fsync(fileno(file_)) != 0) {
    return Status::IoError("fsync " + name_ + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

Status LineWriter::Write(std::string_view bytes) {
  if (std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size()) {
    return Status::IoError("writing " + name_ + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

Status FileSampleSink::Write(std::span<const Sample> samples) {
  buffer_.clear();
  for (const Sample& s : samples) AppendSampleRecord(format_, s, buffer_);
  return out_->Write(buffer_);
}

std::string FileSampleSink::Describe() const {
  return std::string(format_ == SampleFormat::kJson ? "JSON lines" : "TFRecords of tf.Example") +
         " to " + out_->name();
}

Status JsonLinesDeadLetterSink::Write(const DeadLetter& letter) {
  line_.clear();
  AppendDeadLetterJson(letter, line_);
  return out_->WriteLine(line_);
}

}  // namespace ctrjoin
