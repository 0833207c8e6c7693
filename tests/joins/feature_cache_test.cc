// The version-aware cache: point-in-time answers, live serving, CLOCK eviction and
// time bounds, negative entries.
#include "joins/feature_cache.h"

#include <gtest/gtest.h>

#include "src/core/feature_type.h"
#include "src/core/hash.h"

namespace ctrjoin {
namespace {

FetchedRow Row(std::vector<FeatureCell> cells) { return FetchedRow{std::move(cells)}; }

// RowVersions::Make with no declared columns (every type inferred).
std::shared_ptr<const RowVersions> Make(const FetchedRow& row, const std::string& prefix,
                                        int max_versions, int64_t known_until, bool live) {
  size_t rejected = 0;
  std::string first;
  auto rv = RowVersions::Make(row, prefix, max_versions, known_until, live, {}, &rejected, &first);
  EXPECT_EQ(rejected, 0u) << first;
  return rv;
}

// A numeric feature's value (int64 or float).
double Number(const FeatureSet& set, const std::string& name) {
  for (const Feature& f : *set) {
    if (f.name != name) continue;
    if (const auto* i = std::get_if<int64_t>(&f.value)) return static_cast<double>(*i);
    return std::get<double>(f.value);
  }
  ADD_FAILURE() << "no feature " << name;
  return -1;
}

const FeatureValue* Find(const FeatureSet& set, const std::string& name) {
  for (const Feature& f : *set) {
    if (f.name == name) return &f.value;
  }
  return nullptr;
}

bool Has(const FeatureSet& set, const std::string& name) {
  for (const Feature& f : *set) {
    if (f.name == name) return true;
  }
  return false;
}

TEST(RowVersionsTest, AnswersAsOfTsBelowTheBound) {
  // age versions 300, 200 (2 = max_versions: history cut); country at 100 only.
  auto rv = Make(Row({{"age", "33", 300}, {"age", "32", 200}, {"country", "de", 100}}), "user.", 2,
                 /*known_until=*/1000, /*live=*/false);
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
  auto rv = Make(Row({{"age", "33", 300}}), "user.", 3, 1000, false);
  auto at_100 = rv->Resolve(100);
  ASSERT_TRUE(at_100);
  EXPECT_TRUE((*at_100)->empty()) << "age did not exist yet at 100";
}

TEST(RowVersionsTest, LiveFetchServesNewestPastItsBound) {
  auto rv = Make(Row({{"age", "33", 300}}), "user.", 3, 1000, /*live=*/true);
  auto later = rv->Resolve(5000);
  ASSERT_TRUE(later);
  EXPECT_EQ(Number(*later, "user.age"), 33);
  EXPECT_EQ(later->get(), rv->newest.get()) << "the fast path shares the newest set";
}

TEST(RowVersionsTest, ValuesAreTyped) {
  auto rv =
      Make(Row({{"n", "1.5", 1}, {"v", "[1, 2.5]", 1}, {"s", "abc", 1}}), "item.", 1, 10, false);
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
    return Make(Row({{"age", age, version}}), "user.", 3, 1000, live);
  }
  LookupCounters metrics_;
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
  cache.Put("nobody", Make(Row({}), "user.", 3, 1000, true), 0);
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

// An exact entry answers only ts below its own bound, a live one every ts it
// holds a version for: an exact fetch does not displace an unexpired live
// entry, but replaces an expired one and is replaced by a live one.
TEST_F(FeatureCacheTest, AnExactEntryDoesNotDisplaceALiveOne) {
  FeatureCacheOptions o;
  o.expire_after_write_ms = 100;
  FeatureCache cache(o, &metrics_);
  cache.Put("u1", Versions("1", 1, /*live=*/true), 0);
  cache.Put("u1", Versions("2", 2, /*live=*/false), 50);
  EXPECT_EQ(Number(*cache.Get("u1", 5, 60), "user.age"), 1) << "the live entry stays";
  EXPECT_EQ(cache.entries(), 1u);
  cache.Put("u1", Versions("3", 3, /*live=*/false), 100);  // the live one has expired
  EXPECT_EQ(Number(*cache.Get("u1", 5, 110), "user.age"), 3);
  cache.Put("u1", Versions("4", 4, /*live=*/true), 120);
  EXPECT_EQ(Number(*cache.Get("u1", 5, 130), "user.age"), 4);
  EXPECT_EQ(cache.entries(), 1u);
  EXPECT_EQ(metrics_.cache_entries.Get(), 1);
}

// CLOCK makes room before it inserts: when every cached row was hit since
// the hand last passed, the newcomer still stays (the hand takes the oldest).
TEST_F(FeatureCacheTest, ANewRowIsNeverTheOneEvicted) {
  FeatureCacheOptions o;
  o.max_entries = 16;  // one per stripe
  FeatureCache cache(o, &metrics_);
  // Two rows of one stripe (the cache spreads rows by xxh3 over 16 stripes).
  std::vector<std::string> same_stripe;
  for (int i = 0; same_stripe.size() < 2; ++i) {
    std::string row = "r" + std::to_string(i);
    if (ImpressionKey(row) % 16 == 0) same_stripe.push_back(row);
  }
  cache.Put(same_stripe[0], Versions("1", 1), 0);
  ASSERT_TRUE(cache.Get(same_stripe[0], 5, 0));  // hit: referenced
  cache.Put(same_stripe[1], Versions("2", 1), 0);
  EXPECT_TRUE(cache.Get(same_stripe[1], 5, 0)) << "the newcomer stays";
  EXPECT_FALSE(cache.Get(same_stripe[0], 5, 0)) << "the older row made room";
  EXPECT_EQ(metrics_.cache_evictions.Get(), 1u);
}

// Every byte and entry counted in comes out again, through replacement,
// expiry, eviction and destruction.
TEST_F(FeatureCacheTest, CountsReturnToZero) {
  {
    FeatureCacheOptions o;
    o.max_entries = 64;
    o.expire_after_write_ms = 100;
    FeatureCache cache(o, &metrics_);
    for (int i = 0; i < 5000; ++i) {
      const std::string row = "u" + std::to_string(i % 300);
      cache.Put(row, Versions(std::to_string(i), 1), i);
      cache.Get("u" + std::to_string((i * 7) % 300), 5, i);
    }
    EXPECT_LE(cache.entries(), 64u);
    EXPECT_GT(metrics_.cache_bytes.Get(), 0);
    EXPECT_EQ(metrics_.cache_entries.Get(), static_cast<int64_t>(cache.entries()));
  }
  EXPECT_EQ(metrics_.cache_entries.Get(), 0);
  EXPECT_EQ(metrics_.cache_bytes.Get(), 0);
}

TEST_F(FeatureCacheTest, ReplaceKeepsCountsRight) {
  FeatureCache cache({}, &metrics_);
  cache.Put("u1", Versions("1", 1), 0);
  cache.Put("u1", Versions("2", 2), 0);
  EXPECT_EQ(cache.entries(), 1u);
  EXPECT_EQ(metrics_.cache_entries.Get(), 1);
  EXPECT_EQ(Number(*cache.Get("u1", 5, 0), "user.age"), 2);
}

// The staleness rule (newest versions for ts >= known_until) serves recent
// askers of a live entry only: never a historical impression, never from an
// exact entry.
TEST(RowVersionsTest, OnlyRecentAskersOfALiveEntryGetTheNewestBeyondTheBound) {
  auto live = Make(Row({{"age", "31", 100}}), "user.", 3, 1000, true);
  EXPECT_EQ(Number(*live->Resolve(1500, /*recent=*/true), "user.age"), 31);
  EXPECT_FALSE(live->Resolve(1500, /*recent=*/false));
  EXPECT_FALSE(live->Resolve(1000, /*recent=*/false)) << "the bound is exclusive";
  EXPECT_EQ(Number(*live->Resolve(999, /*recent=*/false), "user.age"), 31);
  auto exact = Make(Row({{"age", "31", 100}}), "user.", 3, 1000, false);
  EXPECT_FALSE(exact->Resolve(1500, /*recent=*/true));
}

TEST(RowVersionsTest, InfersTypesFromCellText) {
  auto rv = Make(Row({{"zip", "02139", 1},
                      {"id", "1234567890123456789", 1},
                      {"big", "16777217", 1},
                      {"ids", "[1, 2]", 1},
                      {"huge", "1e39", 1}}),
                 "user.", 1, 10, false);
  auto set = *rv->Resolve(5);
  EXPECT_EQ(*Find(set, "user.zip"), FeatureValue(std::string("02139"))) << "leading zero: text";
  EXPECT_EQ(*Find(set, "user.id"), FeatureValue(int64_t{1234567890123456789}));
  EXPECT_EQ(*Find(set, "user.big"), FeatureValue(int64_t{16777217}));
  EXPECT_EQ(*Find(set, "user.ids"), FeatureValue(std::vector<int64_t>{1, 2}));
  EXPECT_EQ(*Find(set, "user.huge"), FeatureValue(std::string("1e39"))) << "no float32 holds it";
}

TEST(RowVersionsTest, DeclaredColumnsKeepTheirTypeAndLeaveOutCellsNotOfIt) {
  FeatureDecls columns =
      ParseFeatureDecls({{"zip", "string"}, {"age", "int64"}, {"score", "float"}},
                        "lookups[0].columns")
          .value();
  size_t rejected = 0;
  std::string first;
  auto rv = RowVersions::Make(
      Row({{"zip", "7", 1}, {"age", "41", 300}, {"age", "forty", 200}, {"score", "1e39", 1}}),
      "user.", 3, 1000, false, columns, &rejected, &first);
  EXPECT_EQ(rejected, 2u);
  EXPECT_NE(first.find("user.age at version 200"), std::string::npos) << first;
  auto at_500 = *rv->Resolve(500);
  EXPECT_EQ(*Find(at_500, "user.zip"), FeatureValue(std::string("7")));
  EXPECT_EQ(*Find(at_500, "user.age"), FeatureValue(int64_t{41}));
  EXPECT_EQ(Find(at_500, "user.score"), nullptr) << "1e39 is not a float32";
  // Where the rejected version applies the feature is absent, not the older or newer one.
  auto at_250 = rv->Resolve(250);
  ASSERT_TRUE(at_250);
  EXPECT_EQ(Find(*at_250, "user.age"), nullptr);
}

}  // namespace
}  // namespace ctrjoin
