#include "src/io/file_source.h"

#include <cerrno>
#include <cstring>

#include "src/core/clock.h"

namespace ctrjoin {

namespace {
bool IsBlank(const std::string& s) {
  for (char c : s) {
    if (c != ' ' && c != '\t' && c != '\r') return false;
  }
  return true;
}
}  // namespace

Status FileSourceOptions::Validate() const {
  if (impressions_path.empty()) {
    return Status::InvalidArgument("source.files.impressions: must be set to a JSON-lines file");
  }
  if (clicks_path.empty()) {
    return Status::InvalidArgument("source.files.clicks: must be set to a JSON-lines file");
  }
  return Status::Ok();
}

FileSource::FileSource(const FileSourceOptions& options, const SchemaOptions& schema)
    : inputs_{{StreamKind::kImpression, options.impressions_path},
              {StreamKind::kClick, options.clicks_path}},
      parser_(schema) {}

FileSource::~FileSource() {
  for (Input& in : inputs_) {
    if (in.file != nullptr) std::fclose(in.file);
  }
}

Result<std::unique_ptr<FileSource>> FileSource::Open(const FileSourceOptions& options,
                                                     const SchemaOptions& schema) {
  CTRJOIN_RETURN_IF_ERROR(options.Validate());
  std::unique_ptr<FileSource> source(new FileSource(options, schema));
  for (Input& in : source->inputs_) {
    in.file = std::fopen(in.path.c_str(), "rb");
    if (in.file == nullptr) {
      return Status::InvalidArgument(std::string("source.files.") + StreamName(in.stream) +
                                     ": cannot open " + in.path + ": " + std::strerror(errno));
    }
    CTRJOIN_RETURN_IF_ERROR(source->Advance(in));
  }
  return source;
}

Status FileSource::Advance(Input& in) {
  in.has_head = false;
  char* line = nullptr;
  size_t cap = 0;
  while (true) {
    errno = 0;
    const ssize_t n = getline(&line, &cap, in.file);
    if (n < 0) {
      const bool failed = std::ferror(in.file) != 0;
      std::free(line);
      if (failed) return Status::IoError("reading " + in.path + ": " + std::strerror(errno));
      return Status::Ok();  // end of file
    }
    ++in.line_no;
    in.head.assign(line, n);
    while (!in.head.empty() && (in.head.back() == '\n' || in.head.back() == '\r')) {
      in.head.pop_back();
    }
    if (IsBlank(in.head)) continue;
    std::free(line);
    in.has_head = true;
    // Only a valid line's ts steers the merge: one the parser rejects (for
    // any field) is passed on at once, else a plausible ts on a bad line
    // would hold its whole file back.
    const ParseResult parsed = parser_.Parse(in.stream, in.head, WallClockMs());
    if (const auto* imp = std::get_if<Impression>(&parsed)) {
      in.head_ts = imp->ts;
    } else if (const auto* click = std::get_if<Click>(&parsed)) {
      in.head_ts = click->ts;
    } else {
      in.head_ts = EventTime::Min();
    }
    return Status::Ok();
  }
}

Status FileSource::Seek(const SourcePositions& positions) {
  for (Input& in : inputs_) {
    auto it = positions.find(PartitionId{in.stream, 0});
    if (it == positions.end()) continue;
    while (in.has_head && in.line_no < it->second) CTRJOIN_RETURN_IF_ERROR(Advance(in));
  }
  return Status::Ok();
}

Result<SourceBatch> FileSource::Next(size_t max_records) {
  SourceBatch batch;
  if (!announced_) {
    announced_ = true;
    for (const Input& in : inputs_) batch.assigned.push_back(PartitionId{in.stream, 0});
  }
  if (ended_) {
    batch.end_of_input = true;
    return batch;
  }
  while (batch.records.size() < max_records) {
    Input* pick = nullptr;
    for (Input& in : inputs_) {
      if (!in.has_head) continue;
      if (pick == nullptr || in.head_ts < pick->head_ts) pick = &in;
    }
    if (pick == nullptr) break;
    RawRecord r;
    r.pos = SourcePosition{pick->stream, 0, Offset{pick->line_no}};
    r.payload = std::move(pick->head);
    batch.records.push_back(std::move(r));
    CTRJOIN_RETURN_IF_ERROR(Advance(*pick));
  }
  for (Input& in : inputs_) {
    if (in.has_head) {
      // Held back by the merge (or by max_records): it has data, so it must
      // not be taken for idle while the other file catches up.
      batch.pending.emplace_back(PartitionId{in.stream, 0}, in.head_ts);
    } else if (!in.finished) {
      in.finished = true;
      batch.finished.push_back(PartitionId{in.stream, 0});
    }
  }
  if (inputs_[0].finished && inputs_[1].finished) {
    ended_ = true;
    batch.end_of_input = true;
  }
  return batch;
}

std::string FileSource::Describe() const {
  return "files " + inputs_[0].path + " + " + inputs_[1].path;
}

}  // namespace ctrjoin
