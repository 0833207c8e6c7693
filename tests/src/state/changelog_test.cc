// The changelog on its own: replay stops at the asked marker, a torn tail
// after the last durable marker is ignored (and one before it is an error),
// segments roll at markers and Release deletes only what no kept
// checkpoint needs; generations of ShardChangelogs.
#include "src/state/changelog.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <vector>

#include "tests/support/temp_dir.h"

namespace ctrjoin {
namespace {

namespace fs = std::filesystem;

struct Seen {
  std::vector<uint64_t> keys;  // puts, in order
  std::vector<uint64_t> epochs;
};

Status Replay(const std::string& dir, uint64_t epoch, Seen& seen) {
  return ReadChangelog(dir, epoch, [&](const ChangelogRecord& r) {
    if (r.type == 'p') {
      seen.keys.push_back(r.key_or_epoch);
      EXPECT_EQ(r.entry, "entry-" + std::to_string(r.key_or_epoch));
    } else {
      seen.epochs.push_back(r.key_or_epoch);
    }
    return Status::Ok();
  });
}

void PutKey(ChangelogWriter& log, uint64_t key, int64_t horizon) {
  log.Put(key, horizon, "entry-" + std::to_string(key));
}

TEST(ChangelogTest, ReplaysUpToTheAskedMarker) {
  test_support::TempDir tmp;
  const std::string dir = tmp.File("log");
  {
    auto log = ChangelogWriter::Open(ChangelogOptions{dir});
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    PutKey(**log, 1, 10);
    PutKey(**log, 2, 10);
    Result<ChangelogPosition> m1 = (*log)->Mark(1, 5);
    ASSERT_TRUE(m1.ok());
    EXPECT_EQ(m1->segment, 0u);
    EXPECT_EQ(m1->offset, (*log)->bytes_appended());
    PutKey(**log, 3, 10);
    ASSERT_TRUE((*log)->Mark(2, 6).ok());
    PutKey(**log, 4, 10);  // after the last marker
    ASSERT_TRUE((*log)->WaitDurable(2).ok());
  }
  Seen one;
  ASSERT_TRUE(Replay(dir, 1, one).ok());
  EXPECT_EQ(one.keys, (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(one.epochs, (std::vector<uint64_t>{1}));
  Seen two;
  ASSERT_TRUE(Replay(dir, 2, two).ok());
  EXPECT_EQ(two.keys, (std::vector<uint64_t>{1, 2, 3}));
  Seen three;
  EXPECT_EQ(Replay(dir, 3, three).code(), StatusCode::kNotFound);
  // A writer never appends to an existing log.
  EXPECT_FALSE(ChangelogWriter::Open(ChangelogOptions{dir}).ok());
}

// kill -9 in the middle of a write leaves part of a record: what is after
// the last durable marker may be torn, and is not needed.
TEST(ChangelogTest, ATornTailAfterTheMarkerIsIgnored) {
  test_support::TempDir tmp;
  const std::string dir = tmp.File("log");
  {
    auto log = ChangelogWriter::Open(ChangelogOptions{dir});
    ASSERT_TRUE(log.ok());
    PutKey(**log, 1, 10);
    ASSERT_TRUE((*log)->Mark(1, 5).ok());
    PutKey(**log, 2, 10);
    PutKey(**log, 3, 10);
  }
  const fs::path segment = fs::path(dir) / "000000000000.log";
  const auto size = fs::file_size(segment);
  for (uintmax_t cut : {size - 1, size - 20, size - 30}) {
    fs::resize_file(segment, cut);
    Seen seen;
    ASSERT_TRUE(Replay(dir, 1, seen).ok()) << "cut at " << cut;
    EXPECT_EQ(seen.keys, (std::vector<uint64_t>{1}));
  }
  // Garbage instead of a record (a crc that does not match) ends the log too.
  std::ofstream(segment, std::ios::app | std::ios::binary) << std::string(40, '\x7f');
  Seen seen;
  ASSERT_TRUE(Replay(dir, 1, seen).ok());
  // A log torn before the marker asked for cannot give that state.
  fs::resize_file(segment, 30);
  Seen torn;
  Status st = Replay(dir, 1, torn);
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_NE(st.message().find("marker of epoch 1"), std::string::npos) << st.message();
}

TEST(ChangelogTest, SegmentsRollAtMarkersAndReleaseDeletesWhatNoCheckpointNeeds) {
  test_support::TempDir tmp;
  const std::string dir = tmp.File("log");
  auto log = ChangelogWriter::Open(ChangelogOptions{dir, /*segment_bytes=*/1, 1 << 20});
  ASSERT_TRUE(log.ok());
  // Segment e-1 holds key e (horizon 100 e) and marker e (watermark 100 e).
  for (uint64_t e = 1; e <= 5; ++e) {
    PutKey(**log, e, static_cast<int64_t>(100 * e));
    Result<ChangelogPosition> at = (*log)->Mark(e, static_cast<int64_t>(100 * e));
    ASSERT_TRUE(at.ok());
    EXPECT_EQ(at->segment, e - 1);
  }
  ASSERT_TRUE((*log)->WaitDurable(5).ok());
  const auto segments = [&] {
    size_t n = 0;
    for (const auto& f : fs::directory_iterator(dir)) n += f.path().extension() == ".log";
    return n;
  };
  EXPECT_EQ(segments(), 6u) << "five closed, one open";
  const uint64_t before = ChangelogDiskBytes(dir);
  // Oldest kept checkpoint 3 (watermark 300): segments 0 and 1 (horizons
  // 100, 200, closed by markers 1, 2) go; segment 2 holds marker 3 itself.
  ASSERT_TRUE((*log)->Release(3).ok());
  EXPECT_EQ(segments(), 4u);
  EXPECT_FALSE(fs::exists(fs::path(dir) / "000000000000.log"));
  EXPECT_TRUE(fs::exists(fs::path(dir) / "000000000002.log"));
  EXPECT_LT(ChangelogDiskBytes(dir), before);
  Seen seen;
  ASSERT_TRUE(Replay(dir, 3, seen).ok()) << "checkpoint 3 is still restorable";
  EXPECT_EQ(seen.keys, (std::vector<uint64_t>{3}));
  // An epoch this log never marked (another generation's) deletes nothing.
  ASSERT_TRUE((*log)->Release(99).ok());
  EXPECT_EQ(segments(), 4u);
}

// Damage anywhere but at the end of the last segment is not a torn tail:
// skipping it could drop a key's later put and bring an older one back.
TEST(ChangelogTest, DamageBeforeTheLastSegmentIsCorruption) {
  test_support::TempDir tmp;
  const std::string dir = tmp.File("log");
  {
    auto log = ChangelogWriter::Open(ChangelogOptions{dir, /*segment_bytes=*/1, 1 << 20});
    ASSERT_TRUE(log.ok());
    for (uint64_t e = 1; e <= 3; ++e) {
      PutKey(**log, e, 1000);
      ASSERT_TRUE((*log)->Mark(e, 0).ok());
    }
    ASSERT_TRUE((*log)->WaitDurable(3).ok());
  }
  const fs::path first = fs::path(dir) / "000000000000.log";
  {
    std::fstream f(first, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(12);
    f.put('\x5a');  // inside the first put's body: its CRC no longer matches
  }
  Seen seen;
  Status st = Replay(dir, 3, seen);
  EXPECT_EQ(st.code(), StatusCode::kCorruption) << st.ToString();
  EXPECT_NE(st.message().find("000000000000.log"), std::string::npos) << st.message();
}

TEST(ShardChangelogsTest, ARunWritesANewGenerationAndDropsTheRestoredOneLater) {
  test_support::TempDir tmp;
  const std::string root = tmp.File("changelog");
  {
    auto first = ShardChangelogs::Open(root, 2, 0, {}, ChangelogOptions{});
    ASSERT_TRUE(first.ok()) << first.status().ToString();
    EXPECT_EQ((*first)->generation(), 1u);
    PutKey(*(*first)->shard(1), 42, 10);
    ASSERT_TRUE((*first)->shard(0)->Mark(7, 0).ok());
    ASSERT_TRUE((*first)->shard(1)->Mark(7, 0).ok());
  }
  // A run that died before its first checkpoint, and an older generation
  // that a kept checkpoint still names (it may be chosen with
  // --from-checkpoint).
  fs::create_directories(root + "/gen-5/shard-0");
  fs::create_directories(root + "/gen-0/shard-0");
  auto second =
      ShardChangelogs::Open(root, 3, /*restored=*/1, /*kept=*/{{6, 0}, {7, 1}}, ChangelogOptions{});
  ASSERT_TRUE(second.ok());
  EXPECT_EQ((*second)->generation(), 2u);
  EXPECT_FALSE(fs::exists(root + "/gen-5"));
  EXPECT_TRUE(fs::exists(root + "/gen-0"));
  Seen seen;
  ASSERT_TRUE(Replay((*second)->ReadDir(1, 1), 7, seen).ok());
  EXPECT_EQ(seen.keys, (std::vector<uint64_t>{42}));
  EXPECT_TRUE(fs::exists(root + "/gen-2/shard-2"));
  // Kept checkpoints still include the restored one: generation 1 stays;
  // generation 0, named only by checkpoint 6, goes.
  ASSERT_TRUE((*second)->Release(7).ok());
  EXPECT_TRUE(fs::exists(root + "/gen-1"));
  EXPECT_FALSE(fs::exists(root + "/gen-0"));
  ASSERT_TRUE((*second)->Release(8).ok());
  EXPECT_FALSE(fs::exists(root + "/gen-1"));
  EXPECT_FALSE(fs::exists(root + "/gen-0"));
  EXPECT_TRUE(fs::exists(root + "/gen-2"));
}

// Mode group: an outbox writer hands its log over as chunks (one ends at
// every marker, none is larger than kOutboxChunkBytes unless one record
// is); the chunks, concatenated in order as a task's changelog partition
// holds them, replay to the end.
TEST(ChangelogTest, AnOutboxWriterHandsOverChunksThatReplayToTheEnd) {
  std::unique_ptr<ChangelogWriter> log = ChangelogWriter::OpenOutbox();
  PutKey(*log, 1, 100);
  PutKey(*log, 2, 100);
  ASSERT_TRUE(log->Mark(1, 50).ok());
  std::vector<ChangelogWriter::OutboxChunk> chunks = log->TakeOutbox();
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0].max_horizon, 100);
  EXPECT_EQ(chunks[0].watermark, 50);
  EXPECT_TRUE(log->TakeOutbox().empty());
  EXPECT_TRUE(log->WaitDurable(1).ok());  // durable with the epoch's transaction

  // Many puts: several chunks before the marker, each within the bound.
  const std::string big(1000, 'x');
  for (uint64_t key = 10; key < 1500; ++key) log->Put(key, 200, big);
  PutKey(*log, 3, 300);
  ASSERT_TRUE(log->Mark(2, 60).ok());
  std::vector<ChangelogWriter::OutboxChunk> more = log->TakeOutbox();
  ASSERT_GT(more.size(), 2u);
  for (const auto& c : more) EXPECT_LE(c.bytes.size(), kOutboxChunkBytes + 1100);
  // Each chunk knows the latest deadline of its puts (what trimming the
  // changelog topic goes by) and, if it ends at a marker, its watermark.
  EXPECT_EQ(more.front().max_horizon, 200);
  EXPECT_FALSE(more.front().watermark.has_value());
  EXPECT_EQ(more.back().max_horizon, 300);
  EXPECT_EQ(more.back().watermark, 60);
  ASSERT_TRUE(log->Mark(3, 70).ok());
  std::vector<ChangelogWriter::OutboxChunk> marker_only = log->TakeOutbox();
  ASSERT_EQ(marker_only.size(), 1u);
  EXPECT_EQ(marker_only[0].max_horizon, std::numeric_limits<int64_t>::min()) << "no put";
  more.insert(more.end(), marker_only.begin(), marker_only.end());
  chunks.insert(chunks.end(), more.begin(), more.end());

  test_support::TempDir tmp;
  const std::string dir = tmp.File("restore");
  fs::create_directories(dir);
  {
    std::ofstream out(dir + "/000000000000.log", std::ios::binary);
    for (const auto& c : chunks) out << c.bytes;
  }
  size_t puts = 0;
  std::vector<uint64_t> epochs;
  std::vector<int64_t> watermarks;
  ASSERT_TRUE(ReadChangelog(dir, kChangelogEnd, [&](const ChangelogRecord& r) {
                if (r.type == 'p') ++puts;
                if (r.type == 'm') {
                  epochs.push_back(r.key_or_epoch);
                  watermarks.push_back(r.horizon_or_watermark);
                }
                return Status::Ok();
              }).ok());
  EXPECT_EQ(puts, 2u + 1490u + 1u);
  EXPECT_EQ(epochs, (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(watermarks, (std::vector<int64_t>{50, 60, 70}));

  // To the end means to a whole end: a torn last record is damage there.
  {
    std::ofstream out(dir + "/000000000000.log", std::ios::binary | std::ios::app);
    out << "torn";
  }
  EXPECT_EQ(
      ReadChangelog(dir, kChangelogEnd, [](const ChangelogRecord&) { return Status::Ok(); }).code(),
      StatusCode::kCorruption);
}

}  // namespace
}  // namespace ctrjoin
