#pragma once
// The completion marker of a finished output directory (a replay that read
// its whole range): <dir>/_SUCCESS, JSON with what finished, when, and the
// records in every part and dead-letter file, counted from the files
// themselves (so a run resumed after kills counts everything). Called once
// by the replay command on main's thread after its last commit.

#include <filesystem>
#include <string>

#include "sinks/sample_format.h"
#include "src/core/status.h"

namespace ctrjoin {

// Records in one file: JSON lines, or TFRecords (framing walked), gzipped
// when the name ends in ".gz".
Result<uint64_t> CountRecords(const std::filesystem::path& path, SampleFormat format);

// Writes <dir>/_SUCCESS atomically. `what` says what finished
// ("replay 'backfill' of impressions@0:100-200").
Status WriteCompletionMarker(const std::filesystem::path& dir, SampleFormat format,
                             const std::string& what);

}  // namespace ctrjoin
