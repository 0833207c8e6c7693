// The tf.Example encoder checked by parsing its output with real protobuf,
// and TFRecord framing with its masked CRC-32C.
#include "sinks/tf_example_encoder.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include "sinks/file_sink.h"
#include "src/core/crc32c.h"
#include "tests/support/temp_dir.h"
#include "tf_example.pb.h"

namespace ctrjoin {
namespace {

Sample Positive() {
  Sample s;
  s.sample_id = 0xfedcba9876543210ull;  // above 2^63: negative as int64
  s.label = 1;
  s.click_ts = EventTime{1'767'225'601'000};
  s.impression = Impression{"imp-1",
                            "u1",
                            "i9",
                            EventTime{1'767'225'600'000},
                            {{"position", 3.0}, {"device", std::string("ios")}}};
  s.impression.lookup_features = {{"user.embedding", std::vector<double>{0.5, -1.25}}};
  return s;
}

TEST(TfExampleEncoderTest, ParsesAsTensorflowExample) {
  std::string bytes;
  AppendSampleTfExample(Positive(), bytes);
  tensorflow::Example example;
  ASSERT_TRUE(example.ParseFromString(bytes));
  const auto& f = example.features().feature();
  EXPECT_EQ(f.at("sample_id").int64_list().value(0), static_cast<int64_t>(0xfedcba9876543210ull));
  EXPECT_EQ(f.at("label").int64_list().value(0), 1);
  EXPECT_EQ(f.at("ts").int64_list().value(0), 1'767'225'600'000);
  EXPECT_EQ(f.at("click_ts").int64_list().value(0), 1'767'225'601'000);
  EXPECT_EQ(f.at("impression_id").bytes_list().value(0), "imp-1");
  EXPECT_EQ(f.at("user_id").bytes_list().value(0), "u1");
  EXPECT_EQ(f.at("item_id").bytes_list().value(0), "i9");
  EXPECT_EQ(f.at("position").float_list().value(0), 3.0f);
  EXPECT_EQ(f.at("device").bytes_list().value(0), "ios");
  ASSERT_EQ(f.at("user.embedding").float_list().value_size(), 2);
  EXPECT_EQ(f.at("user.embedding").float_list().value(1), -1.25f);
  EXPECT_EQ(f.count("correction"), 0u);
  EXPECT_EQ(f.count("partial"), 0u);
}

// int64 features stay int64: an id above 2^24 (or 2^53) keeps every digit.
TEST(TfExampleEncoderTest, Int64FeaturesAreInt64Lists) {
  Sample s = Positive();
  s.impression.features = {{"big", int64_t{16777217}},
                           {"id", int64_t{-1234567890123456789}},
                           {"ids", std::vector<int64_t>{1, -2, int64_t{1} << 62}}};
  std::string bytes;
  AppendSampleTfExample(s, bytes);
  tensorflow::Example example;
  ASSERT_TRUE(example.ParseFromString(bytes));
  const auto& f = example.features().feature();
  EXPECT_EQ(f.at("big").int64_list().value(0), 16777217);
  EXPECT_EQ(f.at("id").int64_list().value(0), -1234567890123456789);
  ASSERT_EQ(f.at("ids").int64_list().value_size(), 3);
  EXPECT_EQ(f.at("ids").int64_list().value(1), -2);
  EXPECT_EQ(f.at("ids").int64_list().value(2), int64_t{1} << 62);
  EXPECT_EQ(f.at("big").kind_case(), tensorflow::Feature::kInt64List);
}

TEST(TfExampleEncoderTest, NegativeHasNoClickTsAndFlagsShow) {
  Sample s = Positive();
  s.label = 0;
  s.correction = true;
  s.impression.features_partial = true;
  std::string bytes;
  AppendSampleTfExample(s, bytes);
  tensorflow::Example example;
  ASSERT_TRUE(example.ParseFromString(bytes));
  const auto& f = example.features().feature();
  EXPECT_EQ(f.count("click_ts"), 0u);
  EXPECT_EQ(f.at("correction").int64_list().value(0), 1);
  EXPECT_EQ(f.at("partial").int64_list().value(0), 1);
}

TEST(TfRecordTest, FramingAndMaskedCrc) {
  // CRC-32C check value.
  const std::string digits = "123456789";
  EXPECT_EQ(Crc32c(reinterpret_cast<const uint8_t*>(digits.data()), digits.size()), 0xE3069283u);
  const uint32_t crc = 0xE3069283u;
  EXPECT_EQ(MaskedCrc32c(digits), ((crc >> 15) | (crc << 17)) + 0xa282ead8u);

  std::string record;
  AppendTfRecord("hello", record);
  ASSERT_EQ(record.size(), 8u + 4 + 5 + 4);
  uint64_t length = 0;
  for (int i = 0; i < 8; ++i)
    length |= static_cast<uint64_t>(static_cast<uint8_t>(record[i])) << (8 * i);
  EXPECT_EQ(length, 5u);
  auto fixed32 = [&](size_t at) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i)
      v |= static_cast<uint32_t>(static_cast<uint8_t>(record[at + i])) << (8 * i);
    return v;
  };
  EXPECT_EQ(fixed32(8), MaskedCrc32c(record.substr(0, 8)));
  EXPECT_EQ(record.substr(12, 5), "hello");
  EXPECT_EQ(fixed32(17), MaskedCrc32c("hello"));
}

// A file of TFRecords as FileSampleSink writes it, read back record by record.
TEST(TfRecordTest, FileSinkWritesReadableTfRecords) {
  test_support::TempDir dir;
  const std::string path = dir.File("samples.tfrecord");
  {
    auto writer = LineWriter::OpenFile(path, false);
    ASSERT_TRUE(writer.ok());
    FileSampleSink sink(std::move(writer).value(), SampleFormat::kTfExample);
    Sample negative = Positive();
    negative.label = 0;
    negative.impression.impression_id = "imp-2";
    std::vector<Sample> samples{Positive(), negative};
    ASSERT_TRUE(sink.Write(samples).ok());
    ASSERT_TRUE(sink.Flush().ok());
  }
  std::ifstream in(path, std::ios::binary);
  std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> ids;
  size_t at = 0;
  while (at < file.size()) {
    ASSERT_GE(file.size() - at, 12u);
    uint64_t length = 0;
    for (int i = 0; i < 8; ++i) {
      length |= static_cast<uint64_t>(static_cast<uint8_t>(file[at + i])) << (8 * i);
    }
    ASSERT_LE(at + 12 + length + 4, file.size());
    const std::string data = file.substr(at + 12, length);
    uint32_t crc = 0;
    for (int i = 0; i < 4; ++i) {
      crc |= static_cast<uint32_t>(static_cast<uint8_t>(file[at + 12 + length + i])) << (8 * i);
    }
    EXPECT_EQ(crc, MaskedCrc32c(data));
    tensorflow::Example example;
    ASSERT_TRUE(example.ParseFromString(data));
    ids.push_back(example.features().feature().at("impression_id").bytes_list().value(0));
    at += 12 + length + 4;
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"imp-1", "imp-2"}));
}

}  // namespace
}  // namespace ctrjoin
