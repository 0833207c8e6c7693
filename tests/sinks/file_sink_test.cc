#include "sinks/file_sink.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

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

}  // namespace
}  // namespace ctrjoin
