#pragma once
// The absolute offsets a job's first run resolved `source.kafka.start` to,
// kept in <state.dir>/START (txn/README.md, "Start positions"): a job killed
// before its first commit starts again from them, not from wherever the
// log's end has moved to by then (`start: latest` would skip what came in
// between). Read and written from the thread that starts the run, before
// the source reads anything.

#include <string>

#include "src/core/status.h"
#include "src/pipeline/source.h"

namespace ctrjoin {

// NotFound when the file does not exist; Corruption when it is damaged.
Result<SourcePositions> LoadStartPositions(const std::string& path);
// Durably (written, fsynced, renamed, directory fsynced).
Status SaveStartPositions(const std::string& path, const SourcePositions& positions);

}  // namespace ctrjoin
