// The ctrjoin binary as operators see it from outside.
// One log stream: against an unreachable broker and against a dead HBase
// server, under --log-format json, every stderr line must be one JSON object
// from our logger (librdkafka's and Thrift's lines included, which they would
// otherwise print raw), and repeats must be rate-limited rather than one line
// per reconnect.
// Bounded stop: a SIGTERM while lookups wait for a dead store ends the
// process within shutdown.timeout_ms, with exit code 4.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <simdjson.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <vector>

#include "src/app/app.h"
#include "src/io/workload.h"
#include "tests/support/child_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/trace_oracle.h"

namespace ctrjoin {
namespace {

using namespace std::chrono_literals;

// A port on 127.0.0.1 that nothing listens on (bound, then closed).
int DeadPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// Runs `ctrjoin run --config <yaml> --log-format json` for `run_for`, then
// stops it (SIGTERM, then SIGKILL after 10 s); returns its stderr lines.
std::vector<std::string> RunAndCollect(const test_support::TempDir& dir, const std::string& yaml,
                                       std::chrono::milliseconds run_for) {
  const std::string config = dir.File("job.yaml");
  std::ofstream(config) << yaml;
  test_support::Child child(CTRJOIN_BINARY, {"--log-format", "json", "run", "--config", config},
                            dir.File("stderr.log"));
  if (!child.WaitExit(run_for)) {
    child.Signal(SIGTERM);
    if (!child.WaitExit(10s)) child.Signal(SIGKILL);
    child.WaitExit(10s);
  }
  return test_support::ReadLines(dir.File("stderr.log"));
}

// Every line is {"ts": "...", "level": "...", "msg": "..."}; returns the msgs.
std::vector<std::string> ExpectAllJson(const std::vector<std::string>& lines) {
  simdjson::dom::parser parser;
  std::vector<std::string> msgs;
  for (const std::string& line : lines) {
    simdjson::dom::element doc;
    std::string_view ts, level, msg;
    if (parser.parse(line).get(doc) || doc["ts"].get(ts) || doc["level"].get(level) ||
        doc["msg"].get(msg)) {
      ADD_FAILURE() << "not one of our JSON log lines: " << line;
      continue;
    }
    msgs.emplace_back(msg);
  }
  return msgs;
}

size_t CountStartingWith(const std::vector<std::string>& msgs, const std::string& prefix) {
  size_t n = 0;
  for (const std::string& m : msgs) n += m.starts_with(prefix);
  return n;
}

// A job whose every impression waits for a dead HBase server (lookups wait
// however long it takes: emit_partial is off).
std::string DeadHBaseJob(const test_support::TempDir& dir, const std::string& extra) {
  GenerateOptions gen{dir.File("imp.jsonl"), dir.File("clk.jsonl"), "", 2'000};
  EXPECT_TRUE(GenerateTrace(gen, test_support::OracleWorkload(3, 10'000)).ok());
  return fmt::format(R"(
source: {{type: files, files: {{impressions: {}, clicks: {}}}}}
lookups: [{{name: user, table: users}}]
lookup: {{retry_initial_ms: 1, retry_max_ms: 5}}
feature_store: {{type: hbase, hbase: {{port: {}, connect_timeout_ms: 50}}}}
sink: {{type: file, path: {}}}
state: {{dir: {}}}
http: {{enabled: false}}
{}
)",
                     gen.impressions_path, gen.clicks_path, DeadPort(), dir.File("out.jsonl"),
                     dir.File("state"), extra);
}

TEST(LogStreamTest, AnUnreachableBrokerLogsOnlyJsonThroughOurLogger) {
  test_support::TempDir dir;
  const std::string yaml = fmt::format(R"(
source:
  type: kafka
  kafka: {{brokers: "127.0.0.1:{}", impressions_topic: imp, clicks_topic: clk,
          properties: {{reconnect.backoff.ms: "10", reconnect.backoff.max.ms: "50"}}}}
sink: {{type: stdout}}
state: {{dir: {}}}
http: {{enabled: false}}
)",
                                       DeadPort(), dir.File("state"));
  const std::vector<std::string> msgs = ExpectAllJson(RunAndCollect(dir, yaml, 6s));
  const size_t librdkafka = CountStartingWith(msgs, "librdkafka: ");
  EXPECT_GT(librdkafka, 0u) << "librdkafka's lines go through our logger";
  // Reconnecting every 10-50 ms for 6 s is hundreds of attempts; the log
  // keeps a few lines per facility and 10 s.
  EXPECT_LT(librdkafka, 60u) << "repeats are rate-limited";
}

TEST(LogStreamTest, ADeadHBaseServerLogsOnlyJsonThroughOurLogger) {
  test_support::TempDir dir;
  const std::vector<std::string> msgs =
      ExpectAllJson(RunAndCollect(dir, DeadHBaseJob(dir, ""), 5s));
  const size_t thrift = CountStartingWith(msgs, "thrift: ");
  EXPECT_GT(thrift, 0u) << "Thrift's lines go through our logger";
  EXPECT_LT(thrift, 60u) << "repeats are rate-limited (thousands of failed connects)";
  size_t outage_lines = 0;
  for (const std::string& m : msgs) {
    outage_lines += m.starts_with("HBase Thrift2 127.0.0.1:") &&
                    m.find(" unreachable since ") != std::string::npos;
  }
  EXPECT_EQ(outage_lines, 1u) << "one line for the whole outage";
}

TEST(ProcessTest, AStopThatCannotFinishEndsAtShutdownTimeoutWithExit4) {
  test_support::TempDir dir;
  const std::string config = dir.File("job.yaml");
  std::ofstream(config) << DeadHBaseJob(dir, "shutdown: {timeout_ms: 1500}");
  test_support::Child child(CTRJOIN_BINARY, {"run", "--config", config}, dir.File("stderr.log"));
  ASSERT_FALSE(child.WaitExit(2s)) << "the run waits for the store: " << child.Log();
  const auto stopped = std::chrono::steady_clock::now();
  child.Signal(SIGTERM);
  ASSERT_TRUE(child.WaitExit(15s)) << "the stop was not bounded:\n" << child.Log();
  const auto took = std::chrono::steady_clock::now() - stopped;
  EXPECT_EQ(child.exit_code(), 4) << child.Describe() << "\n" << child.Log();
  EXPECT_GE(took, 1500ms);
  EXPECT_NE(child.Log().find("shutdown: still stopping after 1500 ms (shutdown.timeout_ms)"),
            std::string::npos)
      << child.Log();
  std::printf(
      "stopped %lld ms after SIGTERM\n",
      static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
}

// `ctrjoin bench` as a user runs it: the demo's configuration, a short
// sweep, the table on stdout, the JSON written; bad options exit 2.
TEST(ProcessTest, BenchOnTheDemoConfigurationPrintsItsTableAndWritesItsJson) {
  test_support::TempDir dir;
  const std::string json = dir.File("bench.json");
  test_support::Child child(CTRJOIN_BINARY,
                            {"bench", "--demo", "--events", "20000", "--loads", "0.5,1",
                             "--seconds-per-load", "0.5", "--progress", "log", "--json", json},
                            dir.File("out.log"));
  ASSERT_TRUE(child.WaitExit(120s)) << child.Log();
  EXPECT_EQ(child.exit_code(), 0) << child.Log();
  const std::string log = child.Log();
  for (const char* line : {"ctrjoin bench: the demo's configuration", "\npeak ", "\nload-50% ",
                           "\nload-100% ", ": agrees\n"}) {
    EXPECT_NE(log.find(line), std::string::npos) << line << " in\n" << log;
  }
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.load(json).get(doc), simdjson::SUCCESS);
  bool agrees = false;
  EXPECT_EQ(doc["oracle"]["agrees"].get(agrees), simdjson::SUCCESS);
  EXPECT_TRUE(agrees);

  for (const std::vector<std::string>& args : {std::vector<std::string>{"bench"},
                                               {"bench", "--demo", "--loads", "2"},
                                               {"bench", "--demo", "--input", "tape"},
                                               {"bench", "--demo", "--config", json}}) {
    test_support::Child bad(CTRJOIN_BINARY, args, dir.File("bad.log"));
    ASSERT_TRUE(bad.WaitExit(30s));
    EXPECT_EQ(bad.exit_code(), 2) << fmt::format("{}", fmt::join(args, " ")) << "\n" << bad.Log();
  }
}

}  // namespace
}  // namespace ctrjoin
