// JoinState: memory accounting, spilling to RocksDB within the budget, and
// bringing spilled entries back, with timers intact.
#include "joins/join_state.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "joins/label_join.h"
#include "src/core/hash.h"
#include "tests/support/temp_dir.h"

namespace ctrjoin {
namespace {

class JoinStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SpillStoreOptions o;
    o.dir = dir_.string();
    o.rocksdb_memory_bytes = 16 << 20;
    auto s = SpillStore::Open(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }

  static JoinEntry Pending(int64_t ts, size_t payload_bytes) {
    return JoinEntry{EntryState::kPending, ts, ts + 1000, Payload(std::string(payload_bytes, 'p'))};
  }

  test_support::TempDir dir_;
  std::unique_ptr<SpillStore> store_;
  JoinMetrics metrics_;
};

TEST_F(JoinStateTest, StaysWithinBudgetBySpilling) {
  const size_t budget = 256 << 10;
  JoinState state(0, store_.get(), budget, &metrics_);
  for (uint64_t k = 0; k < 20000; ++k) {
    state.Put(k, Pending(static_cast<int64_t>(k), 100));
    if (k % 500 == 0) {
      ASSERT_TRUE(state.EnforceBudget().ok());
    }
  }
  ASSERT_TRUE(state.EnforceBudget().ok());
  EXPECT_LE(state.memory_bytes(), budget);
  EXPECT_GT(state.entries_spilled(), 0u);
  EXPECT_EQ(state.entries_in_memory() + state.entries_spilled(), 20000u);
  EXPECT_EQ(metrics_.state_entries.Get(), 20000);
  EXPECT_EQ(metrics_.spilled_entries.Get(), static_cast<int64_t>(state.entries_spilled()));
}

TEST_F(JoinStateTest, SpilledEntriesComeBackIntact) {
  JoinState state(3, store_.get(), 64 << 10, &metrics_);
  for (uint64_t k = 0; k < 5000; ++k) state.Put(k, Pending(static_cast<int64_t>(k), 40));
  ASSERT_TRUE(state.EnforceBudget().ok());
  ASSERT_GT(state.entries_spilled(), 0u);
  // The latest deadlines are spilled first.
  auto found = state.Find(4999);
  ASSERT_TRUE(found.ok());
  ASSERT_NE(*found, nullptr);
  EXPECT_EQ((*found)->impression_ts, 4999);
  EXPECT_EQ((*found)->deadline, 5999);
  EXPECT_EQ((*found)->payload.view(), std::string(40, 'p'));
  auto missing = state.Find(123456789);
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(*missing, nullptr);
}

TEST_F(JoinStateTest, ExpiresMemoryAndSpilledEntriesInOrder) {
  JoinState state(1, store_.get(), 64 << 10, &metrics_);
  for (uint64_t k = 0; k < 5000; ++k) state.Put(k, Pending(static_cast<int64_t>(k), 40));
  ASSERT_TRUE(state.EnforceBudget().ok());
  ASSERT_GT(state.entries_spilled(), 0u);
  std::vector<std::pair<uint64_t, JoinEntry>> out;
  ASSERT_TRUE(state.PopExpired(EventTime{1000 + 2500}, out).ok());
  // Deadlines 1000..3499 are < 3500.
  ASSERT_EQ(out.size(), 2500u);
  std::set<uint64_t> keys;
  for (auto& [k, e] : out) {
    keys.insert(k);
    EXPECT_EQ(e.deadline, static_cast<int64_t>(k) + 1000);
    EXPECT_EQ(e.payload.size(), 40u);
  }
  EXPECT_EQ(keys.size(), 2500u);
  EXPECT_EQ(*keys.begin(), 0u);
  EXPECT_EQ(*keys.rbegin(), 2499u);
  out.clear();
  ASSERT_TRUE(state.PopExpired(EventTime::Max(), out).ok());
  EXPECT_EQ(out.size(), 2500u);
  EXPECT_EQ(state.entries_in_memory() + state.entries_spilled(), 0u);
}

TEST_F(JoinStateTest, DoesNotSpillWithoutStore) {
  JoinState state(0, nullptr, 1024, &metrics_);
  for (uint64_t k = 0; k < 100; ++k) state.Put(k, Pending(1, 40));
  ASSERT_TRUE(state.EnforceBudget().ok());
  EXPECT_EQ(state.entries_in_memory(), 100u);
}

// A labelled entry (no payload) replacing a pending one: the pending
// payload's bytes are given back, and expiring the entry takes away only
// what it holds (an inline payload must not keep the old heap buffer).
TEST_F(JoinStateTest, ReplacingAPayloadGivesItsBytesBack) {
  JoinState state(0, nullptr, 1 << 30, &metrics_);
  const size_t empty = state.memory_bytes();
  for (uint64_t k = 0; k < 100; ++k) state.Put(k, Pending(1, 200));
  const size_t with_payloads = state.memory_bytes();
  ASSERT_GE(with_payloads, empty + 100 * 200);
  for (uint64_t k = 0; k < 100; ++k) {
    state.Put(k, JoinEntry{EntryState::kLabeled, 1, 1001, {}});
  }
  EXPECT_LE(state.memory_bytes(), with_payloads - 100 * 200);
  std::vector<std::pair<uint64_t, JoinEntry>> out;
  ASSERT_TRUE(state.PopExpired(EventTime::Max(), out).ok());
  EXPECT_EQ(out.size(), 100u);
  EXPECT_LE(state.memory_bytes(), with_payloads - 100 * 200);
}

TEST_F(JoinStateTest, EntryCodecRoundTrips) {
  JoinEntry e{EntryState::kClosedNegative, -5, 77, Payload(std::string("\0abc", 4))};
  std::string bytes;
  EncodeEntry(e, bytes);
  JoinEntry back;
  ASSERT_TRUE(DecodeEntry(bytes, back).ok());
  EXPECT_EQ(back.state, e.state);
  EXPECT_EQ(back.impression_ts, -5);
  EXPECT_EQ(back.deadline, 77);
  EXPECT_EQ(back.payload, e.payload);
  EXPECT_FALSE(DecodeEntry("x", back).ok());
}

// The same events give the same samples whether or not state spills.
TEST_F(JoinStateTest, LabelJoinGivesSameSamplesWhenSpilling) {
  auto run = [&](SpillStore* store, size_t budget) {
    JoinMetrics metrics;
    LabelJoin join(LabelJoinOptions{10'000, 1'000, false, 16},
                   JoinState(0, store, budget, &metrics), &metrics);
    std::map<uint64_t, int> labels;
    for (int b = 0; b < 100; ++b) {
      ShardBatch batch;
      for (int i = 0; i < 200; ++i) {
        const int n = b * 200 + i;
        const std::string id = "imp" + std::to_string(n);
        batch.events.push_back({ImpressionKey(id), Impression{id, "u", "i", EventTime{n}, {}}});
        if (n % 7 == 0) {
          const std::string cid = "imp" + std::to_string(n / 2);
          batch.events.push_back({ImpressionKey(cid), Click{cid, EventTime{n}}});
        }
      }
      batch.watermark = EventTime{b * 200 - 5000};
      std::vector<Sample> out;
      EXPECT_TRUE(join.Process(batch, out).ok());
      for (const Sample& s : out) EXPECT_TRUE(labels.emplace(s.sample_id, s.label).second);
    }
    ShardBatch end;
    end.end_of_input = true;
    std::vector<Sample> out;
    EXPECT_TRUE(join.Process(end, out).ok());
    for (const Sample& s : out) EXPECT_TRUE(labels.emplace(s.sample_id, s.label).second);
    return std::make_pair(labels, metrics.spill_writes.Get());
  };
  auto [in_memory, no_spills] = run(nullptr, 1 << 30);
  auto [spilled, spills] = run(store_.get(), 64 << 10);
  EXPECT_EQ(no_spills, 0u);
  EXPECT_GT(spills, 0u);
  EXPECT_EQ(in_memory.size(), 20000u);
  EXPECT_EQ(in_memory, spilled);
}

}  // namespace
}  // namespace ctrjoin

namespace ctrjoin {
namespace {

// Restores `epoch` of the changelog in dir into a fresh state (one shard,
// spilling under a small budget).
struct Restored {
  JoinMetrics metrics;
  std::unique_ptr<SpillStore> store;
  std::unique_ptr<JoinState> state;
};
std::unique_ptr<Restored> RestoreFrom(const test_support::TempDir& tmp, const std::string& dir,
                                      uint64_t epoch, Status& status) {
  static int restores = 0;
  auto r = std::make_unique<Restored>();
  SpillStoreOptions o;
  o.dir = tmp.File("state");
  o.name = "restored-" + std::to_string(++restores);
  o.rocksdb_memory_bytes = 16 << 20;
  r->store = std::move(SpillStore::Open(o)).value();
  r->state = std::make_unique<JoinState>(1, r->store.get(), 128 << 10, &r->metrics);
  status = ReplayJoinChangelog(
               dir, epoch, [](uint64_t) { return true; },
               [&](uint64_t key, JoinEntry e, std::string_view encoded) {
                 r->state->PutRestored(key, std::move(e), encoded);
                 return r->state->EnforceBudget();
               })
               .status();
  r->state->FinishRestore();
  return r;
}

// Change the state, mark, change it more: the log replayed to the marker
// gives exactly the state at the marker, in memory and spilled alike.
TEST(JoinStateCheckpointTest, TheChangelogRestoresTheStateAtTheMarker) {
  test_support::TempDir dir;
  JoinMetrics metrics;
  SpillStoreOptions o;
  o.dir = dir.File("state");
  o.rocksdb_memory_bytes = 16 << 20;
  auto store = SpillStore::Open(o);
  ASSERT_TRUE(store.ok());
  std::map<uint64_t, JoinEntry> expected;
  {
    auto log = ChangelogWriter::Open(ChangelogOptions{dir.File("log"), 64 << 10, 1 << 20});
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    JoinState state(1, store->get(), 128 << 10, &metrics);
    state.SetChangelog(log->get());
    for (uint64_t k = 0; k < 6000; ++k) {
      JoinEntry e{EntryState::kPending, static_cast<int64_t>(k), static_cast<int64_t>(k) + 1000,
                  Payload(std::string(60, static_cast<char>('a' + k % 26)))};
      state.Put(k, e);
      expected[k] = e;
      if (k % 1000 == 999) {
        ASSERT_TRUE(state.EnforceBudget().ok());
      }
    }
    ASSERT_GT(state.entries_spilled(), 0u) << "the test needs spilled entries too";
    ASSERT_TRUE(state.Mark(1, EventTime::Min()).ok());
    // Replaced (found first, as the label join does: it may be spilled),
    // expired, and a spilled one replaced after coming back.
    ASSERT_TRUE(state.Find(10).ok());
    state.Put(10, JoinEntry{EntryState::kLabeled, 10, 1010, Payload()});
    expected[10] = JoinEntry{EntryState::kLabeled, 10, 1010, Payload()};
    auto spilled = state.Find(5990);
    ASSERT_TRUE(spilled.ok() && *spilled != nullptr);
    state.Put(5990, JoinEntry{EntryState::kLabeled, 5990, 6990, Payload()});
    expected[5990] = JoinEntry{EntryState::kLabeled, 5990, 6990, Payload()};
    std::vector<std::pair<uint64_t, JoinEntry>> expired;
    ASSERT_TRUE(state.PopExpired(EventTime{1100}, expired).ok());  // deadlines < 1100
    for (const auto& [k, e] : expired) expected.erase(k);
    ASSERT_EQ(expired.size(), 100u);
    ASSERT_TRUE(state.Mark(2, EventTime{1100}).ok());
    // After the marker: must not be restored.
    state.Put(999'999, JoinEntry{EntryState::kPending, 5, 2000, Payload("late")});
    state.Put(20, JoinEntry{EntryState::kLabeled, 20, 1020, Payload()});
    ASSERT_TRUE((*log)->WaitDurable(2).ok());
  }  // the writer writes what it holds, then stops
  Status st;
  auto r = RestoreFrom(dir, dir.File("log"), 2, st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  JoinState& state = *r->state;
  EXPECT_EQ(state.entries_in_memory() + state.entries_spilled(), expected.size());
  EXPECT_GT(state.entries_spilled(), 0u);
  auto none = state.Find(999'999);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, nullptr);
  // Everything comes out, in deadline order, as it was at the marker.
  std::vector<std::pair<uint64_t, JoinEntry>> all;
  ASSERT_TRUE(state.PopExpired(EventTime::Max(), all).ok());
  ASSERT_EQ(all.size(), expected.size());
  for (const auto& [k, e] : all) {
    ASSERT_TRUE(expected.contains(k)) << k;
    EXPECT_EQ(e.state, expected[k].state) << k;
    EXPECT_EQ(e.deadline, expected[k].deadline) << k;
    EXPECT_EQ(e.payload, expected[k].payload) << k;
  }
  // A marker the log does not have (yet) is not a state to restore.
  auto missing = RestoreFrom(dir, dir.File("log"), 3, st);
  EXPECT_EQ(st.code(), StatusCode::kNotFound) << st.ToString();
}

// A segment is deleted once the watermark passed every horizon in it. A
// put's horizon covers the deadline of the entry it replaced: deleting the
// segment of a later, shorter-lived put must not bring an older, longer-lived
// one of the same key back to life.
TEST(JoinStateCheckpointTest, DeletedSegmentsNeverBringAnOlderEntryBack) {
  test_support::TempDir dir;
  JoinMetrics metrics;
  const uint64_t kKey = 7;
  {
    // Segments of one byte: every marker closes one.
    auto log = ChangelogWriter::Open(ChangelogOptions{dir.File("log"), 1, 1 << 20});
    ASSERT_TRUE(log.ok());
    JoinState state(1, nullptr, 1 << 20, &metrics);
    state.SetChangelog(log->get());
    // Segment 0: clicks held until 5000 (a click far ahead of its impression).
    state.Put(kKey, JoinEntry{EntryState::kHeldClicks, 0, 5000, Payload("c")});
    ASSERT_TRUE(state.Mark(1, EventTime{0}).ok());
    // Segment 1: its impression came, its window ends at 100.
    state.Put(kKey, JoinEntry{EntryState::kPending, 0, 100, Payload("imp")});
    ASSERT_TRUE(state.Mark(2, EventTime{0}).ok());
    // Segment 2: the window closed; remembered until 300.
    std::vector<std::pair<uint64_t, JoinEntry>> out;
    ASSERT_TRUE(state.PopExpired(EventTime{200}, out).ok());
    ASSERT_EQ(out.size(), 1u);
    state.Put(kKey, JoinEntry{EntryState::kClosedNegative, 0, 300, Payload()});
    ASSERT_TRUE(state.Mark(3, EventTime{200}).ok());
    // Forgotten at 400; segment 3 holds only the marker.
    out.clear();
    ASSERT_TRUE(state.PopExpired(EventTime{400}, out).ok());
    ASSERT_EQ(out.size(), 1u);
    ASSERT_TRUE(state.Mark(4, EventTime{400}).ok());
    ASSERT_TRUE((*log)->WaitDurable(4).ok());
    ASSERT_TRUE((*log)->Release(4).ok());
  }
  // Segment 2 (horizon 300) is gone; segment 1's put replaced one living to
  // 5000, so it stays, and so does segment 0.
  EXPECT_FALSE(std::filesystem::exists(dir.File("log/000000000002.log")));
  EXPECT_TRUE(std::filesystem::exists(dir.File("log/000000000001.log")));
  EXPECT_TRUE(std::filesystem::exists(dir.File("log/000000000000.log")));
  Status st;
  auto r = RestoreFrom(dir, dir.File("log"), 4, st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(r->state->entries_in_memory(), 0u) << "the key was forgotten at epoch 4";
}

// Expire closes entries in place: a kept entry gets its new deadline and
// state without leaving the table, comes back in the same call once that
// deadline has passed too, and a restore from the log sees it as a Put.
// Spilled entries are closed the same way.
TEST(JoinStateExpireTest, ClosesInPlaceAndHandsBackWhatTheSameWatermarkPasses) {
  test_support::TempDir dir;
  JoinMetrics metrics;
  SpillStoreOptions o;
  o.dir = dir.File("spill");
  o.rocksdb_memory_bytes = 16 << 20;
  auto store = std::move(SpillStore::Open(o)).value();
  auto log = ChangelogWriter::Open(ChangelogOptions{dir.File("log"), 1 << 20, 1 << 20});
  ASSERT_TRUE(log.ok());
  JoinState state(1, store.get(), 16 << 10, &metrics);
  state.SetChangelog(log->get());
  // 400 pending entries, windows ending at 100 + k; most of them spilled.
  for (uint64_t k = 0; k < 400; ++k) {
    state.Put(k, JoinEntry{EntryState::kPending, static_cast<int64_t>(k),
                           100 + static_cast<int64_t>(k), Payload(std::string(40, 'p'))});
  }
  ASSERT_TRUE(state.EnforceBudget().ok());
  ASSERT_GT(state.entries_spilled(), 0u);
  // Watermark 300 closes the windows of keys 0..199; a closed entry is kept
  // until 250 + k, so keys 0..49 are also forgotten in this call.
  std::map<uint64_t, int> closed, forgotten;
  auto close = [&](uint64_t key, JoinEntry& e) -> Result<bool> {
    if (e.state == EntryState::kPending) {
      EXPECT_EQ(e.deadline, 100 + static_cast<int64_t>(key));
      ++closed[key];
      e.state = EntryState::kClosedNegative;
      e.deadline = 250 + static_cast<int64_t>(key);
      e.payload = Payload();
      return true;
    }
    EXPECT_EQ(e.state, EntryState::kClosedNegative);
    ++forgotten[key];
    return false;
  };
  ASSERT_TRUE(state.Expire(EventTime{300}, close).ok());
  EXPECT_EQ(closed.size(), 200u);
  EXPECT_EQ(forgotten.size(), 50u);
  for (const auto& [key, times] : closed) EXPECT_EQ(times, 1) << key;
  EXPECT_EQ(forgotten.begin()->first, 0u);
  EXPECT_EQ(forgotten.rbegin()->first, 49u);
  EXPECT_EQ(metrics.state_entries.Get(), 350);
  // A closed entry that stays is found with its new state and deadline.
  auto found = state.Find(120);
  ASSERT_TRUE(found.ok());
  ASSERT_NE(*found, nullptr);
  EXPECT_EQ((*found)->state, EntryState::kClosedNegative);
  EXPECT_EQ((*found)->deadline, 370);
  // The log holds the closes: restored at the marker, keys 50..199 are
  // closed, 200..399 pending, 0..49 gone.
  ASSERT_TRUE(state.Mark(1, EventTime{300}).ok());
  ASSERT_TRUE((*log)->WaitDurable(1).ok());
  Status st;
  auto r = RestoreFrom(dir, dir.File("log"), 1, st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(r->state->entries_in_memory() + r->state->entries_spilled(), 350u);
  auto restored = r->state->Find(60);
  ASSERT_TRUE(restored.ok());
  ASSERT_NE(*restored, nullptr);
  EXPECT_EQ((*restored)->state, EntryState::kClosedNegative);
  restored = r->state->Find(10);
  ASSERT_TRUE(restored.ok());
  EXPECT_EQ(*restored, nullptr);
}

// An error from `close` stops the expiry and is returned as is.
TEST(JoinStateExpireTest, AnErrorFromCloseIsReturned) {
  JoinMetrics metrics;
  JoinState state(0, nullptr, 1 << 20, &metrics);
  for (uint64_t k = 0; k < 10; ++k)
    state.Put(k, JoinEntry{EntryState::kPending, 0, 5, Payload("x")});
  const Status st = state.Expire(EventTime{10}, [](uint64_t, JoinEntry&) -> Result<bool> {
    return Status::Corruption("undecodable payload");
  });
  EXPECT_EQ(st.code(), StatusCode::kCorruption);
}

// An entry's payload: one block or none; copies are deep, moves hand the
// block over, and the bytes (NULs included) come back as they went in.
TEST(PayloadTest, HoldsItsBytesInOneBlock) {
  const Payload empty;
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(empty.heap_bytes(), 0u);
  EXPECT_TRUE(Payload(std::string_view()).empty()) << "no block for no bytes";
  Payload p(std::string("a\0b", 3));
  EXPECT_EQ(p.view(), std::string("a\0b", 3));
  EXPECT_EQ(p.heap_bytes(), sizeof(size_t) + 3);
  Payload copy = p;
  EXPECT_EQ(copy, p);
  EXPECT_NE(copy.block(), p.block());
  const void* block = p.block();
  Payload moved = std::move(p);
  EXPECT_EQ(moved.block(), block);
  EXPECT_TRUE(p.empty());  // NOLINT(bugprone-use-after-move): the moved-from state is the point
  moved = Payload(std::string(1000, 'x'));
  EXPECT_EQ(moved.size(), 1000u);
  copy = copy;  // NOLINT: self-assignment keeps the bytes
  EXPECT_EQ(copy.view(), std::string("a\0b", 3));
}

}  // namespace
}  // namespace ctrjoin
