#include "src/pipeline/event_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <variant>
#include <vector>

namespace ctrjoin {
namespace {

constexpr int64_t kNow = 1'700'000'000'000;
constexpr int64_t kDayMs = 86'400'000;

class EventParserTest : public ::testing::Test {
 protected:
  ParseResult ParseImpression(const std::string& json) {
    return parser_.Parse(StreamKind::kImpression, json, kNow);
  }
  ParseResult ParseClick(const std::string& json) {
    return parser_.Parse(StreamKind::kClick, json, kNow);
  }

  // The rejection reason, or a failure if the record was accepted.
  std::string ImpressionReason(const std::string& json) {
    ParseResult result = ParseImpression(json);
    if (!std::holds_alternative<Rejection>(result)) {
      ADD_FAILURE() << "accepted: " << json;
      return "";
    }
    return std::get<Rejection>(result).message;
  }
  std::string ClickReason(const std::string& json) {
    ParseResult result = ParseClick(json);
    if (!std::holds_alternative<Rejection>(result)) {
      ADD_FAILURE() << "accepted: " << json;
      return "";
    }
    return std::get<Rejection>(result).message;
  }

  EventParser parser_{SchemaOptions{}};
};

// An impression with the given body after the three ids.
std::string WithIds(const std::string& rest) {
  return R"({"impression_id":"imp-1","user_id":"u-1","item_id":"i-1",)" + rest + "}";
}

TEST_F(EventParserTest, ParsesImpressionWithAllFeatureKinds) {
  ParseResult result = ParseImpression(
      R"({"impression_id":"imp-1","user_id":"u-1","item_id":"i-1","ts":1700000000123,)"
      R"("extra":{"ignored":[true]},)"
      R"("features":{"age":31,"ctr":0.25,"big":9223372036854775807,"neg":-7,)"
      R"("country":"DE","emb":[1,2.5,-3],"empty":[],"ids":[1,-2]}})");
  ASSERT_TRUE(std::holds_alternative<Impression>(result));
  const Impression& imp = std::get<Impression>(result);
  EXPECT_EQ(imp.impression_id, "imp-1");
  EXPECT_EQ(imp.user_id, "u-1");
  EXPECT_EQ(imp.item_id, "i-1");
  EXPECT_EQ(imp.ts, EventTime{1'700'000'000'123});
  const std::vector<Feature> expected = {
      {"age", int64_t{31}},
      {"ctr", 0.25},
      {"big", int64_t{9223372036854775807}},
      {"neg", int64_t{-7}},
      {"country", std::string("DE")},
      {"emb", std::vector<double>{1.0, 2.5, -3.0}},
      {"empty", std::vector<double>{}},
      {"ids", std::vector<int64_t>{1, -2}},
  };
  EXPECT_EQ(imp.features, expected);
}

TEST_F(EventParserTest, FeaturesAreOptional) {
  ParseResult result = ParseImpression(WithIds(R"("ts":5)"));
  ASSERT_TRUE(std::holds_alternative<Impression>(result));
  EXPECT_TRUE(std::get<Impression>(result).features.empty());
  EXPECT_EQ(std::get<Impression>(result).ts, EventTime{5});
}

TEST_F(EventParserTest, IntegerIdsBecomeDecimalText) {
  ParseResult result = ParseImpression(
      R"({"impression_id":12345678901234,"user_id":-42,"item_id":18446744073709551615,"ts":0})");
  ASSERT_TRUE(std::holds_alternative<Impression>(result));
  const Impression& imp = std::get<Impression>(result);
  EXPECT_EQ(imp.impression_id, "12345678901234");
  EXPECT_EQ(imp.user_id, "-42");
  EXPECT_EQ(imp.item_id, "18446744073709551615");
  EXPECT_EQ(imp.ts, EventTime{0});
}

TEST_F(EventParserTest, ParsesClick) {
  ParseResult result = ParseClick(R"({"impression_id":"imp-9","ts":1700000000500,"x":null})");
  ASSERT_TRUE(std::holds_alternative<Click>(result));
  EXPECT_EQ(std::get<Click>(result).impression_id, "imp-9");
  EXPECT_EQ(std::get<Click>(result).ts, EventTime{1'700'000'000'500});

  result = ParseClick(R"({"impression_id":77,"ts":1})");
  ASSERT_TRUE(std::holds_alternative<Click>(result));
  EXPECT_EQ(std::get<Click>(result).impression_id, "77");
}

TEST_F(EventParserTest, RejectsInvalidJson) {
  EXPECT_TRUE(ImpressionReason(R"({"impression_id":)").starts_with("invalid JSON: "));
  EXPECT_TRUE(ImpressionReason("").starts_with("invalid JSON: "));
  EXPECT_TRUE(ImpressionReason("{\"a\":\"\xff\"}").starts_with("invalid JSON: "));
  EXPECT_TRUE(ClickReason("not json").starts_with("invalid JSON: "));
}

TEST_F(EventParserTest, RejectsNonObjects) {
  EXPECT_EQ(ImpressionReason("[1,2]"), "invalid JSON: expected an object, got an array");
  EXPECT_EQ(ClickReason("42"), "invalid JSON: expected an object, got an integer");
  EXPECT_EQ(ClickReason(R"("text")"), "invalid JSON: expected an object, got a string");
}

TEST_F(EventParserTest, RejectsMissingImpressionFields) {
  EXPECT_EQ(ImpressionReason(R"({"user_id":"u","item_id":"i","ts":1})"), "impression_id: missing");
  EXPECT_EQ(ImpressionReason(R"({"impression_id":"m","item_id":"i","ts":1})"), "user_id: missing");
  EXPECT_EQ(ImpressionReason(R"({"impression_id":"m","user_id":"u","ts":1})"), "item_id: missing");
  EXPECT_EQ(ImpressionReason(R"({"impression_id":"m","user_id":"u","item_id":"i"})"),
            "ts: missing");
}

TEST_F(EventParserTest, RejectsMissingClickFields) {
  EXPECT_EQ(ClickReason(R"({"ts":1})"), "impression_id: missing");
  EXPECT_EQ(ClickReason(R"({"impression_id":"m"})"), "ts: missing");
}

TEST_F(EventParserTest, RejectsMistypedIds) {
  EXPECT_EQ(ImpressionReason(R"({"impression_id":1.5,"user_id":"u","item_id":"i","ts":1})"),
            "impression_id: expected a string or an integer, got a floating-point number");
  EXPECT_EQ(ImpressionReason(R"({"impression_id":"m","user_id":null,"item_id":"i","ts":1})"),
            "user_id: expected a string or an integer, got null");
  EXPECT_EQ(ImpressionReason(R"({"impression_id":"m","user_id":"u","item_id":[1],"ts":1})"),
            "item_id: expected a string or an integer, got an array");
  EXPECT_EQ(ClickReason(R"({"impression_id":true,"ts":1})"),
            "impression_id: expected a string or an integer, got a boolean");
  EXPECT_EQ(ClickReason(R"({"impression_id":{},"ts":1})"),
            "impression_id: expected a string or an integer, got an object");
}

TEST_F(EventParserTest, RejectsMistypedTs) {
  EXPECT_EQ(ImpressionReason(WithIds(R"("ts":"1700000000000")")),
            "ts: expected an integer (epoch ms), got a string");
  EXPECT_EQ(ClickReason(R"({"impression_id":"m","ts":null})"),
            "ts: expected an integer (epoch ms), got null");
  EXPECT_EQ(ImpressionReason(WithIds(R"("ts":18446744073709551615)")),
            "ts: 18446744073709551615 is out of range (epoch ms must fit a signed 64-bit "
            "integer)");
}

TEST_F(EventParserTest, RejectsEmptyIds) {
  EXPECT_EQ(ImpressionReason(R"({"impression_id":"","user_id":"u","item_id":"i","ts":1})"),
            "impression_id: must not be empty");
  EXPECT_EQ(ImpressionReason(R"({"impression_id":"m","user_id":"","item_id":"i","ts":1})"),
            "user_id: must not be empty");
  EXPECT_EQ(ClickReason(R"({"impression_id":"","ts":1})"), "impression_id: must not be empty");
}

TEST_F(EventParserTest, RejectsTooLongIds) {
  const std::string at_limit(256, 'a');
  const std::string too_long(257, 'a');
  EXPECT_TRUE(std::holds_alternative<Impression>(ParseImpression(
      R"({"impression_id":")" + at_limit + R"(","user_id":"u","item_id":"i","ts":1})")));
  EXPECT_EQ(ImpressionReason(R"({"impression_id":")" + too_long +
                             R"(","user_id":"u","item_id":"i","ts":1})"),
            "impression_id: longer than 256 bytes");
  EXPECT_EQ(ImpressionReason(R"({"impression_id":"m","user_id":"u","item_id":")" + too_long +
                             R"(","ts":1})"),
            "item_id: longer than 256 bytes");
  EXPECT_EQ(ClickReason(R"({"impression_id":")" + too_long + R"(","ts":1})"),
            "impression_id: longer than 256 bytes");
}

TEST_F(EventParserTest, RejectsNegativeTs) {
  EXPECT_EQ(ImpressionReason(WithIds(R"("ts":-1)")), "ts: must not be negative, got -1");
  EXPECT_EQ(ClickReason(R"({"impression_id":"m","ts":-5})"), "ts: must not be negative, got -5");
}

TEST_F(EventParserTest, RejectsFractionalTs) {
  EXPECT_EQ(ImpressionReason(WithIds(R"("ts":1700000000000.5)")),
            "ts: expected an integer (epoch ms), got a floating-point number");
  EXPECT_EQ(ClickReason(R"({"impression_id":"m","ts":1.7e12})"),
            "ts: expected an integer (epoch ms), got a floating-point number");
}

TEST_F(EventParserTest, RejectsFarFutureTs) {
  const std::string at_limit = "\"ts\":" + std::to_string(kNow + kDayMs);
  EXPECT_TRUE(std::holds_alternative<Impression>(ParseImpression(WithIds(at_limit))));
  EXPECT_EQ(ImpressionReason(WithIds("\"ts\":" + std::to_string(kNow + 2 * kDayMs))),
            "ts: 2 days ahead of the wall clock (max_future_ms=86400000)");
  EXPECT_EQ(ClickReason(R"({"impression_id":"m","ts":)" + std::to_string(kNow + kDayMs + 1) + "}"),
            "ts: 24 hours ahead of the wall clock (max_future_ms=86400000)");
}

TEST_F(EventParserTest, RejectsFeaturesThatAreNotAnObject) {
  EXPECT_EQ(ImpressionReason(WithIds(R"("ts":1,"features":[1,2])")),
            "features: expected an object, got an array");
  EXPECT_EQ(ImpressionReason(WithIds(R"("ts":1,"features":null)")),
            "features: expected an object, got null");
}

TEST_F(EventParserTest, RejectsBadFeatureValues) {
  EXPECT_EQ(ImpressionReason(WithIds(R"("ts":1,"features":{"ok":1,"nested":{"a":1}})")),
            "features.nested: expected a number, a string or an array of numbers, got an object");
  EXPECT_EQ(ImpressionReason(WithIds(R"("ts":1,"features":{"tags":["a","b"]})")),
            "features.tags: expected a number, a string or an array of numbers, got an array "
            "containing a string");
  EXPECT_EQ(ImpressionReason(WithIds(R"("ts":1,"features":{"m":[[1]]})")),
            "features.m: expected a number, a string or an array of numbers, got an array "
            "containing an array");
  EXPECT_EQ(ImpressionReason(WithIds(R"("ts":1,"features":{"flag":true})")),
            "features.flag: expected a number, a string or an array of numbers, got a boolean");
  EXPECT_EQ(ImpressionReason(WithIds(R"("ts":1,"features":{"n":null})")),
            "features.n: expected a number, a string or an array of numbers, got null");
}

TEST_F(EventParserTest, RejectsTooManyFeatures) {
  SchemaOptions options;
  options.max_features = 3;
  EventParser parser(options);
  EXPECT_TRUE(std::holds_alternative<Impression>(parser.Parse(
      StreamKind::kImpression, WithIds(R"("ts":1,"features":{"a":1,"b":2,"c":3})"), kNow)));
  ParseResult result = parser.Parse(
      StreamKind::kImpression, WithIds(R"("ts":1,"features":{"a":1,"b":2,"c":3,"d":4})"), kNow);
  ASSERT_TRUE(std::holds_alternative<Rejection>(result));
  EXPECT_EQ(std::get<Rejection>(result).message, "features: more than max_features=3 entries");
}

TEST_F(EventParserTest, RejectsOversizedRecord) {
  SchemaOptions options;
  options.max_record_bytes = 100;
  EventParser parser(options);
  const std::string fits = WithIds(R"("ts":1,"features":{"pad":")" + std::string(14, 'x') + "\"}");
  ASSERT_EQ(fits.size(), 100u);
  EXPECT_TRUE(
      std::holds_alternative<Impression>(parser.Parse(StreamKind::kImpression, fits, kNow)));
  const std::string big = WithIds(R"("ts":1,"features":{"pad":")" + std::string(100, 'x') + "\"}");
  ParseResult result = parser.Parse(StreamKind::kImpression, big, kNow);
  ASSERT_TRUE(std::holds_alternative<Rejection>(result));
  EXPECT_EQ(std::get<Rejection>(result).message,
            "record: " + std::to_string(big.size()) + " bytes, more than max_record_bytes=100");
}

TEST(EventParserSchemaTest, UsesConfiguredFieldNames) {
  SchemaOptions options;
  options.impression_id_field = "rid";
  options.user_id_field = "uid";
  options.item_id_field = "doc";
  options.ts_field = "event_time";
  options.features_field = "f";
  options.click_impression_id_field = "request";
  options.click_ts_field = "clicked_at";
  EventParser parser(options);

  ParseResult imp = parser.Parse(
      StreamKind::kImpression,
      R"({"rid":"r1","uid":"u1","doc":"d1","event_time":10,"f":{"x":2},"ts":"ignored"})", kNow);
  ASSERT_TRUE(std::holds_alternative<Impression>(imp));
  EXPECT_EQ(std::get<Impression>(imp).impression_id, "r1");
  EXPECT_EQ(std::get<Impression>(imp).user_id, "u1");
  EXPECT_EQ(std::get<Impression>(imp).item_id, "d1");
  EXPECT_EQ(std::get<Impression>(imp).ts, EventTime{10});
  EXPECT_EQ(std::get<Impression>(imp).features, (std::vector<Feature>{{"x", int64_t{2}}}));

  ParseResult click = parser.Parse(StreamKind::kClick, R"({"request":"r1","clicked_at":20})", kNow);
  ASSERT_TRUE(std::holds_alternative<Click>(click));
  EXPECT_EQ(std::get<Click>(click).impression_id, "r1");
  EXPECT_EQ(std::get<Click>(click).ts, EventTime{20});

  // Reasons name the configured fields.
  ParseResult missing =
      parser.Parse(StreamKind::kImpression, R"({"impression_id":"a","user_id":"b"})", kNow);
  ASSERT_TRUE(std::holds_alternative<Rejection>(missing));
  EXPECT_EQ(std::get<Rejection>(missing).message, "rid: missing");
  ParseResult bad_feature =
      parser.Parse(StreamKind::kImpression,
                   R"({"rid":"r","uid":"u","doc":"d","event_time":1,"f":{"b":false}})", kNow);
  ASSERT_TRUE(std::holds_alternative<Rejection>(bad_feature));
  EXPECT_EQ(std::get<Rejection>(bad_feature).message,
            "f.b: expected a number, a string or an array of numbers, got a boolean");
  ParseResult bad_click =
      parser.Parse(StreamKind::kClick, R"({"request":"r1","clicked_at":-3})", kNow);
  ASSERT_TRUE(std::holds_alternative<Rejection>(bad_click));
  EXPECT_EQ(std::get<Rejection>(bad_click).message, "clicked_at: must not be negative, got -3");
}

TEST_F(EventParserTest, ManyRecordsInARowKeepNoStaleData) {
  std::vector<Impression> parsed;
  for (int i = 0; i < 200; ++i) {
    // Sizes go up and down so the parser's buffers are regrown and reused.
    const std::string pad(static_cast<size_t>((i * 37) % 500), static_cast<char>('a' + i % 26));
    const std::string json = R"({"impression_id":"imp-)" + std::to_string(i) +
                             R"(","user_id":"user-)" + std::to_string(i) + R"(","item_id":)" +
                             std::to_string(1000 + i) + R"(,"ts":)" + std::to_string(i) +
                             R"(,"features":{"pad":")" + pad + R"(","v":[)" + std::to_string(i) +
                             "]}}";
    ParseResult result = ParseImpression(json);
    ASSERT_TRUE(std::holds_alternative<Impression>(result)) << json;
    parsed.push_back(std::get<Impression>(std::move(result)));
    if (i % 10 == 0) {
      // Interleave failures and another stream.
      EXPECT_TRUE(ClickReason("{bad").starts_with("invalid JSON: "));
      EXPECT_TRUE(std::holds_alternative<Click>(ParseClick(R"({"impression_id":"c","ts":1})")));
    }
  }
  for (int i = 0; i < 200; ++i) {
    const Impression& imp = parsed[static_cast<size_t>(i)];
    EXPECT_EQ(imp.impression_id, "imp-" + std::to_string(i));
    EXPECT_EQ(imp.user_id, "user-" + std::to_string(i));
    EXPECT_EQ(imp.item_id, std::to_string(1000 + i));
    EXPECT_EQ(imp.ts, EventTime{i});
    ASSERT_EQ(imp.features.size(), 2u);
    EXPECT_EQ(imp.features[0].value, FeatureValue(std::string(static_cast<size_t>((i * 37) % 500),
                                                              static_cast<char>('a' + i % 26))));
    EXPECT_EQ(imp.features[1].value, FeatureValue(std::vector<int64_t>{i}));
  }
}

TEST(SchemaOptionsTest, DefaultsAreValid) { EXPECT_TRUE(SchemaOptions{}.Validate().ok()); }

TEST(SchemaOptionsTest, RejectsEmptyFieldNames) {
  SchemaOptions options;
  options.ts_field = "";
  Status status = options.Validate();
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "schema.ts_field: must not be empty");

  options = SchemaOptions{};
  options.click_impression_id_field = "";
  EXPECT_EQ(options.Validate().message(), "schema.click_impression_id_field: must not be empty");
}

TEST(SchemaOptionsTest, RejectsBadLimits) {
  SchemaOptions options;
  options.max_id_bytes = 0;
  EXPECT_EQ(options.Validate().message(), "schema.max_id_bytes: must be in [1, 65536], got 0");
  options.max_id_bytes = 65537;
  EXPECT_EQ(options.Validate().message(), "schema.max_id_bytes: must be in [1, 65536], got 65537");
  options.max_id_bytes = 65536;
  EXPECT_TRUE(options.Validate().ok());

  options = SchemaOptions{};
  options.max_features = 0;
  EXPECT_EQ(options.Validate().message(), "schema.max_features: must be at least 1, got 0");

  options = SchemaOptions{};
  options.max_future_ms = -1;
  EXPECT_EQ(options.Validate().message(), "schema.max_future_ms: must not be negative, got -1");
  options.max_future_ms = 0;
  EXPECT_TRUE(options.Validate().ok());

  options = SchemaOptions{};
  options.max_record_bytes = 63;
  EXPECT_EQ(options.Validate().message(), "schema.max_record_bytes: must be at least 64, got 63");
  options.max_record_bytes = 64;
  EXPECT_TRUE(options.Validate().ok());
}

// A feature named like a sample field would be a second entry of that name
// in tf.Example (the trainer reads the feature's value as the label); one
// named like a lookup's column would appear twice; so would a name given
// twice in one object. Each is dead-lettered with a reason naming it.
TEST_F(EventParserTest, AFeatureThatWouldShadowAnotherNameIsRejected) {
  for (std::string_view field : kSampleFieldNames) {
    const std::string reason =
        ImpressionReason(WithIds(R"("ts":1,"features":{")" + std::string(field) + R"(":7})"));
    EXPECT_EQ(reason, "features." + std::string(field) + ": shadows the sample field '" +
                          std::string(field) + "'");
  }
  EXPECT_EQ(ImpressionReason(WithIds(R"("ts":1,"features":{"a":1,"b":2,"a":3})")),
            "features.a: appears twice");
  // Past the pairwise check's size too.
  std::string many = R"("ts":1,"features":{)";
  for (int i = 0; i < 40; ++i) many += "\"f" + std::to_string(i) + "\":" + std::to_string(i) + ",";
  EXPECT_EQ(ImpressionReason(WithIds(many + R"("f7":1})")), "features.f7: appears twice");

  SchemaOptions with_lookups;
  with_lookups.lookup_names = {"user", "item"};
  EventParser parser(with_lookups);
  auto reason = [&](const std::string& features) -> std::string {
    ParseResult r =
        parser.Parse(StreamKind::kImpression, WithIds(R"("ts":1,"features":)" + features), kNow);
    return std::holds_alternative<Rejection>(r) ? std::get<Rejection>(r).message : "accepted";
  };
  EXPECT_EQ(reason(R"({"user.age":31})"),
            "features.user.age: shadows the columns of lookup 'user' (user.*)");
  EXPECT_EQ(reason(R"({"item.x.y":1})"),
            "features.item.x.y: shadows the columns of lookup 'item' (item.*)");
  // Neighbours that shadow nothing.
  EXPECT_EQ(reason(R"({"user":1,"user_age":2,"users.age":3,"xuser.age":4,"LABEL":5,"ts2":6})"),
            "accepted");
}

// Every rejection carries a code for the dead-letter metric, beside its words.
TEST_F(EventParserTest, RejectionsCarryTheirReasonCode) {
  auto code = [&](StreamKind stream, const std::string& json) {
    ParseResult r = parser_.Parse(stream, json, kNow);
    EXPECT_TRUE(std::holds_alternative<Rejection>(r)) << json;
    return std::holds_alternative<Rejection>(r) ? NameOf(std::get<Rejection>(r).code) : "";
  };
  const std::string ids = R"("impression_id":"i","user_id":"u","item_id":"v")";
  const auto imp = StreamKind::kImpression;
  EXPECT_EQ(code(imp, "not json"), "invalid_json");
  EXPECT_EQ(code(imp, "[1]"), "invalid_json");
  EXPECT_EQ(code(imp, std::string(2 << 20, ' ')), "too_large");
  EXPECT_EQ(code(imp, R"({"user_id":"u","item_id":"v","ts":1})"), "missing_field");
  EXPECT_EQ(code(imp, "{" + ids + R"(,"ts":"1"})"), "wrong_type");
  EXPECT_EQ(code(imp, "{" + ids + R"(,"ts":1,"features":{"f":true}})"), "wrong_type");
  EXPECT_EQ(code(imp, "{" + ids + R"(,"ts":-1})"), "invalid_value");
  EXPECT_EQ(code(imp, R"({"impression_id":"","user_id":"u","item_id":"v","ts":1})"),
            "invalid_value");
  EXPECT_EQ(code(imp, "{" + ids + R"(,"ts":1,"features":{"label":1}})"), "shadowed_name");
  EXPECT_EQ(code(imp, "{" + ids + R"(,"ts":1,"features":{"a":1,"a":2}})"), "shadowed_name");
  EXPECT_EQ(code(imp, "{" + ids + R"(,"ts":)" + std::to_string(kNow + 10 * 86'400'000LL) + "}"),
            "future_ts");
  EXPECT_EQ(code(StreamKind::kClick, R"({"impression_id":"i"})"), "missing_field");
  EXPECT_EQ(code(imp, "{" + ids + R"(,"ts":1,"features":{"f":1e39}})"), "invalid_value");
  SchemaOptions strict;
  strict.features = {{"age", "int64"}};
  strict.strict_features = true;
  EventParser strict_parser(strict);
  ParseResult r = strict_parser.Parse(imp, "{" + ids + R"(,"ts":1,"features":{"x":1}})", kNow);
  ASSERT_TRUE(std::holds_alternative<Rejection>(r));
  EXPECT_EQ(NameOf(std::get<Rejection>(r).code), "undeclared_feature");
}

// Undeclared numbers keep the type JSON gives them; one no type can hold
// exactly is dead-lettered, never rounded (1e39 would be inf in float32,
// 1e-50 zero, 16777217 in a float list 16777216).
TEST_F(EventParserTest, NumbersAreNeverRoundedIntoATypeThatCannotHoldThem) {
  ParseResult ok = ParseImpression(WithIds(
      R"("ts":1,"features":{"big":16777217,"tiny":1e-40,"max":3.4028234e38,"i":[16777217]})"));
  ASSERT_TRUE(std::holds_alternative<Impression>(ok));
  EXPECT_EQ(std::get<Impression>(ok).features,
            (std::vector<Feature>{{"big", int64_t{16777217}},
                                  {"tiny", 1e-40},
                                  {"max", 3.4028234e38},
                                  {"i", std::vector<int64_t>{16777217}}}));
  EXPECT_EQ(ImpressionReason(WithIds(R"("ts":1,"features":{"f":1e39})")),
            "features.f (float, inferred): 1e+39 is outside float32's range");
  EXPECT_EQ(ImpressionReason(WithIds(R"("ts":1,"features":{"f":1e-50})")),
            "features.f (float, inferred): 1e-50 is outside float32's range");
  EXPECT_EQ(ImpressionReason(WithIds(R"("ts":1,"features":{"f":18446744073709551615})")),
            "features.f (int64, inferred): 18446744073709551615 does not fit int64");
  EXPECT_EQ(ImpressionReason(WithIds(R"("ts":1,"features":{"v":[0.5,16777217]})")),
            "features.v (float_list, inferred): element 1: 16777217 is an integer float32 "
            "cannot hold exactly");
}

TEST(EventParserDeclaredTest, DeclaredFeaturesKeepTheirTypeAndTakeTheirDefaults) {
  SchemaOptions options;
  options.features = {{"zip", "string"},
                      {"age", "int64=0"},
                      {"score", "float"},
                      {"ids", "int64_list=[]"},
                      {"emb", "float_list"}};
  ASSERT_TRUE(options.Validate().ok());
  EventParser parser(options);
  auto parse = [&](const std::string& features) {
    return parser.Parse(StreamKind::kImpression, WithIds(R"("ts":1,"features":)" + features), kNow);
  };
  ParseResult ok = parse(R"({"zip":"02139","score":16777216,"age":3.0,"emb":[1,0.5],"x":7})");
  ASSERT_TRUE(std::holds_alternative<Impression>(ok));
  EXPECT_EQ(std::get<Impression>(ok).features,
            (std::vector<Feature>{{"zip", std::string("02139")},
                                  {"score", 16777216.0},
                                  {"age", int64_t{3}},
                                  {"emb", std::vector<double>{1, 0.5}},
                                  {"x", int64_t{7}},
                                  {"ids", std::vector<int64_t>{}}}))
      << "a declared float holds an integer as a float; absent declared features take their "
         "defaults, after the record's own; one without a default stays absent";
  ParseResult absent = parse("{}");
  ASSERT_TRUE(std::holds_alternative<Impression>(absent));
  EXPECT_EQ(std::get<Impression>(absent).features,
            (std::vector<Feature>{{"age", int64_t{0}}, {"ids", std::vector<int64_t>{}}}));

  const std::pair<const char*, const char*> refused[] = {
      {R"({"zip":2139})", "features.zip (string, declared): expected a string, got an integer"},
      {R"({"age":"31"})", "features.age (int64, declared): expected an integer, got a string"},
      {R"({"age":3.5})", "features.age (int64, declared): 3.5 is not an int64"},
      {R"({"score":16777217})",
       "features.score (float, declared): 16777217 is an integer float32 cannot hold exactly"},
      {R"({"ids":[1,2.5]})", "features.ids (int64_list, declared): element 1: 2.5 is not an int64"},
      {R"({"emb":1})", "features.emb (float_list, declared): expected an array, got an integer"},
  };
  for (const auto& [features, reason] : refused) {
    ParseResult r = parse(features);
    ASSERT_TRUE(std::holds_alternative<Rejection>(r)) << features;
    EXPECT_EQ(std::get<Rejection>(r).message, reason);
  }
}

TEST(EventParserDeclaredTest, DeclarationsThatCannotBeKeptAreRefusedAtConfigTime) {
  auto error = [](std::map<std::string, std::string> features) {
    SchemaOptions options;
    options.features = std::move(features);
    options.lookup_names = {"user"};
    return options.Validate().ToString();
  };
  EXPECT_NE(error({{"label", "int64"}}).find("schema.features.label: shadows the sample field"),
            std::string::npos);
  EXPECT_NE(error({{"user.age", "int64"}}).find("shadows the columns of lookup 'user'"),
            std::string::npos);
  EXPECT_NE(error({{"age", "integer"}}).find("schema.features.age"), std::string::npos);
  EXPECT_NE(error({{"age", "int64=x"}}).find("default"), std::string::npos);
}

}  // namespace
}  // namespace ctrjoin
