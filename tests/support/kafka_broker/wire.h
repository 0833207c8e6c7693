#pragma once
// Kafka wire primitives: a bounds-checked big-endian reader, a writer that
// appends to a std::string, and the varints of both kinds (unsigned LEB128 for
// flexible protocol versions, zigzag for records inside a batch).
//
// Used on the broker's event-loop thread (request decoding, response
// encoding) and by the persistence code for its small state files. Neither
// class owns the bytes it reads or writes.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ctrjoin::testbroker {

using Bytes = std::span<const std::uint8_t>;

// Reads fields in order. The first read past the end (or of a malformed
// length) marks the reader failed; later reads return zero values, so a
// decoder reads everything and checks ok() once at the end.
class WireReader {
 public:
  explicit WireReader(Bytes data) : data_(data) {}

  bool ok() const { return ok_; }
  std::size_t remaining() const { return ok_ ? data_.size() - pos_ : 0; }
  std::size_t position() const { return pos_; }
  void Fail() { ok_ = false; }

  std::int8_t Int8();
  std::int16_t Int16();
  std::int32_t Int32();
  std::int64_t Int64();
  bool Bool() { return Int8() != 0; }

  // Classic encodings: int16-length strings, int32-length bytes and arrays.
  std::string String();  // null counts as a failure
  std::optional<std::string> NullableString();
  std::optional<Bytes> NullableBytes();
  Bytes BytesField() { return NullableBytes().value_or(Bytes{}); }
  // Element count of an array; -1 means null. A count that cannot fit in
  // the remaining bytes (every element takes at least one) fails the reader.
  std::int32_t ArrayCount();

  // Flexible (compact) encodings, used only by ApiVersions v3.
  std::uint64_t UVarint();
  std::optional<std::string> CompactNullableString();
  void SkipTaggedFields();

  // Zigzag varints used inside record batches.
  std::int64_t ZigzagVarint();

  Bytes Raw(std::size_t n);

 private:
  bool Need(std::size_t n);

  Bytes data_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

// Appends big-endian fields to a string it does not own.
class WireWriter {
 public:
  explicit WireWriter(std::string* out) : out_(out) {}
  void Rebind(std::string* out) { out_ = out; }

  void Int8(std::int8_t v) { out_->push_back(static_cast<char>(v)); }
  void Int16(std::int16_t v);
  void Int32(std::int32_t v);
  void Int64(std::int64_t v);
  void Bool(bool v) { Int8(v ? 1 : 0); }
  void String(std::string_view s);
  void NullableString(const std::optional<std::string>& s);
  void BytesField(Bytes b);
  void NullBytes() { Int32(-1); }
  void ArrayCount(std::size_t n) { Int32(static_cast<std::int32_t>(n)); }
  void NullArray() { Int32(-1); }

  void UVarint(std::uint64_t v);
  void CompactArrayCount(std::size_t n) { UVarint(n + 1); }
  void NoTaggedFields() { UVarint(0); }
  void ZigzagVarint(std::int64_t v) {
    UVarint((static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63));
  }

  void Raw(const void* data, std::size_t n) { out_->append(static_cast<const char*>(data), n); }
  std::size_t size() const { return out_->size(); }
  // Overwrites an int32 written earlier at |pos| (length prefixes).
  void PatchInt32(std::size_t pos, std::int32_t v);

 private:
  std::string* out_;
};

// Big-endian helpers for fixed positions inside record batches.
std::int16_t LoadBe16(const std::uint8_t* p);
std::int32_t LoadBe32(const std::uint8_t* p);
std::int64_t LoadBe64(const std::uint8_t* p);
void StoreBe32(std::uint8_t* p, std::int32_t v);
void StoreBe64(std::uint8_t* p, std::int64_t v);

// A topic and its per-partition entries: the shape of most requests.
template <typename Partition>
struct TopicEntries {
  std::string name;
  std::vector<Partition> partitions;
};

// Reads an array of {topic name, array of partitions}; read_partition reads
// one partition's fields and returns them. Stops at the first failure; the
// caller checks r.ok().
template <typename Partition, typename ReadPartition>
std::vector<TopicEntries<Partition>> ReadTopicArray(WireReader& r, ReadPartition read_partition) {
  std::vector<TopicEntries<Partition>> topics;
  const std::int32_t topic_count = r.ArrayCount();
  for (std::int32_t t = 0; t < topic_count && r.ok(); ++t) {
    TopicEntries<Partition>& topic = topics.emplace_back();
    topic.name = r.String();
    const std::int32_t partition_count = r.ArrayCount();
    for (std::int32_t p = 0; p < partition_count && r.ok(); ++p) {
      topic.partitions.push_back(read_partition(r));
    }
  }
  return topics;
}

}  // namespace ctrjoin::testbroker
