#include "sinks/file_sink.h"

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <unistd.h>

#include "sinks/json_encoder.h"

namespace ctrjoin {

namespace {
constexpr size_t kBufferBytes = 1 << 20;
}

LineWriter::LineWriter(std::FILE* file, std::string name, bool owned)
    : file_(file), name_(std::move(name)), owned_(owned) {
  std::setvbuf(file_, nullptr, _IOFBF, kBufferBytes);
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
  if (owned_ && ::fsync(fileno(file_)) != 0) {
    return Status::IoError("fsync " + name_ + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

Status JsonLinesSampleSink::Write(std::span<const Sample> samples) {
  for (const Sample& s : samples) {
    line_.clear();
    AppendSampleJson(s, line_);
    CTRJOIN_RETURN_IF_ERROR(out_->WriteLine(line_));
  }
  return Status::Ok();
}

Status JsonLinesDeadLetterSink::Write(const DeadLetter& letter) {
  line_.clear();
  AppendDeadLetterJson(letter, line_);
  return out_->WriteLine(line_);
}

}  // namespace ctrjoin
