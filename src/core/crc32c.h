#pragma once
// CRC-32C (Castagnoli), the checksum of Kafka record batches v2 and of TFRecord framing. Uses the
// SSE4.2 crc32 instruction when the CPU has it, a byte table otherwise.
// Pure function; safe from any thread.

#include <cstddef>
#include <cstdint>

namespace ctrjoin {

std::uint32_t Crc32c(const std::uint8_t* data, std::size_t len);

// The table-driven path alone; tests compare it with Crc32c.
std::uint32_t Crc32cPortable(const std::uint8_t* data, std::size_t len);

}  // namespace ctrjoin
