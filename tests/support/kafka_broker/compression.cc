#include "tests/support/kafka_broker/compression.h"

#include <lz4frame.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

#include <array>
#include <cstring>
#include <memory>

namespace ctrjoin::testbroker {
namespace {

constexpr std::size_t kMaxOutput = std::size_t{1} << 30;
constexpr std::size_t kChunk = 64 * 1024;

// The stream header snappy-java writes (Kafka's Java clients use it): magic,
// then two int32 versions, then blocks of int32 length + raw snappy.
constexpr std::array<std::uint8_t, 8> kSnappyJavaMagic = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
constexpr std::size_t kSnappyJavaHeader = 16;

Status TooLarge(const char* codec) {
  return Status::Corruption(std::string(codec) + ": batch decompresses to more than 1 GiB");
}

Result<std::string> Gunzip(Bytes in) {
  z_stream z{};
  // 15 window bits + 32: zlib or gzip header, detected.
  if (inflateInit2(&z, 15 + 32) != Z_OK) return Status::Internal("gzip: inflateInit2 failed");
  z.next_in = const_cast<Bytef*>(in.data());
  z.avail_in = static_cast<uInt>(in.size());
  std::string out;
  std::array<char, kChunk> buf;
  int rc = Z_OK;
  while (rc == Z_OK && out.size() <= kMaxOutput) {
    z.next_out = reinterpret_cast<Bytef*>(buf.data());
    z.avail_out = static_cast<uInt>(buf.size());
    rc = inflate(&z, Z_NO_FLUSH);
    out.append(buf.data(), buf.size() - z.avail_out);
  }
  inflateEnd(&z);
  if (out.size() > kMaxOutput) return TooLarge("gzip");
  if (rc != Z_STREAM_END) {
    return Status::Corruption(std::string("gzip: ") +
                              (rc == Z_BUF_ERROR ? "truncated stream" : zError(rc)));
  }
  return out;
}

Status AppendRawSnappy(Bytes in, std::string* out) {
  const auto* data = reinterpret_cast<const char*>(in.data());
  std::size_t length = 0;
  if (snappy_uncompressed_length(data, in.size(), &length) != SNAPPY_OK) {
    return Status::Corruption("snappy: bad block header");
  }
  if (out->size() + length > kMaxOutput) return TooLarge("snappy");
  const std::size_t at = out->size();
  out->resize(at + length);
  if (snappy_uncompress(data, in.size(), out->data() + at, &length) != SNAPPY_OK) {
    return Status::Corruption("snappy: bad block");
  }
  out->resize(at + length);
  return Status::Ok();
}

Result<std::string> Unsnappy(Bytes in) {
  std::string out;
  if (in.size() < kSnappyJavaHeader ||
      std::memcmp(in.data(), kSnappyJavaMagic.data(), kSnappyJavaMagic.size()) != 0) {
    CTRJOIN_RETURN_IF_ERROR(AppendRawSnappy(in, &out));
    return out;
  }
  for (Bytes rest = in.subspan(kSnappyJavaHeader); !rest.empty();) {
    if (rest.size() < 4) return Status::Corruption("snappy: truncated block length");
    const auto length = static_cast<std::uint32_t>(LoadBe32(rest.data()));
    if (length > rest.size() - 4) return Status::Corruption("snappy: truncated block");
    CTRJOIN_RETURN_IF_ERROR(AppendRawSnappy(rest.subspan(4, length), &out));
    rest = rest.subspan(4 + length);
  }
  return out;
}

Result<std::string> Unlz4(Bytes in) {
  LZ4F_dctx* raw = nullptr;
  if (LZ4F_isError(LZ4F_createDecompressionContext(&raw, LZ4F_VERSION))) {
    return Status::Internal("lz4: cannot create a decompression context");
  }
  std::unique_ptr<LZ4F_dctx, decltype(&LZ4F_freeDecompressionContext)> ctx(
      raw, &LZ4F_freeDecompressionContext);
  std::string out;
  std::array<char, kChunk> buf;
  std::size_t pos = 0;
  for (;;) {
    std::size_t consumed = in.size() - pos;
    std::size_t produced = buf.size();
    const std::size_t hint =
        LZ4F_decompress(ctx.get(), buf.data(), &produced, in.data() + pos, &consumed, nullptr);
    if (LZ4F_isError(hint))
      return Status::Corruption(std::string("lz4: ") + LZ4F_getErrorName(hint));
    pos += consumed;
    out.append(buf.data(), produced);
    if (out.size() > kMaxOutput) return TooLarge("lz4");
    if (hint == 0) return out;  // end of the frame
    if (consumed == 0 && produced == 0) return Status::Corruption("lz4: truncated frame");
  }
}

Result<std::string> Unzstd(Bytes in) {
  std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> ctx(ZSTD_createDCtx(), &ZSTD_freeDCtx);
  if (!ctx) return Status::Internal("zstd: cannot create a decompression context");
  ZSTD_inBuffer input{in.data(), in.size(), 0};
  std::string out;
  std::array<char, kChunk> buf;
  for (;;) {
    ZSTD_outBuffer output{buf.data(), buf.size(), 0};
    const std::size_t rc = ZSTD_decompressStream(ctx.get(), &output, &input);
    if (ZSTD_isError(rc)) return Status::Corruption(std::string("zstd: ") + ZSTD_getErrorName(rc));
    out.append(buf.data(), output.pos);
    if (out.size() > kMaxOutput) return TooLarge("zstd");
    if (rc == 0) return out;  // end of the frame, all of it flushed
    if (input.pos == input.size && output.pos < output.size) {
      return Status::Corruption("zstd: truncated frame");
    }
  }
}

}  // namespace

Result<std::string> DecompressRecords(int codec, Bytes compressed) {
  switch (codec) {
    case 1: return Gunzip(compressed);
    case 2: return Unsnappy(compressed);
    case 3: return Unlz4(compressed);
    case 4: return Unzstd(compressed);
  }
  return Status::Corruption("unknown compression codec " + std::to_string(codec));
}

}  // namespace ctrjoin::testbroker
