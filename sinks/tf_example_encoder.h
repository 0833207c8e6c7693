#pragma once
// tf.Example encoding of samples, and TFRecord framing. Pure functions: any
// thread.
//
// A sample becomes a tensorflow.Example (protobuf, written directly on the
// wire format; field numbers from tensorflow/core/example/{example,feature}.proto):
//   sample_id, label, ts, click_ts (positives), correction, partial -> int64_list
//   impression_id, user_id, item_id                                -> bytes_list
//   each feature: number or array of numbers -> float_list, string -> bytes_list,
//   under its own name ("position", "user.age").
// sample_id is the xxh3-64 bit pattern as a (possibly negative) int64.
//
// TFRecord framing: uint64 length, uint32 masked CRC-32C of the length, the
// data, uint32 masked CRC-32C of the data (all little-endian), where
// masked(c) = ((c >> 15) | (c << 17)) + 0xa282ead8.

#include <string>
#include <string_view>

#include "src/core/event.h"

namespace ctrjoin {

void AppendSampleTfExample(const Sample& sample, std::string& out);
void AppendTfRecord(std::string_view data, std::string& out);
uint32_t MaskedCrc32c(std::string_view data);

}  // namespace ctrjoin
