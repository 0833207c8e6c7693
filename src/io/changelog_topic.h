#pragma once
// The job's changelog topic in mode group with checkpoints (txn/README.md,
// "Several processes on one job"): partition p holds task p's changelog,
// chunks of framed records (src/state/changelog.h) that the process holding
// the task produces inside each epoch's transaction. A task's new owner
// reads its partition read_committed, from its log start to its end, into a
// local segment file, and restores from that as from a changelog on disk.
//
// EnsureChangelogTopic is called from the thread that starts the run;
// ReadTaskChangelog from a shard thread when a task arrives. Each call makes
// and owns its own client; nothing is shared between calls.

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "src/core/status.h"

namespace ctrjoin {

struct ChangelogTopicOptions {
  std::string brokers;
  std::string topic;     // "<source.kafka.group_id>-changelog"
  std::string group_id;  // the job's; the reader's own consumer is named after it
  std::map<std::string, std::string> properties;  // source.kafka.properties (security, ...)
};

// Creates the topic with one partition per task, or checks that the
// existing one has that many (InvalidArgument, naming what to do, if not).
Status EnsureChangelogTopic(const ChangelogTopicOptions& options, int32_t tasks);

struct TaskChangelogRead {
  uint64_t records = 0;  // chunks
  uint64_t bytes = 0;
  int64_t end = 0;  // the offset it read to
};

// Appends every committed chunk of partition `task`, in order, to the file
// `path` (created). Reads until its end with no transaction open on the
// partition: an open one (a process killed in the middle of an epoch) is
// waited for until it commits or aborts, or the broker aborts it at its
// timeout, saying so every 5 s.
//
// progress (may be empty) is called on the calling thread once the
// partition's offsets are known, after each chunk and at the end: the next
// offset to read, the partition's end offset (the last stable offset at
// first, then the high watermark as last fetched; -1 while unknown), and the
// bytes read so far.
using ChangelogReadProgress = std::function<void(int64_t position, int64_t end, uint64_t bytes)>;
Result<TaskChangelogRead> ReadTaskChangelog(const ChangelogTopicOptions& options, int32_t task,
                                            const std::string& path,
                                            const ChangelogReadProgress& progress = {});

}  // namespace ctrjoin
