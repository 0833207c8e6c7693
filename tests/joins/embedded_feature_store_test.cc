#include "joins/embedded_feature_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/support/temp_dir.h"

namespace ctrjoin {
namespace {

class EmbeddedFeatureStoreTest : public ::testing::Test {
 protected:
  test_support::TempDir dir_;
};

TEST_F(EmbeddedFeatureStoreTest, LoadsAndReadsVersionsNewestFirstBelowTheBound) {
  const auto file = dir_.File("features.jsonl");
  std::ofstream(file)
      << R"({"table":"user_features","row":"u1","ts":100,"columns":{"age":30,"tags":[1,2.5]}})"
         "\n"
      << R"({"table":"user_features","row":"u1","ts":200,"columns":{"age":31}})"
         "\n"
      << R"({"table":"user_features","row":"u1","ts":300,"columns":{"age":32,"country":"de"}})"
         "\n"
      << R"({"table":"user_features","row":"u10","ts":100,"columns":{"age":99}})"
         "\n";
  EmbeddedFeatureStoreOptions o;
  o.path = dir_.File("db");
  o.load = file;
  auto store = EmbeddedFeatureStore::Open(o);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  std::vector<FeatureFetch> fetches{{"u1", 250}, {"u1", 1000}, {"nobody", 1000}, {"u10", 1000}};
  auto rows = (*store)->GetMultiple("user_features", "f", fetches, 2);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 4u);
  // Below 250: age 31 (200) and 30 (100), tags at 100.
  std::vector<std::tuple<std::string, std::string, int64_t>> got;
  for (const FeatureCell& c : (*rows)[0].cells) got.emplace_back(c.column, c.value, c.version);
  EXPECT_EQ(got, (std::vector<std::tuple<std::string, std::string, int64_t>>{
                     {"age", "31", 200}, {"age", "30", 100}, {"tags", "[1,2.5]", 100}}));
  EXPECT_EQ((*rows)[1].cells.size(), 4u);  // age 32, 31; country; tags
  EXPECT_TRUE((*rows)[2].cells.empty());
  ASSERT_EQ((*rows)[3].cells.size(), 1u) << "u10 must not leak into u1's prefix or back";
  EXPECT_EQ((*rows)[3].cells[0].value, "99");
}

TEST_F(EmbeddedFeatureStoreTest, BadLineIsNamed) {
  const auto file = dir_.File("features.jsonl");
  std::ofstream(file) << R"({"table":"t","row":"r","ts":1,"columns":{"a":1}})"
                         "\n"
                      << R"({"table":"t","row":"r","ts":1,"columns":{"a":{"x":1}}})"
                         "\n";
  EmbeddedFeatureStoreOptions o;
  o.path = dir_.File("db");
  o.load = file;
  auto store = EmbeddedFeatureStore::Open(o);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find(":2: columns.a"), std::string::npos)
      << store.status().message();
}

}  // namespace
}  // namespace ctrjoin
