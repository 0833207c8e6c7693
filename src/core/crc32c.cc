#include "src/core/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace ctrjoin {
namespace {

constexpr std::uint32_t kPolynomial = 0x82F63B78u;  // reflected Castagnoli

constexpr std::array<std::uint32_t, 256> MakeTable() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPolynomial : c >> 1;
    table[i] = c;
  }
  return table;
}

constexpr std::array<std::uint32_t, 256> kTable = MakeTable();

std::uint32_t UpdateTable(std::uint32_t crc, const std::uint8_t* p, std::size_t len) {
  for (std::size_t i = 0; i < len; ++i) crc = kTable[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) std::uint32_t UpdateHardware(std::uint32_t crc,
                                                               const std::uint8_t* p,
                                                               std::size_t len) {
  std::uint64_t c = crc;
  while (len >= 8) {
    std::uint64_t word;
    std::memcpy(&word, p, 8);
    c = _mm_crc32_u64(c, word);
    p += 8;
    len -= 8;
  }
  auto c32 = static_cast<std::uint32_t>(c);
  while (len > 0) {
    c32 = _mm_crc32_u8(c32, *p++);
    --len;
  }
  return c32;
}

bool HasSse42() {
  static const bool has = __builtin_cpu_supports("sse4.2");
  return has;
}
#endif

}  // namespace

std::uint32_t Crc32c(const std::uint8_t* data, std::size_t len) {
#if defined(__x86_64__)
  if (HasSse42()) return ~UpdateHardware(0xFFFFFFFFu, data, len);
#endif
  return Crc32cPortable(data, len);
}

std::uint32_t Crc32cPortable(const std::uint8_t* data, std::size_t len) {
  return ~UpdateTable(0xFFFFFFFFu, data, len);
}

}  // namespace ctrjoin
