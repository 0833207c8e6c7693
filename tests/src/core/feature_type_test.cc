// Feature types: the inference rule for text, declared types, and the
// float32 bounds that keep a number from being rounded into a type.
#include "src/core/feature_type.h"

#include <gtest/gtest.h>

#include <cfloat>
#include <limits>

namespace ctrjoin {
namespace {

TEST(FeatureTypeTest, InfersIntegersFloatsListsAndKeepsTheRestText) {
  EXPECT_EQ(InferFeatureText("42"), FeatureValue(int64_t{42}));
  EXPECT_EQ(InferFeatureText("-7"), FeatureValue(int64_t{-7}));
  EXPECT_EQ(InferFeatureText("16777217"), FeatureValue(int64_t{16777217}));
  EXPECT_EQ(InferFeatureText("9223372036854775807"),
            FeatureValue(std::numeric_limits<int64_t>::max()));
  EXPECT_EQ(InferFeatureText("-0.5"), FeatureValue(-0.5));
  EXPECT_EQ(InferFeatureText("1e-3"), FeatureValue(1e-3));
  EXPECT_EQ(InferFeatureText("[]"), FeatureValue(std::vector<double>{}));
  EXPECT_EQ(InferFeatureText("[1, 2]"), FeatureValue(std::vector<int64_t>{1, 2}));
  EXPECT_EQ(InferFeatureText("[1, 2.5]"), FeatureValue(std::vector<double>{1, 2.5}));
  // Text that a number would change stays text.
  for (const char* text :
       {"007", "02139", "9223372036854775808", "1e39", "1e-50", "+1", " 1", "1.", ".5", "0x10",
        "nan", "inf", "", "42abc", "[1, x]", "[1,,2]", "[16777217, 0.5]"}) {
    EXPECT_EQ(InferFeatureText(text), FeatureValue(std::string(text))) << text;
  }
}

TEST(FeatureTypeTest, DeclaredTextMustBeOfItsTypeAndFitIt) {
  EXPECT_EQ(ParseFeatureText("007", FeatureType::kString).value(),
            FeatureValue(std::string("007")));
  EXPECT_EQ(ParseFeatureText("007", FeatureType::kInt64).value(), FeatureValue(int64_t{7}));
  EXPECT_EQ(ParseFeatureText("3", FeatureType::kFloat).value(), FeatureValue(3.0));
  EXPECT_EQ(ParseFeatureText("[1, 2]", FeatureType::kFloatList).value(),
            FeatureValue(std::vector<double>{1, 2}));
  EXPECT_EQ(ParseFeatureText("[-1]", FeatureType::kInt64List).value(),
            FeatureValue(std::vector<int64_t>{-1}));
  const std::pair<const char*, FeatureType> refused[] = {
      {"12.5", FeatureType::kInt64},  {"9223372036854775808", FeatureType::kInt64},
      {"x", FeatureType::kInt64},     {"1e39", FeatureType::kFloat},
      {"1e-50", FeatureType::kFloat}, {"16777217", FeatureType::kFloat},
      {"nan", FeatureType::kFloat},   {"[1, 2.5]", FeatureType::kInt64List},
      {"1", FeatureType::kFloatList}, {"[16777217]", FeatureType::kFloatList},
  };
  for (const auto& [text, type] : refused) {
    EXPECT_FALSE(ParseFeatureText(text, type).ok()) << text << " as " << NameOf(type);
  }
  EXPECT_NE(ParseFeatureText("1e39", FeatureType::kFloat).status().message().find("float32"),
            std::string::npos);
}

TEST(FeatureTypeTest, Float32Bounds) {
  EXPECT_TRUE(FitsFloat32(FLT_MAX));
  EXPECT_TRUE(FitsFloat32(3.4028235e38));  // FLT_MAX as printed: rounds down to it
  EXPECT_FALSE(FitsFloat32(3.5e38));
  EXPECT_FALSE(FitsFloat32(std::numeric_limits<double>::infinity()));
  EXPECT_TRUE(FitsFloat32(1e-40)) << "a subnormal float32 is not zero";
  EXPECT_FALSE(FitsFloat32(1e-50));
  EXPECT_TRUE(FitsFloat32(0.0));
  EXPECT_TRUE(ExactInFloat32(16777216));
  EXPECT_FALSE(ExactInFloat32(16777217));
  EXPECT_TRUE(ExactInFloat32(int64_t{1} << 40));
  EXPECT_TRUE(ExactInFloat32(std::numeric_limits<int64_t>::min()));
  EXPECT_FALSE(ExactInFloat32(std::numeric_limits<int64_t>::max()));
}

TEST(FeatureTypeTest, DeclarationsWithDefaults) {
  Result<FeatureDecls> decls = ParseFeatureDecls(
      {{"age", "int64=0"}, {"zip", "string"}, {"emb", "float_list=[0.5, 1]"}}, "schema.features");
  ASSERT_TRUE(decls.ok()) << decls.status().ToString();
  EXPECT_EQ(decls->at("age"), (FeatureDecl{FeatureType::kInt64, FeatureValue(int64_t{0})}));
  EXPECT_EQ(decls->at("zip"), (FeatureDecl{FeatureType::kString, std::nullopt}));
  EXPECT_EQ(FeatureDeclText(decls->at("emb")), "float_list=[0.5, 1]");
  EXPECT_EQ(FeatureDeclText(decls->at("age")), "int64=0");
  Result<FeatureDecls> bad = ParseFeatureDecls({{"age", "integer"}}, "schema.features");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("schema.features.age"), std::string::npos);
  EXPECT_FALSE(ParseFeatureDecls({{"age", "int64=old"}}, "schema.features").ok());
}

}  // namespace
}  // namespace ctrjoin
