#pragma once
// Compresses a finished file into a durable gzip file (one gzip stream),
// for the file sinks' `sink.compression: gzip`. Called from whichever
// thread publishes the file; owns nothing between calls.

#include <filesystem>

#include "src/core/status.h"

namespace ctrjoin {

// Writes `to` (created or replaced) as the gzip of `from` and fsyncs it; the
// caller renames it into place and syncs the directory.
Status GzipFile(const std::filesystem::path& from, const std::filesystem::path& to);

}  // namespace ctrjoin
