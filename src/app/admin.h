#pragma once
// Small admin commands of the ctrjoin binary: list and show the checkpoints
// of a job, show the tasks of a job in mode group, abort the lingering Kafka
// transactions of a transactional-id prefix. Composition code (library ctrjoin_app), called from
// main's thread; each writes its report to `out` and owns nothing afterwards.
//
// Listing and showing only read the checkpoint directory, so they are safe
// while the job runs.

#include <cstdint>
#include <cstdio>
#include <string>

#include "src/app/config.h"
#include "src/core/status.h"

namespace ctrjoin {

// One line per complete checkpoint of config.checkpoint.dir, oldest first:
// epoch, creation time (UTC), shards, watermark, state bytes it added.
Status ListCheckpoints(const Config& config, std::FILE* out);

// Everything a checkpoint's META holds: positions per input partition,
// per-partition max event times, watermark, plus the size of each shard's
// state on disk.
Status ShowCheckpoint(const Config& config, uint64_t epoch, std::FILE* out);

// Mode group: one line per task (partition p of both input topics): the
// group's committed offset and the end offset of its impressions and clicks
// partition, the offsets its changelog partition keeps, and the epoch and
// instance of the last commit (which process held it then). Reads only:
// safe while the job runs. InvalidArgument for a config in mode assign.
Status ShowTasks(const Config& config, std::FILE* out);

// Initialises transactions on "<prefix>-0" .. "<prefix>-<pool_size - 1>":
// the broker fences whatever producer held each id and aborts its open
// transaction. prefix and pool_size default (empty, 0) to the config's sink.
// Stop the job that uses these ids first, or it will be fenced.
Status AbortTransactions(const Config& config, const std::string& prefix, int pool_size,
                         std::FILE* out);

}  // namespace ctrjoin
