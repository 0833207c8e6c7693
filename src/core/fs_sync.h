#pragma once
// Durability of files and directory entries: fsync of a path. Used wherever
// something is published by write, fsync, rename, fsync of the directory
// (checkpoints, staged epochs, a job's start positions). Any thread.

#include <filesystem>

#include "src/core/status.h"

namespace ctrjoin {

// fsync(2) of a file, or of a directory (its entries: renames, creations).
// An IoError names the path and the failing call.
Status FsyncPath(const std::filesystem::path& path, bool directory);

}  // namespace ctrjoin
