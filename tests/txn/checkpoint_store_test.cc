// CheckpointMeta's text form (and its format version) and the
// CheckpointStore's life cycle: complete only once renamed, in-progress ones
// removed at open, bounded by Retain, format 1 refused by name.
#include "txn/checkpoint_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/support/temp_dir.h"

namespace ctrjoin {
namespace {

namespace fs = std::filesystem;

CheckpointMeta SomeMeta(uint64_t epoch) {
  CheckpointMeta m;
  m.epoch = epoch;
  m.shards = 2;
  m.key_groups = 128;
  m.changelog_generation = 3;
  m.shard_logs = {{0, 4096}, {2, 17}};
  m.positions[{StreamKind::kImpression, 0}] = 1234;
  m.positions[{StreamKind::kClick, 3}] = 77;
  m.partition_max_ts = {{{StreamKind::kImpression, 0}, EventTime{1'700'000'000'000}}};
  m.watermark = EventTime{1'699'999'995'000};
  m.created_ms = 42;
  m.state_bytes = 4096;
  return m;
}

TEST(CheckpointMetaTest, RoundTrips) {
  const CheckpointMeta m = SomeMeta(9);
  Result<CheckpointMeta> back = CheckpointMeta::Decode(m.Encode());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->epoch, 9u);
  EXPECT_EQ(back->shards, 2u);
  EXPECT_EQ(back->positions, m.positions);
  EXPECT_EQ(back->partition_max_ts, m.partition_max_ts);
  EXPECT_EQ(back->watermark, m.watermark);
  EXPECT_EQ(back->state_bytes, 4096u);
  EXPECT_EQ(back->key_groups, 128u);
  EXPECT_EQ(back->changelog_generation, 3u);
  EXPECT_EQ(back->shard_logs, m.shard_logs);
}

TEST(CheckpointMetaTest, RefusesAnotherFormatByName) {
  std::string text = SomeMeta(9).Encode();
  text.replace(0, text.find('\n'), "ctrjoin-checkpoint 1");
  Result<CheckpointMeta> r = CheckpointMeta::Decode(text);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("format '1'"), std::string::npos) << r.status().message();
  // Without a log position for each shard the state cannot be found.
  text = SomeMeta(9).Encode();
  text.erase(text.find("shard_log 1"),
             text.find('\n', text.find("shard_log 1")) - text.find("shard_log 1") + 1);
  EXPECT_EQ(CheckpointMeta::Decode(text).status().code(), StatusCode::kCorruption);
}

TEST(CheckpointMetaTest, RejectsDamagedText) {
  const std::string good = SomeMeta(9).Encode();
  EXPECT_FALSE(CheckpointMeta::Decode("").ok());
  EXPECT_FALSE(CheckpointMeta::Decode(good.substr(0, good.size() - 4)).ok()) << "truncated";
  std::string bad = good;
  bad.replace(bad.find("position impressions"), 20, "position nonsense   ");
  Result<CheckpointMeta> r = CheckpointMeta::Decode(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("line"), std::string::npos) << r.status().message();
}

std::vector<uint64_t> Epochs(const CheckpointStore& store) {
  Result<std::vector<uint64_t>> r = store.List();
  EXPECT_TRUE(r.ok());
  return r.ok() ? *r : std::vector<uint64_t>{};
}

TEST(CheckpointStoreTest, CompleteListRetainDiscard) {
  test_support::TempDir dir;
  auto store = CheckpointStore::Open(dir.File("chk"));
  ASSERT_TRUE(store.ok());
  for (uint64_t e = 1; e <= 6; ++e) {
    EXPECT_EQ(Epochs(**store).size(), e - 1);
    ASSERT_TRUE((*store)->Complete(SomeMeta(e)).ok());
  }
  EXPECT_EQ(Epochs(**store), (std::vector<uint64_t>{1, 2, 3, 4, 5, 6}));
  Result<CheckpointMeta> m = (*store)->Load(4);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->epoch, 4u);
  EXPECT_FALSE((*store)->Load(17).ok());
  // Committed up to 5: keep the two newest committed (4, 5) and 6.
  Result<uint64_t> oldest = (*store)->Retain(5, 2);
  ASSERT_TRUE(oldest.ok());
  EXPECT_EQ(*oldest, 4u);
  EXPECT_EQ(Epochs(**store), (std::vector<uint64_t>{4, 5, 6}));
  ASSERT_TRUE((*store)->DiscardAbove(4).ok());
  EXPECT_EQ(Epochs(**store), (std::vector<uint64_t>{4}));
  // An interrupted checkpoint is gone after the next open.
  std::ofstream(dir.File("chk/chk-00000000000000000005.inprogress")) << "ctrjoin-checkpoint 2\n";
  auto reopened = CheckpointStore::Open(dir.File("chk"));
  ASSERT_TRUE(reopened.ok());
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(dir.File("chk"))) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1u);
}

TEST(CheckpointStoreTest, AFormatOneCheckpointIsRefusedWithWhatToDo) {
  test_support::TempDir dir;
  auto store = CheckpointStore::Open(dir.File("chk"));
  ASSERT_TRUE(store.ok());
  // Format 1 kept a directory per checkpoint: META and a RocksDB copy per shard.
  fs::create_directories(dir.File("chk/chk-00000000000000000007/shard-0"));
  std::ofstream(dir.File("chk/chk-00000000000000000007/META")) << "ctrjoin-checkpoint 1\n";
  EXPECT_EQ(Epochs(**store), (std::vector<uint64_t>{7}));
  Result<CheckpointMeta> m = (*store)->Load(7);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("format 1"), std::string::npos) << m.status().message();
  EXPECT_NE(m.status().message().find("empty checkpoint.dir"), std::string::npos);
}

TEST(CheckpointStoreTest, RecordsTheLargestTransactionalPoolEverUsed) {
  test_support::TempDir tmp;
  const std::string dir = tmp.path().string();
  EXPECT_EQ(CheckpointStore::RecordedPoolSize(dir).value(), 0) << "nothing recorded yet";
  ASSERT_TRUE(CheckpointStore::RecordPoolSize(dir, 3).ok());
  ASSERT_TRUE(CheckpointStore::RecordPoolSize(dir, 1).ok()) << "a shrunk pool";
  EXPECT_EQ(CheckpointStore::RecordedPoolSize(dir).value(), 3) << "the largest stays";
  ASSERT_TRUE(CheckpointStore::RecordPoolSize(dir, 5).ok());
  EXPECT_EQ(CheckpointStore::RecordedPoolSize(dir).value(), 5);
  std::ofstream(tmp.path() / "TRANSACTIONAL_IDS", std::ios::trunc) << "many\n";
  EXPECT_EQ(CheckpointStore::RecordedPoolSize(dir).status().code(), StatusCode::kCorruption);
}

}  // namespace
}  // namespace ctrjoin
