#include "sinks/file_sink.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <thread>

#include "tests/support/temp_dir.h"

namespace ctrjoin {
namespace {

// sink.path /dev/stdout or a FIFO: Flush flushes and does not fsync (which
// fails with EINVAL on a pipe), so the run does not fail at its end.
TEST(LineWriterTest, APipeIsFlushedNotSynced) {
  test_support::TempDir dir;
  const std::string fifo = dir.File("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string read;
  std::thread reader([&] {
    std::ifstream in(fifo);
    std::getline(in, read);
  });
  auto writer = LineWriter::OpenFile(fifo, /*append=*/false);
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  EXPECT_TRUE((*writer)->WriteLine("{\"a\":1}").ok());
  Status flushed = (*writer)->Flush();
  EXPECT_TRUE(flushed.ok()) << flushed.ToString();
  writer->reset();  // closes the FIFO: the reader sees the end
  reader.join();
  EXPECT_EQ(read, "{\"a\":1}");
}

TEST(LineWriterTest, ARegularFileIsFlushedAndSynced) {
  test_support::TempDir dir;
  auto writer = LineWriter::OpenFile(dir.File("out/x.jsonl"), /*append=*/false);
  ASSERT_TRUE(writer.ok());
  EXPECT_TRUE((*writer)->WriteLine("x").ok());
  EXPECT_TRUE((*writer)->Flush().ok());
  std::ifstream in(dir.File("out/x.jsonl"));
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "x");
}

// Without checkpoints, sink.roll_bytes: parts named for a glob, the last
// closed at Flush, nothing left in staging; a second run goes on numbering.
TEST(RolledFileSampleSinkTest, PartsRollBySizeAndTheLastAtFlush) {
  test_support::TempDir dir;
  for (int run = 0; run < 2; ++run) {
    auto sink = RolledFileSampleSink::Open(
        {dir.string(), SampleFormat::kJson, FileCompression::kNone, /*roll_bytes=*/500, 0});
    ASSERT_TRUE(sink.ok()) << sink.status().ToString();
    std::vector<Sample> samples(3);
    for (int i = 0; i < 10; ++i) ASSERT_TRUE((*sink)->Write(samples).ok());
    ASSERT_TRUE((*sink)->Flush().ok());
  }
  std::vector<std::string> parts;
  size_t lines = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    const std::string name = e.path().filename().string();
    if (name == "_staging") {
      EXPECT_TRUE(std::filesystem::is_empty(e.path()));
      continue;
    }
    parts.push_back(name);
    std::ifstream in(e.path());
    for (std::string l; std::getline(in, l);) ++lines;
  }
  std::sort(parts.begin(), parts.end());
  EXPECT_EQ(lines, 60u);
  ASSERT_GE(parts.size(), 4u);
  EXPECT_EQ(parts.front(), "part-00000000000000000000.jsonl");
  EXPECT_EQ(parts.back(), "part-" + fmt::format("{:020d}", parts.size() - 1) + ".jsonl");
}

}  // namespace
}  // namespace ctrjoin
