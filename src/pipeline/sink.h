#pragma once
// Interfaces for the pipeline's outputs. Concrete sinks live in sinks/;
// src/ depends only on these interfaces.
//
// Both are called only from the pipeline's serial sink/router nodes (one call
// at a time), so implementations need no locking of their own.

#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "src/core/event.h"
#include "src/core/status.h"

namespace ctrjoin {

// Mode group with checkpoints: a piece of task `task`'s changelog (whole
// framed records, src/state/changelog.h), produced to partition `task` of
// the job's changelog topic in the epoch's transaction (txn/README.md,
// "Several processes on one job"). max_horizon and watermark say when no
// restore needs it any more (what trimming the topic goes by).
struct ChangelogChunk {
  int32_t task = 0;
  std::string bytes;
  int64_t max_horizon = std::numeric_limits<int64_t>::min();  // latest deadline of its puts
  std::optional<int64_t> watermark;                           // its marker's, if it ends at one
};

class SampleSink {
 public:
  virtual ~SampleSink() = default;
  virtual Status Write(std::span<const Sample> samples) = 0;
  // Mode group with checkpoints: a task's changelog chunk, in the open
  // epoch with the samples (txn/README.md, "Several processes on one job").
  virtual Status WriteChangelog(const ChangelogChunk& chunk) {
    (void)chunk;
    return Status::InvalidArgument(Describe() + ": takes no changelog");
  }
  // Makes everything written so far durable / delivered. Called at the end of
  // input and at shutdown.
  virtual Status Flush() = 0;
  virtual std::string Describe() const = 0;
};

class DeadLetterSink {
 public:
  virtual ~DeadLetterSink() = default;
  virtual Status Write(const DeadLetter& letter) = 0;
  virtual Status Flush() = 0;
};

}  // namespace ctrjoin
