#include "tests/support/kafka_broker/wire.h"

#include <cstring>

namespace ctrjoin::testbroker {

std::int16_t LoadBe16(const std::uint8_t* p) {
  return static_cast<std::int16_t>((std::uint16_t{p[0]} << 8) | p[1]);
}

std::int32_t LoadBe32(const std::uint8_t* p) {
  return static_cast<std::int32_t>((std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) |
                                   (std::uint32_t{p[2]} << 8) | p[3]);
}

std::int64_t LoadBe64(const std::uint8_t* p) {
  return static_cast<std::int64_t>(
      (static_cast<std::uint64_t>(static_cast<std::uint32_t>(LoadBe32(p))) << 32) |
      static_cast<std::uint32_t>(LoadBe32(p + 4)));
}

void StoreBe32(std::uint8_t* p, std::int32_t v) {
  auto u = static_cast<std::uint32_t>(v);
  p[0] = static_cast<std::uint8_t>(u >> 24);
  p[1] = static_cast<std::uint8_t>(u >> 16);
  p[2] = static_cast<std::uint8_t>(u >> 8);
  p[3] = static_cast<std::uint8_t>(u);
}

void StoreBe64(std::uint8_t* p, std::int64_t v) {
  auto u = static_cast<std::uint64_t>(v);
  StoreBe32(p, static_cast<std::int32_t>(u >> 32));
  StoreBe32(p + 4, static_cast<std::int32_t>(u & 0xffffffffu));
}

bool WireReader::Need(std::size_t n) {
  if (!ok_ || data_.size() - pos_ < n) {
    ok_ = false;
    return false;
  }
  return true;
}

std::int8_t WireReader::Int8() {
  if (!Need(1)) return 0;
  return static_cast<std::int8_t>(data_[pos_++]);
}

std::int16_t WireReader::Int16() {
  if (!Need(2)) return 0;
  auto v = LoadBe16(data_.data() + pos_);
  pos_ += 2;
  return v;
}

std::int32_t WireReader::Int32() {
  if (!Need(4)) return 0;
  auto v = LoadBe32(data_.data() + pos_);
  pos_ += 4;
  return v;
}

std::int64_t WireReader::Int64() {
  if (!Need(8)) return 0;
  auto v = LoadBe64(data_.data() + pos_);
  pos_ += 8;
  return v;
}

Bytes WireReader::Raw(std::size_t n) {
  if (!Need(n)) return {};
  Bytes out = data_.subspan(pos_, n);
  pos_ += n;
  return out;
}

std::optional<std::string> WireReader::NullableString() {
  std::int16_t len = Int16();
  if (!ok_ || len < 0) {
    if (len < -1) ok_ = false;
    return std::nullopt;
  }
  Bytes b = Raw(static_cast<std::size_t>(len));
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

std::string WireReader::String() {
  auto s = NullableString();
  if (!s) {
    ok_ = false;
    return {};
  }
  return std::move(*s);
}

std::optional<Bytes> WireReader::NullableBytes() {
  std::int32_t len = Int32();
  if (!ok_ || len < 0) {
    if (len < -1) ok_ = false;
    return std::nullopt;
  }
  return Raw(static_cast<std::size_t>(len));
}

std::int32_t WireReader::ArrayCount() {
  std::int32_t n = Int32();
  if (!ok_) return 0;
  if (n < -1 || (n > 0 && static_cast<std::size_t>(n) > remaining())) {
    ok_ = false;
    return 0;
  }
  return n;
}

std::uint64_t WireReader::UVarint() {
  std::uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (!Need(1)) return 0;
    std::uint8_t b = data_[pos_++];
    v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return v;
  }
  ok_ = false;
  return 0;
}

std::int64_t WireReader::ZigzagVarint() {
  std::uint64_t u = UVarint();
  return static_cast<std::int64_t>(u >> 1) ^ -static_cast<std::int64_t>(u & 1);
}

std::optional<std::string> WireReader::CompactNullableString() {
  std::uint64_t len_plus_one = UVarint();
  if (!ok_ || len_plus_one == 0) return std::nullopt;
  if (len_plus_one - 1 > remaining()) {
    ok_ = false;
    return std::nullopt;
  }
  Bytes b = Raw(static_cast<std::size_t>(len_plus_one - 1));
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

void WireReader::SkipTaggedFields() {
  std::uint64_t n = UVarint();
  for (std::uint64_t i = 0; ok_ && i < n; ++i) {
    UVarint();  // tag
    std::uint64_t size = UVarint();
    if (size > remaining()) {
      ok_ = false;
      return;
    }
    Raw(static_cast<std::size_t>(size));
  }
}

void WireWriter::Int16(std::int16_t v) {
  auto u = static_cast<std::uint16_t>(v);
  char b[2] = {static_cast<char>(u >> 8), static_cast<char>(u)};
  out_->append(b, 2);
}

void WireWriter::Int32(std::int32_t v) {
  std::uint8_t b[4];
  StoreBe32(b, v);
  Raw(b, 4);
}

void WireWriter::Int64(std::int64_t v) {
  std::uint8_t b[8];
  StoreBe64(b, v);
  Raw(b, 8);
}

void WireWriter::String(std::string_view s) {
  Int16(static_cast<std::int16_t>(s.size()));
  out_->append(s);
}

void WireWriter::NullableString(const std::optional<std::string>& s) {
  if (!s) {
    Int16(-1);
    return;
  }
  String(*s);
}

void WireWriter::BytesField(Bytes b) {
  Int32(static_cast<std::int32_t>(b.size()));
  Raw(b.data(), b.size());
}

void WireWriter::UVarint(std::uint64_t v) {
  while (v >= 0x80) {
    out_->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out_->push_back(static_cast<char>(v));
}

void WireWriter::PatchInt32(std::size_t pos, std::int32_t v) {
  StoreBe32(reinterpret_cast<std::uint8_t*>(out_->data() + pos), v);
}

}  // namespace ctrjoin::testbroker
