#include "sinks/json_encoder.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace ctrjoin {
namespace {

// Parses out as JSON with simdjson; the parser keeps the document alive.
simdjson::dom::object ParseObject(simdjson::dom::parser& parser, const std::string& out) {
  simdjson::dom::object obj;
  const simdjson::error_code error = parser.parse(out).get_object().get(obj);
  EXPECT_EQ(error, simdjson::SUCCESS) << simdjson::error_message(error) << " in " << out;
  return obj;
}

std::string GetString(const simdjson::dom::object& obj, std::string_view key) {
  std::string_view value;
  EXPECT_EQ(obj[key].get_string().get(value), simdjson::SUCCESS) << key;
  return std::string(value);
}

int64_t GetInt(const simdjson::dom::object& obj, std::string_view key) {
  int64_t value = 0;
  EXPECT_EQ(obj[key].get_int64().get(value), simdjson::SUCCESS) << key;
  return value;
}

double GetDouble(const simdjson::dom::element& element) {
  double value = 0;
  EXPECT_EQ(element.get_double().get(value), simdjson::SUCCESS);
  return value;
}

std::vector<std::string> Keys(const simdjson::dom::object& obj) {
  std::vector<std::string> keys;
  for (simdjson::dom::key_value_pair entry : obj) keys.emplace_back(entry.key);
  return keys;
}

Sample BaseSample() {
  Sample sample;
  sample.sample_id = (uint64_t{1} << 53) + 1;
  sample.impression.impression_id = "imp-1";
  sample.impression.user_id = "u-1";
  sample.impression.item_id = "i-1";
  sample.impression.ts = EventTime{1'700'000'000'123};
  return sample;
}

TEST(JsonEncoderTest, PositiveSampleRoundTrips) {
  Sample sample = BaseSample();
  sample.sample_id = std::numeric_limits<uint64_t>::max();
  sample.label = 1;
  sample.click_ts = EventTime{1'700'000'000'456};
  sample.impression.features = {
      {"ctr", 0.1},
      {"age", 31.0},
      {"country", std::string("DE")},
      {"emb", std::vector<double>{1.5, -2.0, 1e-300}},
  };
  sample.impression.lookup_features = {
      {"user.age", 42.0},
      {"item.price", 19.99},
      {"item.tags_emb", std::vector<double>{}},
  };
  std::string out = "prefix:";
  AppendSampleJson(sample, out);
  ASSERT_TRUE(out.starts_with("prefix:"));
  EXPECT_NE(out.back(), '\n');

  simdjson::dom::parser parser;
  simdjson::dom::object obj = ParseObject(parser, out.substr(7));
  EXPECT_EQ(Keys(obj), (std::vector<std::string>{"sample_id", "label", "impression_id", "user_id",
                                                 "item_id", "ts", "click_ts", "features"}));
  EXPECT_EQ(GetString(obj, "sample_id"), "18446744073709551615");
  EXPECT_EQ(GetInt(obj, "label"), 1);
  EXPECT_EQ(GetString(obj, "impression_id"), "imp-1");
  EXPECT_EQ(GetString(obj, "user_id"), "u-1");
  EXPECT_EQ(GetString(obj, "item_id"), "i-1");
  EXPECT_EQ(GetInt(obj, "ts"), 1'700'000'000'123);
  EXPECT_EQ(GetInt(obj, "click_ts"), 1'700'000'000'456);

  simdjson::dom::object features;
  ASSERT_EQ(obj["features"].get_object().get(features), simdjson::SUCCESS);
  EXPECT_EQ(Keys(features), (std::vector<std::string>{"ctr", "age", "country", "emb", "user.age",
                                                      "item.price", "item.tags_emb"}));
  EXPECT_EQ(GetDouble(features["ctr"].value_unsafe()), 0.1);
  EXPECT_EQ(GetDouble(features["item.price"].value_unsafe()), 19.99);
  int64_t age = 0;
  ASSERT_EQ(features["age"].get_int64().get(age), simdjson::SUCCESS);  // printed as "31"
  EXPECT_EQ(age, 31);
  EXPECT_EQ(GetString(features, "country"), "DE");
  simdjson::dom::array emb;
  ASSERT_EQ(features["emb"].get_array().get(emb), simdjson::SUCCESS);
  std::vector<double> values;
  for (simdjson::dom::element item : emb) {
    double value = 0;
    ASSERT_EQ(item.get<double>().get(value), simdjson::SUCCESS);  // ints convert too
    values.push_back(value);
  }
  EXPECT_EQ(values, (std::vector<double>{1.5, -2.0, 1e-300}));
  simdjson::dom::array empty;
  ASSERT_EQ(features["item.tags_emb"].get_array().get(empty), simdjson::SUCCESS);
  EXPECT_EQ(empty.size(), 0u);
}

TEST(JsonEncoderTest, NegativeSampleHasNoClickTs) {
  Sample sample = BaseSample();
  sample.label = 0;
  std::string out;
  AppendSampleJson(sample, out);

  simdjson::dom::parser parser;
  simdjson::dom::object obj = ParseObject(parser, out);
  EXPECT_EQ(Keys(obj), (std::vector<std::string>{"sample_id", "label", "impression_id", "user_id",
                                                 "item_id", "ts", "features"}));
  EXPECT_EQ(GetString(obj, "sample_id"), "9007199254740993");  // 2^53 + 1
  EXPECT_EQ(GetInt(obj, "label"), 0);
  EXPECT_EQ(GetInt(obj, "ts"), 1'700'000'000'123);
  simdjson::dom::object features;
  ASSERT_EQ(obj["features"].get_object().get(features), simdjson::SUCCESS);
  EXPECT_EQ(features.size(), 0u);
}

TEST(JsonEncoderTest, CorrectionIsMarked) {
  Sample sample = BaseSample();
  sample.label = 1;
  sample.correction = true;
  sample.click_ts = EventTime{1'700'000'999'000};
  std::string out;
  AppendSampleJson(sample, out);

  simdjson::dom::parser parser;
  simdjson::dom::object obj = ParseObject(parser, out);
  bool correction = false;
  ASSERT_EQ(obj["correction"].get_bool().get(correction), simdjson::SUCCESS);
  EXPECT_TRUE(correction);
  EXPECT_EQ(GetInt(obj, "click_ts"), 1'700'000'999'000);
}

TEST(JsonEncoderTest, NumbersRoundTripAndNonFiniteBecomeNull) {
  const std::vector<double> values = {0.1 + 0.2,
                                      1.0 / 3,
                                      5e-324,
                                      1.7976931348623157e308,
                                      -0.0,
                                      123456789012345680000.0,
                                      3.0,
                                      9007199254740991.0,
                                      9007199254740992.0,
                                      -1e300};
  Sample sample = BaseSample();
  for (size_t i = 0; i < values.size(); ++i) {
    sample.impression.features.push_back({"v" + std::to_string(i), values[i]});
  }
  sample.impression.features.push_back({"nan", std::numeric_limits<double>::quiet_NaN()});
  sample.impression.features.push_back({"inf", -std::numeric_limits<double>::infinity()});
  sample.impression.features.push_back(
      {"arr", std::vector<double>{1.0, std::numeric_limits<double>::infinity(), 2.0}});
  std::string out;
  AppendSampleJson(sample, out);
  EXPECT_NE(out.find(R"("v6":3,)"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("v5":1.2345678901234568e+20,)"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("v7":9007199254740991,)"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("v8":9.007199254740992e+15,)"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("nan":null,"inf":null,"arr":[1,null,2]})"), std::string::npos) << out;

  simdjson::dom::parser parser;
  simdjson::dom::object obj = ParseObject(parser, out);
  simdjson::dom::object features = obj["features"].get_object().value_unsafe();
  for (size_t i = 0; i < values.size(); ++i) {
    double value = 0;
    ASSERT_EQ(features["v" + std::to_string(i)].get<double>().get(value), simdjson::SUCCESS);
    EXPECT_EQ(value, values[i]) << i;
    EXPECT_EQ(std::signbit(value), std::signbit(values[i])) << i;
  }
  EXPECT_TRUE(features["nan"].is_null());
  EXPECT_TRUE(features["inf"].is_null());
}

TEST(JsonEncoderTest, Int64FeaturesAreWrittenExactly) {
  Sample sample = BaseSample();
  sample.impression.features = {{"id", int64_t{-9223372036854775807 - 1}},
                                {"ids", std::vector<int64_t>{9007199254740993, -1}}};
  std::string out;
  AppendSampleJson(sample, out);
  EXPECT_NE(out.find(R"("features":{"id":-9223372036854775808,"ids":[9007199254740993,-1]})"),
            std::string::npos)
      << out;
}

TEST(JsonEncoderTest, EscapesStrings) {
  std::string out;
  AppendJsonString("a\"b\\c/d\b\f\n\r\t\x01\x1f\x7f", out);
  EXPECT_EQ(out, R"("a\"b\\c/d\b\f\n\r\t\u0001\u001f)"
                 "\x7f\"");

  out.clear();
  AppendJsonString(std::string_view("nul\0end", 7), out);
  EXPECT_EQ(out, R"("nul\u0000end")");

  // Well-formed UTF-8 (2, 3 and 4 bytes, U+2028) passes through unchanged.
  const std::string unicode = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xe2\x80\xa8";
  out.clear();
  AppendJsonString(unicode, out);
  EXPECT_EQ(out, "\"" + unicode + "\"");

  // Malformed UTF-8 becomes U+FFFD so the output stays valid JSON.
  out.clear();
  AppendJsonString(
      "a\xff"
      "b\xc3"
      "c\xed\xa0\x80"
      "d\xe2\x82",
      out);
  EXPECT_EQ(out, R"("a\ufffdb\ufffdc\ufffd\ufffd\ufffdd\ufffd\ufffd")");
}

TEST(JsonEncoderTest, EscapedFieldsParseBack) {
  Sample sample = BaseSample();
  sample.impression.impression_id = "quote\" backslash\\ newline\n ctl\x02 \xe6\x97\xa5";
  sample.impression.user_id = std::string("nul\0", 4);
  sample.impression.features = {{"na\"me\t", std::string("va\\lue\x1b")}};
  std::string out;
  AppendSampleJson(sample, out);

  simdjson::dom::parser parser;
  simdjson::dom::object obj = ParseObject(parser, out);
  EXPECT_EQ(GetString(obj, "impression_id"), sample.impression.impression_id);
  EXPECT_EQ(GetString(obj, "user_id"), sample.impression.user_id);
  simdjson::dom::object features = obj["features"].get_object().value_unsafe();
  EXPECT_EQ(GetString(features, "na\"me\t"), "va\\lue\x1b");
}

TEST(JsonEncoderTest, DeadLetter) {
  DeadLetter letter;
  letter.pos = SourcePosition{StreamKind::kClick, 7, Offset{123456789012}};
  letter.reason = "ts: missing";
  letter.code = RejectCode::kMissingField;
  letter.payload = "{\"impression_id\":\"x\"\n}";
  std::string out;
  AppendDeadLetterJson(letter, out);

  simdjson::dom::parser parser;
  simdjson::dom::object obj = ParseObject(parser, out);
  EXPECT_EQ(Keys(obj), (std::vector<std::string>{"reason", "reason_code", "stream", "partition",
                                                 "offset", "payload"}));
  EXPECT_EQ(GetString(obj, "reason"), "ts: missing");
  EXPECT_EQ(GetString(obj, "reason_code"), "missing_field");
  EXPECT_EQ(GetString(obj, "stream"), "clicks");
  EXPECT_EQ(GetInt(obj, "partition"), 7);
  EXPECT_EQ(GetInt(obj, "offset"), 123456789012);
  EXPECT_EQ(GetString(obj, "payload"), letter.payload);

  letter.pos.stream = StreamKind::kImpression;
  out.clear();
  AppendDeadLetterJson(letter, out);
  obj = ParseObject(parser, out);
  EXPECT_EQ(GetString(obj, "stream"), "impressions");
}

TEST(JsonEncoderTest, DeadLetterPayloadIsTruncated) {
  constexpr size_t kLimit = 64 * 1024;
  DeadLetter letter;
  letter.reason = "record: too big";
  letter.payload = std::string(kLimit, 'x');
  std::string out;
  AppendDeadLetterJson(letter, out);
  simdjson::dom::parser parser;
  simdjson::dom::object obj = ParseObject(parser, out);
  EXPECT_EQ(GetString(obj, "payload"), letter.payload);  // exactly at the limit: kept whole
  EXPECT_TRUE(obj["payload_truncated"].error() == simdjson::NO_SUCH_FIELD);

  letter.payload = std::string(kLimit + 1000, '"');
  out.clear();
  AppendDeadLetterJson(letter, out);
  obj = ParseObject(parser, out);
  EXPECT_EQ(GetString(obj, "payload"), std::string(kLimit, '"'));
  bool truncated = false;
  ASSERT_EQ(obj["payload_truncated"].get_bool().get(truncated), simdjson::SUCCESS);
  EXPECT_TRUE(truncated);

  // A cut inside a multi-byte character backs off to the character start.
  letter.payload = std::string(kLimit - 1, 'y') + "\xe2\x82\xac" + "tail";
  out.clear();
  AppendDeadLetterJson(letter, out);
  obj = ParseObject(parser, out);
  EXPECT_EQ(GetString(obj, "payload"), std::string(kLimit - 1, 'y'));
  ASSERT_EQ(obj["payload_truncated"].get_bool().get(truncated), simdjson::SUCCESS);
  EXPECT_TRUE(truncated);
}

}  // namespace
}  // namespace ctrjoin
