#include "sinks/completion_marker.h"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include "sinks/json_encoder.h"
#include "sinks/sample_schema.h"

namespace ctrjoin {

namespace fs = std::filesystem;

namespace {

// The whole file, inflated if gzipped (gzread reads plain files as they are).
Result<std::string> ReadAll(const fs::path& path) {
  gzFile gz = gzopen(path.c_str(), "rb");
  if (gz == nullptr) return Status::IoError("reading " + path.string() + ": cannot open it");
  std::string text;
  char buf[1 << 16];
  int n = 0;
  while ((n = gzread(gz, buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  const bool ok = n == 0;
  gzclose(gz);
  if (!ok) return Status::Corruption("reading " + path.string() + ": not a whole gzip stream");
  return text;
}

std::vector<fs::path> Files(const fs::path& dir, std::string_view prefix) {
  std::vector<fs::path> files;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return files;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file() && e.path().filename().string().starts_with(prefix)) {
      files.push_back(e.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

Result<uint64_t> CountRecords(const fs::path& path, SampleFormat format) {
  Result<std::string> text = ReadAll(path);
  if (!text.ok()) return text.status();
  if (format == SampleFormat::kJson) {
    return static_cast<uint64_t>(std::count(text->begin(), text->end(), '\n'));
  }
  // TFRecord: uint64 length, uint32 crc, data, uint32 crc.
  uint64_t records = 0;
  size_t at = 0;
  while (at < text->size()) {
    uint64_t length = 0;
    if (text->size() - at < 12) break;
    std::memcpy(&length, text->data() + at, 8);  // little-endian on x86-64
    if (length > text->size() - at - 16) break;
    at += 16 + length;
    ++records;
  }
  if (at != text->size()) {
    return Status::Corruption(fmt::format("{}: a TFRecord is cut at byte {}", path.string(), at));
  }
  return records;
}

Status WriteCompletionMarker(const fs::path& dir, SampleFormat format, const std::string& what) {
  uint64_t samples = 0;
  std::string parts;
  for (const fs::path& part : Files(dir, "part-")) {
    Result<uint64_t> n = CountRecords(part, format);
    if (!n.ok()) return n.status();
    samples += *n;
    parts += fmt::format("{}\n    {{\"name\": ", parts.empty() ? "" : ",");
    AppendJsonString(part.filename().string(), parts);
    parts += fmt::format(", \"samples\": {}, \"bytes\": {}}}", *n, fs::file_size(part));
  }
  uint64_t dead_letters = 0;
  for (const fs::path& file : Files(dir / "dead-letters", "epoch-")) {
    Result<uint64_t> n = CountRecords(file, SampleFormat::kJson);
    if (!n.ok()) return n.status();
    dead_letters += *n;
  }
  std::string out = "{\n  \"finished\": ";
  AppendJsonString(what, out);
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  out += fmt::format(
      ",\n  \"finished_at_ms\": {},\n  \"samples\": {},\n  \"dead_letters\": {},\n"
      "  \"parts\": [{}\n  ]\n}}\n",
      now, samples, dead_letters, parts);
  return PublishFile(dir, "_SUCCESS", out);
}

}  // namespace ctrjoin
