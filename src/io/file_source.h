#pragma once
// FileSource: reads an impressions and a clicks JSON-lines file (archived
// logs, tests) and merges them in event-time order, so that watermarks
// behave as they would on Kafka: the next record is always the head with the
// smaller ts (impressions first on ties). Each head is parsed to find its ts:
// a line the parser rejects (for any field) is passed on at once, to be
// dead-lettered by the parse stage, so it never steers the merge. A file
// whose head is held back is reported pending in every batch, so it is never
// taken for idle. Blank lines are skipped. Each file is one partition
// (partition 0 of its stream) and is reported finished at its end; at the
// end of both, end_of_input is set. Offsets are 1-based line numbers.
//
// Called only from the pipeline's source node (Source contract). Owns the
// open files and a parser used to order them (each line is parsed twice:
// here and in the parse stage).

#include <cstdio>
#include <memory>
#include <string>

#include "src/pipeline/event_parser.h"
#include "src/pipeline/source.h"

namespace ctrjoin {

struct FileSourceOptions {
  std::string impressions_path;  // required
  std::string clicks_path;       // required

  Status Validate() const;  // "source.files.impressions: ..."
};

class FileSource : public Source {
 public:
  static Result<std::unique_ptr<FileSource>> Open(const FileSourceOptions& options,
                                                  const SchemaOptions& schema);
  ~FileSource() override;

  Result<SourceBatch> Next(size_t max_records) override;
  // Skips every line before the position of its file (re-reading them).
  Status Seek(const SourcePositions& positions) override;
  std::string Describe() const override;

 private:
  struct Input {
    StreamKind stream;
    std::string path;
    std::FILE* file = nullptr;
    int64_t line_no = 0;
    bool has_head = false;
    bool finished = false;
    std::string head;
    EventTime head_ts;
  };

  FileSource(const FileSourceOptions& options, const SchemaOptions& schema);
  Status Advance(Input& in);  // reads the next non-blank line into head

  Input inputs_[2];
  EventParser parser_;
  bool announced_ = false;
  bool ended_ = false;
};

}  // namespace ctrjoin
