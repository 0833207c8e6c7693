// The published schema: every sample field with its type, presence and
// role, the declared features and lookup columns, an id that follows the
// content, and the TensorFlow feature spec generated from it. The
// completion marker counts the records of the parts.
#include "sinks/sample_schema.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <fstream>

#include "sinks/completion_marker.h"
#include "sinks/file_sink.h"
#include "tests/support/temp_dir.h"

namespace ctrjoin {
namespace {

OutputSchema Declared() {
  OutputSchema schema;
  schema.format = SampleFormat::kTfExample;
  schema.compression = FileCompression::kGzip;
  schema.features =
      ParseFeatureDecls({{"position", "int64=0"}, {"ctx", "float_list"}}, "schema.features")
          .value();
  schema.lookups.emplace_back(
      "user", ParseFeatureDecls({{"age", "int64=-1"}, {"zip", "string"}}, "c").value());
  return schema;
}

TEST(OutputSchemaTest, ListsEveryFieldWithTypePresenceAndRole) {
  const std::string json = Declared().Json();
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(json).get(doc), simdjson::SUCCESS) << json;
  EXPECT_EQ(std::string_view(doc["files"].get_string().value()), "part-*.tfrecord.gz");
  std::map<std::string, std::string> types, roles, present;
  std::map<std::string, bool> for_training;
  simdjson::dom::array fields = doc["fields"].get_array().value();
  for (simdjson::dom::element f : fields) {
    const std::string name(f["name"].get_string().value());
    types[name] = f["type"].get_string().value();
    roles[name] = f["role"].get_string().value();
    present[name] = f["present"].get_string().value();
    for_training[name] = f["for_training"].get_bool().value();
  }
  EXPECT_EQ(types.at("sample_id"), "int64");
  EXPECT_EQ(types.at("user.age"), "int64");
  EXPECT_EQ(types.at("ctx"), "float_list");
  EXPECT_EQ(roles.at("label"), "label");
  EXPECT_EQ(present.at("click_ts"), "positives");
  EXPECT_EQ(present.at("position"), "always") << "it has a default";
  EXPECT_EQ(present.at("user.zip"), "optional");
  for (const char* metadata :
       {"sample_id", "impression_id", "ts", "click_ts", "correction", "partial"}) {
    EXPECT_FALSE(for_training.at(metadata)) << metadata;
  }
  EXPECT_TRUE(for_training.at("user_id"));
  EXPECT_TRUE(for_training.at("position"));
  EXPECT_EQ(types.size(), 13u);
}

TEST(OutputSchemaTest, TheIdFollowsTheContent) {
  OutputSchema a = Declared();
  OutputSchema b = Declared();
  EXPECT_EQ(a.Id(), b.Id());
  EXPECT_EQ(a.Id().size(), 16u);
  b.features["position"].type = FeatureType::kFloat;
  EXPECT_NE(a.Id(), b.Id());
  b = Declared();
  b.strict_features = true;
  EXPECT_NE(a.Id(), b.Id());
}

TEST(OutputSchemaTest, TfFeatureSpecFollowsPresenceAndType) {
  const std::string spec = Declared().TfFeatureSpec();
  for (
      const char* line : {
          R"("label": tf.io.FixedLenFeature([], tf.int64),)",
          R"("user_id": tf.io.FixedLenFeature([], tf.string),)",
          R"("click_ts": tf.io.VarLenFeature(tf.int64),)",
          R"("correction": tf.io.FixedLenFeature([], tf.int64, default_value=0),)",
          R"("position": tf.io.FixedLenFeature([], tf.int64, default_value=0),)",
          R"("user.age": tf.io.FixedLenFeature([], tf.int64, default_value=-1),)",
          R"("user.zip": tf.io.VarLenFeature(tf.string),)",
          R"("ctx": tf.io.VarLenFeature(tf.float32),)",
          R"(NOT_FOR_TRAINING = ["sample_id", "impression_id", "ts", "click_ts", "correction", "partial"])",
      }) {
    EXPECT_NE(spec.find(line), std::string::npos) << line << "\nin\n" << spec;
  }
  EXPECT_NE(spec.find(Declared().Id()), std::string::npos);
}

TEST(OutputSchemaTest, PublishWritesBothFiles) {
  test_support::TempDir dir;
  ASSERT_TRUE(PublishSchema(Declared(), dir.path()).ok());
  std::ifstream json(dir.File("_schema.json"));
  std::string text((std::istreambuf_iterator<char>(json)), {});
  EXPECT_EQ(text, Declared().Json());
  EXPECT_TRUE(std::filesystem::exists(dir.File("_tf_feature_spec.py")));
}

TEST(CompletionMarkerTest, CountsTheRecordsOfEveryPart) {
  test_support::TempDir dir;
  for (FileCompression compression : {FileCompression::kNone, FileCompression::kGzip}) {
    auto sink = RolledFileSampleSink::Open(
        {dir.string(), SampleFormat::kTfExample, compression, /*roll_bytes=*/200, 0});
    ASSERT_TRUE(sink.ok());
    std::vector<Sample> samples(7);
    ASSERT_TRUE((*sink)->Write(samples).ok());
    ASSERT_TRUE((*sink)->Write(samples).ok());
    ASSERT_TRUE((*sink)->Flush().ok());
  }
  ASSERT_TRUE(WriteCompletionMarker(dir.path(), SampleFormat::kTfExample, "a test").ok());
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.load(dir.File("_SUCCESS")).get(doc), simdjson::SUCCESS);
  EXPECT_EQ(doc["samples"].get_uint64().value(), 28u);
  EXPECT_EQ(doc["dead_letters"].get_uint64().value(), 0u);
  EXPECT_EQ(std::string_view(doc["finished"].get_string().value()), "a test");
  simdjson::dom::array parts = doc["parts"].get_array().value();
  EXPECT_GE(parts.size(), 4u);
}

}  // namespace
}  // namespace ctrjoin
