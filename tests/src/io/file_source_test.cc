#include "src/io/file_source.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/support/temp_dir.h"

namespace ctrjoin {
namespace {

class FileSourceTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& text) {
    const auto p = (dir_ / name).string();
    std::ofstream(p) << text;
    return p;
  }
  test_support::TempDir dir_;
};

TEST_F(FileSourceTest, MergesByEventTimeAndReportsEnd) {
  FileSourceOptions o;
  o.impressions_path =
      Write("i.jsonl",
            "{\"impression_id\":\"a\",\"user_id\":\"u\",\"item_id\":\"i\",\"ts\":10}\n"
            "\n"
            "{\"impression_id\":\"b\",\"user_id\":\"u\",\"item_id\":\"i\",\"ts\":30}\n");
  o.clicks_path = Write("c.jsonl",
                        "{\"impression_id\":\"a\",\"ts\":20}\n"
                        "garbage\n"
                        "{\"impression_id\":\"b\",\"ts\":40}\n");
  auto source = FileSource::Open(o, SchemaOptions{});
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  std::vector<RawRecord> all;
  bool ended = false;
  size_t finished = 0, assigned = 0;
  for (int i = 0; i < 10 && !ended; ++i) {
    auto batch = (*source)->Next(2);
    ASSERT_TRUE(batch.ok());
    for (auto& r : batch->records) all.push_back(r);
    finished += batch->finished.size();
    assigned += batch->assigned.size();
    ended = batch->end_of_input;
  }
  ASSERT_TRUE(ended);
  EXPECT_EQ(assigned, 2u);
  EXPECT_EQ(finished, 2u);
  ASSERT_EQ(all.size(), 5u);
  // Order: imp a (10), click a (20), garbage (no ts: at once), imp b (30), click b (40).
  EXPECT_EQ(all[0].pos.stream, StreamKind::kImpression);
  EXPECT_EQ(all[0].pos.offset.value, 1);
  EXPECT_EQ(all[1].pos.stream, StreamKind::kClick);
  EXPECT_EQ(all[2].payload, "garbage");
  EXPECT_EQ(all[2].pos.offset.value, 2);
  EXPECT_EQ(all[3].pos.offset.value, 3);  // the blank line still counts
  EXPECT_EQ(all[4].payload, "{\"impression_id\":\"b\",\"ts\":40}");
}

TEST_F(FileSourceTest, FarFutureLineDoesNotHoldBackTheOtherFile) {
  FileSourceOptions o;
  o.impressions_path = Write(
      "i.jsonl",
      "{\"impression_id\":\"x\",\"user_id\":\"u\",\"item_id\":\"i\",\"ts\":9000000000000000}\n"
      "{\"impression_id\":\"a\",\"user_id\":\"u\",\"item_id\":\"i\",\"ts\":10}\n");
  o.clicks_path = Write("c.jsonl", "{\"impression_id\":\"a\",\"ts\":20}\n");
  auto source = FileSource::Open(o, SchemaOptions{});
  ASSERT_TRUE(source.ok());
  auto batch = (*source)->Next(10);
  ASSERT_TRUE(batch.ok());
  ASSERT_EQ(batch->records.size(), 3u);
  // The far-future line goes first (to be dead-lettered), then event-time order.
  EXPECT_EQ(batch->records[1].pos.offset.value, 2);
  EXPECT_EQ(batch->records[1].pos.stream, StreamKind::kImpression);
  EXPECT_EQ(batch->records[2].pos.stream, StreamKind::kClick);
}

// A line rejected for a field other than ts does not steer the merge either:
// it goes at once, while its plausible ts would have held the file back.
TEST_F(FileSourceTest, ALineRejectedForAnotherFieldGoesAtOnce) {
  FileSourceOptions o;
  o.impressions_path =
      Write("i.jsonl",
            "{\"impression_id\":\"a\",\"user_id\":\"u\",\"item_id\":\"i\",\"ts\":10}\n"
            "{\"impression_id\":\"b\",\"user_id\":\"u\",\"item_id\":\"i\",\"ts\":30}\n");
  o.clicks_path = Write("c.jsonl",
                        "{\"impression_id\":true,\"ts\":25}\n"
                        "{\"impression_id\":\"a\",\"ts\":20}\n");
  auto source = FileSource::Open(o, SchemaOptions{});
  ASSERT_TRUE(source.ok());
  auto batch = (*source)->Next(10);
  ASSERT_TRUE(batch.ok());
  ASSERT_EQ(batch->records.size(), 4u);
  EXPECT_EQ(batch->records[0].pos.stream, StreamKind::kClick);  // the bad line, at once
  EXPECT_EQ(batch->records[0].pos.offset.value, 1);
  EXPECT_EQ(batch->records[1].pos.stream, StreamKind::kImpression);  // a, 10
  EXPECT_EQ(batch->records[2].pos.stream, StreamKind::kClick);       // click a, 20
  EXPECT_EQ(batch->records[3].pos.stream, StreamKind::kImpression);  // b, 30
}

// A file whose head the merge holds back is reported pending in the batch,
// with the head's ts (the router then never takes it for idle); a finished
// one is not.
TEST_F(FileSourceTest, AHeldBackFileIsReportedPending) {
  FileSourceOptions o;
  o.impressions_path =
      Write("i.jsonl",
            "{\"impression_id\":\"a\",\"user_id\":\"u\",\"item_id\":\"i\",\"ts\":10}\n"
            "{\"impression_id\":\"b\",\"user_id\":\"u\",\"item_id\":\"i\",\"ts\":20}\n");
  o.clicks_path = Write("c.jsonl", "{\"impression_id\":\"a\",\"ts\":5000}\n");
  auto source = FileSource::Open(o, SchemaOptions{});
  ASSERT_TRUE(source.ok());
  auto first = (*source)->Next(1);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->records.size(), 1u);
  using Pending = std::vector<std::pair<PartitionId, EventTime>>;
  EXPECT_EQ(first->pending, (Pending{{{StreamKind::kImpression, 0}, EventTime{20}},
                                     {{StreamKind::kClick, 0}, EventTime{5000}}}));
  auto second = (*source)->Next(1);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->pending, (Pending{{{StreamKind::kClick, 0}, EventTime{5000}}}));
  EXPECT_EQ(second->finished, (std::vector<PartitionId>{{StreamKind::kImpression, 0}}));
}

TEST_F(FileSourceTest, MissingFileIsNamed) {
  FileSourceOptions o;
  o.impressions_path = (dir_ / "nope.jsonl").string();
  o.clicks_path = Write("c.jsonl", "");
  auto source = FileSource::Open(o, SchemaOptions{});
  ASSERT_FALSE(source.ok());
  EXPECT_NE(source.status().message().find("source.files.impressions"), std::string::npos);
  EXPECT_NE(source.status().message().find("nope.jsonl"), std::string::npos);
}

}  // namespace
}  // namespace ctrjoin
