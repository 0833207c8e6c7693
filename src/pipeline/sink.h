#pragma once
// Interfaces for the pipeline's outputs. Concrete sinks live in sinks/;
// src/ depends only on these interfaces.
//
// Both are called only from the pipeline's serial sink/router nodes (one call
// at a time), so implementations need no locking of their own.

#include <span>
#include <string>

#include "src/core/event.h"
#include "src/core/status.h"

namespace ctrjoin {

class SampleSink {
 public:
  virtual ~SampleSink() = default;
  virtual Status Write(std::span<const Sample> samples) = 0;
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
