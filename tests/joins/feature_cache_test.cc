// The version-aware cache: point-in-time answers, live serving, LRU and
// time bounds, negative entries.
#include "joins/feature_cache.h"

#include <gtest/gtest.h>

#include "joins/feature_value.h"

namespace ctrjoin {
namespace {

FetchedRow Row(std::vector<FeatureCell> cells) { return FetchedRow{std::move(cells)}; }

double Number(const FeatureSet& set, const std::string& name) {
  for (const Feature& f : *set) {
    if (f.name == name) return std::get<double>(f.value);
  }
  ADD_FAILURE() << "no feature " << name;
  return -1;
}

bool Has(const FeatureSet& set, const std::string& name) {
  for (const Feature& f : *set) {
    if (f.name == name) return true;
  }
  return false;
}

TEST(RowVersionsTest, AnswersAsOfTsBelowTheBound) {
  // age versions 300, 200 (2 = max_versions: history cut); country at 100 only.
  auto rv = RowVersions::Make(Row({{"age", "33", 300}, {"age", "32", 200}, {"country", "de", 100}}),
                              "user.", 2, /*known_until=*/1000, /*live=*/false);
  auto at_500 = rv->Resolve(500);
  ASSERT_TRUE(at_500);
  EXPECT_EQ(Number(*at_500, "user.age"), 33);
  EXPECT_EQ(std::get<std::string>((**at_500)[1].value), "de");
  auto at_250 = rv->Resolve(250);
  ASSERT_TRUE(at_250);
  EXPECT_EQ(Number(*at_250, "user.age"), 32);
  // Before 200, age may have an older version that was not fetched.
  EXPECT_FALSE(rv->Resolve(150));
  // A version at exactly ts counts (<= ts).
  EXPECT_EQ(Number(*rv->Resolve(200), "user.age"), 32);
  // At or past the bound a non-live fetch cannot answer.
  EXPECT_FALSE(rv->Resolve(1000));
}

TEST(RowVersionsTest, CompleteColumnAnswersAbsence) {
  auto rv = RowVersions::Make(Row({{"age", "33", 300}}), "user.", 3, 1000, false);
  auto at_100 = rv->Resolve(100);
  ASSERT_TRUE(at_100);
  EXPECT_TRUE((*at_100)->empty()) << "age did not exist yet at 100";
}

TEST(RowVersionsTest, LiveFetchServesNewestPastItsBound) {
  auto rv = RowVersions::Make(Row({{"age", "33", 300}}), "user.", 3, 1000, /*live=*/true);
  auto later = rv->Resolve(5000);
  ASSERT_TRUE(later);
  EXPECT_EQ(Number(*later, "user.age"), 33);
  EXPECT_EQ(later->get(), rv->newest.get()) << "the fast path shares the newest set";
}

TEST(RowVersionsTest, ValuesAreTyped) {
  auto rv = RowVersions::Make(Row({{"n", "1.5", 1}, {"v", "[1, 2.5]", 1}, {"s", "abc", 1}}),
                              "item.", 1, 10, false);
  auto set = *rv->Resolve(5);
  ASSERT_EQ(set->size(), 3u);
  EXPECT_EQ(Number(set, "item.n"), 1.5);
  EXPECT_TRUE(Has(set, "item.v"));
  for (const Feature& f : *set) {
    if (f.name == "item.v") {
      EXPECT_EQ(std::get<std::vector<double>>(f.value), (std::vector<double>{1, 2.5}));
    }
    if (f.name == "item.s") {
      EXPECT_EQ(std::get<std::string>(f.value), "abc");
    }
  }
}

class FeatureCacheTest : public ::testing::Test {
 protected:
  std::shared_ptr<const RowVersions> Versions(const std::string& age, int64_t version,
                                              bool live = true) {
    return RowVersions::Make(Row({{"age", age, version}}), "user.", 3, 1000, live);
  }
  LookupMetrics metrics_;
};

TEST_F(FeatureCacheTest, HitMissAndExplicitKeys) {
  FeatureCache cache({}, &metrics_);
  EXPECT_FALSE(cache.Get("u1", 500, 0));
  cache.Put("u1", Versions("31", 100), 0);
  cache.Put("u2", Versions("32", 100), 0);
  EXPECT_EQ(Number(*cache.Get("u1", 500, 1), "user.age"), 31);
  EXPECT_EQ(Number(*cache.Get("u2", 500, 1), "user.age"), 32);
  EXPECT_EQ(metrics_.cache_entries.Get(), 2);
  EXPECT_GT(metrics_.cache_bytes.Get(), 0);
}

TEST_F(FeatureCacheTest, ExpiresAfterWrite) {
  FeatureCacheOptions o;
  o.expire_after_write_ms = 100;
  FeatureCache cache(o, &metrics_);
  cache.Put("u1", Versions("31", 100), 1000);
  EXPECT_TRUE(cache.Get("u1", 500, 1099));
  EXPECT_FALSE(cache.Get("u1", 500, 1100));
  EXPECT_EQ(cache.entries(), 0u);
  EXPECT_EQ(metrics_.cache_entries.Get(), 0);
}

TEST_F(FeatureCacheTest, NegativeEntriesHaveTheirOwnTtl) {
  FeatureCacheOptions o;
  o.expire_after_write_ms = 1000;
  o.negative_ttl_ms = 10;
  FeatureCache cache(o, &metrics_);
  cache.Put("nobody", RowVersions::Make(Row({}), "user.", 3, 1000, true), 0);
  auto hit = cache.Get("nobody", 500, 5);
  ASSERT_TRUE(hit);
  EXPECT_TRUE((*hit)->empty());
  EXPECT_FALSE(cache.Get("nobody", 500, 10));
}

TEST_F(FeatureCacheTest, EvictsLeastRecentlyUsedByEntries) {
  FeatureCacheOptions o;
  o.max_entries = 16;  // one per stripe
  FeatureCache cache(o, &metrics_);
  for (int i = 0; i < 1000; ++i) cache.Put("u" + std::to_string(i), Versions("1", 1), 0);
  EXPECT_LE(cache.entries(), 16u);
  EXPECT_GE(metrics_.cache_evictions.Get(), 984u);
  EXPECT_TRUE(cache.Get("u999", 5, 0)) << "the most recent stays";
}

TEST_F(FeatureCacheTest, EvictsByBytes) {
  FeatureCacheOptions o;
  o.max_mb = 1;
  FeatureCache cache(o, &metrics_);
  const std::string big(4096, 'x');
  for (int i = 0; i < 2000; ++i) cache.Put("u" + std::to_string(i), Versions(big, 1), 0);
  EXPECT_LE(metrics_.cache_bytes.Get(), 1 << 20);
  EXPECT_GT(metrics_.cache_evictions.Get(), 0u);
}

TEST_F(FeatureCacheTest, ReplaceKeepsCountsRight) {
  FeatureCache cache({}, &metrics_);
  cache.Put("u1", Versions("1", 1), 0);
  cache.Put("u1", Versions("2", 2), 0);
  EXPECT_EQ(cache.entries(), 1u);
  EXPECT_EQ(metrics_.cache_entries.Get(), 1);
  EXPECT_EQ(Number(*cache.Get("u1", 5, 0), "user.age"), 2);
}

TEST(FeatureValueTest, DecodesNumbersArraysAndText) {
  EXPECT_EQ(std::get<double>(DecodeCellValue("42")), 42);
  EXPECT_EQ(std::get<double>(DecodeCellValue("-0.5")), -0.5);
  EXPECT_EQ(std::get<std::vector<double>>(DecodeCellValue("[]")), std::vector<double>{});
  EXPECT_EQ(std::get<std::vector<double>>(DecodeCellValue("[1, 2]")), (std::vector<double>{1, 2}));
  EXPECT_EQ(std::get<std::string>(DecodeCellValue("[1, x]")), "[1, x]");
  EXPECT_EQ(std::get<std::string>(DecodeCellValue("42abc")), "42abc");
  EXPECT_EQ(std::get<std::string>(DecodeCellValue("")), "");
  EXPECT_EQ(std::get<std::string>(DecodeCellValue("nan")), "nan");
}

}  // namespace
}  // namespace ctrjoin
