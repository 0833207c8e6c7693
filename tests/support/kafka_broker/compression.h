#pragma once
// Decompression of the records section of compressed record batches, for the
// one place the broker looks inside a batch it stores: ListOffsets by
// timestamp. The produce and fetch paths never decompress. Pure functions;
// any thread.

#include <string>

#include "src/core/status.h"
#include "tests/support/kafka_broker/wire.h"

namespace ctrjoin::testbroker {

// The records of a batch whose Attributes name |codec| (1 gzip, 2 snappy, raw
// or in snappy-java's framing, 3 lz4 frame, 4 zstd), decompressed from
// |compressed|. Corruption for an unknown codec, malformed or truncated data,
// or more than 1 GiB of output.
Result<std::string> DecompressRecords(int codec, Bytes compressed);

}  // namespace ctrjoin::testbroker
