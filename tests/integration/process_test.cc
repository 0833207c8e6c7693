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
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "src/app/app.h"
#include "src/io/kafka_client.h"
#include "src/io/workload.h"
#include "tests/support/child_process.h"
#include "tests/support/hbase_server.h"
#include "tests/support/http_client.h"
#include "tests/support/kafka_broker/broker.h"
#include "tests/support/kafka_test_util.h"
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

// An HBase server that answers the job's start-up probe (the table and
// family exist), holds every later call, and dies once the job has sent
// its first lookup (Kill): from then on the job's store is dead.
class DyingHBase {
 public:
  DyingHBase() {
    auto started = test_support::TestHBaseServer::Start({});
    EXPECT_TRUE(started.ok()) << started.status().ToString();
    server_ = std::move(started).value();
    EXPECT_TRUE(server_->CreateTable("users", {{"f", 3}}).ok());
    server_->SetFaults({.stall = true, .serve_first = 1});
  }
  int port() const { return server_->port(); }
  // Waits (up to 30 s) for the probe and a held lookup, then stops the server.
  void KillOnceTheJobLooksUp() {
    const auto until = std::chrono::steady_clock::now() + 30s;
    while (server_->counts().get_multiple == 0 && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(10ms);
    }
    EXPECT_GE(server_->counts().get_table_descriptor, 1);
    EXPECT_GE(server_->counts().get_multiple, 1) << "the job never looked up";
    server_->Stop();
  }

 private:
  std::unique_ptr<test_support::TestHBaseServer> server_;
};

// A job whose every impression waits for an HBase server that dies after
// the start-up probe (lookups wait however long it takes: emit_partial is
// off).
std::string DeadHBaseJob(const test_support::TempDir& dir, int port, const std::string& extra) {
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
                     gen.impressions_path, gen.clicks_path, port, dir.File("out.jsonl"),
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
  DyingHBase hbase;
  std::thread kill([&] { hbase.KillOnceTheJobLooksUp(); });
  const std::vector<std::string> msgs =
      ExpectAllJson(RunAndCollect(dir, DeadHBaseJob(dir, hbase.port(), ""), 5s));
  kill.join();
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
  DyingHBase hbase;
  std::ofstream(config) << DeadHBaseJob(dir, hbase.port(), "shutdown: {timeout_ms: 1500}");
  test_support::Child child(CTRJOIN_BINARY, {"run", "--config", config}, dir.File("stderr.log"));
  hbase.KillOnceTheJobLooksUp();
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

// `ctrjoin demo` shows the product: exactly once by default, on the
// in-process test broker, with committed epochs and visibility in its
// progress; what read_committed consumers see holds every sample written,
// once; every stderr line (the broker's included) is one of our JSON lines.
TEST(ProcessTest, TheDemoRunsExactlyOnceOnTheInProcessBrokerAndShowsWhatIsCommitted) {
  test_support::TempDir dir;
#ifdef __SANITIZE_THREAD__
  const char* duration = "40";  // TSan's slowdown: loading the features alone takes seconds
#else
  const char* duration = "8";
#endif
  test_support::Child child(CTRJOIN_BINARY,
                            {"--log-format", "json", "demo", "--duration", duration, "--rate",
                             "500", "--window-ms", "2000", "--state-dir", dir.File("demo")},
                            dir.File("out.log"));
  ASSERT_TRUE(child.WaitExit(120s)) << child.Log();
  EXPECT_EQ(child.exit_code(), 0) << child.Log();
  const std::vector<std::string> lines = test_support::ReadLines(dir.File("out.log"));
  std::vector<std::string> json;
  int64_t last_epoch = -1;
  bool banner = false, summary = false, signal = false;
  for (const std::string& line : lines) {
    if (line.starts_with("{")) {
      json.push_back(line);
      continue;
    }
    banner |= line.find("ctrjoin's in-process test broker") != std::string::npos &&
              line.find("exactly once") != std::string::npos;
    signal |= line.starts_with("click rate by position:");
    if (const size_t at = line.find("committed epoch "); at != std::string::npos) {
      last_epoch = std::stoll(line.substr(at + 16));
      EXPECT_NE(line.find("read->visible p99 "), std::string::npos) << line;
    }
    unsigned long long visible = 0, written = 0, duplicates = 0, epochs = 0;
    if (std::sscanf(line.c_str(),
                    "%llu of %llu samples written are visible to read_committed consumers, %llu "
                    "duplicate sample ids, %llu epochs committed",
                    &visible, &written, &duplicates, &epochs) == 4) {
      summary = true;
      EXPECT_GT(written, 500u) << line << " (negatives included)";
      EXPECT_EQ(visible, written) << line;
      EXPECT_EQ(duplicates, 0u) << line;
      EXPECT_GE(epochs, 3u) << line;
    } else {
      EXPECT_TRUE(line.starts_with("[") || line.starts_with("  sample: {") ||
                  line.starts_with("ctrjoin demo:") || line.starts_with("click rate"))
          << "a line neither progress nor ours: " << line;
    }
  }
  EXPECT_TRUE(banner) << child.Log();
  EXPECT_TRUE(summary) << child.Log();
  EXPECT_TRUE(signal) << child.Log();
  EXPECT_GE(last_epoch, 2) << child.Log();
  ExpectAllJson(json);
}

// A job whose brokers are at 127.0.0.1:<broker_port>, serving HTTP on
// 127.0.0.1:<http_port>.
std::string KafkaJob(const test_support::TempDir& dir, uint16_t broker_port, uint16_t http_port,
                     const std::string& extra, const std::string& http_extra = "") {
  return fmt::format(R"(
source:
  type: kafka
  kafka: {{brokers: "127.0.0.1:{}", group_id: job, start: earliest, poll_timeout_ms: 50}}
sink: {{type: file, path: {}}}
state: {{dir: {}}}
http: {{enabled: true, address: "127.0.0.1:{}"{}}}
{}
)",
                     broker_port, dir.File("out.jsonl"), dir.File("state"), http_port, http_extra,
                     extra);
}

// Polls url until its body contains `text` (true) or `timeout` passes.
bool WaitForBody(uint16_t port, const std::string& target, int status, const std::string& text,
                 std::chrono::milliseconds timeout, std::string* last) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    Result<test_support::HttpReply> r = test_support::HttpGet(port, target);
    if (r.ok()) {
      *last = fmt::format("{} {}", r->status, r->body);
      if (r->status == status && r->body.find(text) != std::string::npos) return true;
    } else {
      *last = r.status().ToString();
    }
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

// Start-up while the broker is down: HTTP serves at once, /healthz is ok,
// /ready says what start-up waits for; once the broker is up the run goes
// on and becomes ready.
TEST(ProcessTest, AStartWhileTheBrokerIsDownServesHttpSaysWhyAndGoesOnWhenItAnswers) {
  test_support::TempDir dir;
  const uint16_t broker_port = test_support::FreeLoopbackPort().value();
  const uint16_t http_port = test_support::FreeLoopbackPort().value();
  const std::string config = dir.File("job.yaml");
  std::ofstream(config) << KafkaJob(dir, broker_port, http_port, "");
  test_support::Child child(CTRJOIN_BINARY, {"run", "--config", config}, dir.File("run.log"));
  std::string last;
  ASSERT_TRUE(WaitForBody(http_port, "/ready", 503, "not ready: starting: opening source.kafka",
                          10s, &last))
      << last << "\n"
      << child.Log();
  ASSERT_TRUE(WaitForBody(http_port, "/healthz", 200, "ok", 5s, &last)) << last;
  ASSERT_TRUE(WaitForBody(http_port, "/ready", 503,
                          "not ready: starting: waiting for source.kafka (brokers 127.0.0.1:", 30s,
                          &last))
      << last << "\n"
      << child.Log();
  EXPECT_NE(child.Log().find("start-up: source.kafka (brokers 127.0.0.1:"), std::string::npos)
      << child.Log();

  testbroker::BrokerOptions bo;
  bo.port = broker_port;
  bo.default_partitions = 1;
  auto broker = testbroker::TestBroker::Start(bo);
  ASSERT_TRUE(broker.ok()) << broker.status().ToString();
  GenerateOptions gen{dir.File("imp.jsonl"), dir.File("clk.jsonl"), "", 200};
  ASSERT_TRUE(GenerateTrace(gen, test_support::OracleWorkload(9, 10'000)).ok());
  auto producer = BulkProducer::Open({{"bootstrap.servers", (*broker)->bootstrap()}});
  ASSERT_TRUE(producer.ok());
  for (auto [topic, file] : {std::pair{"impressions", dir.File("imp.jsonl")},
                             std::pair{"clicks", dir.File("clk.jsonl")}}) {
    ASSERT_TRUE(test_support::ProduceLines(**producer, topic, file, 1).ok());
  }
  ASSERT_TRUE(WaitForBody(http_port, "/ready", 200, "ready", 60s, &last)) << last << "\n"
                                                                          << child.Log();
  EXPECT_NE(child.Log().find("start-up: source.kafka (brokers 127.0.0.1:"), std::string::npos);
  EXPECT_NE(child.Log().find("answered after"), std::string::npos) << child.Log();
  child.Signal(SIGTERM);
  ASSERT_TRUE(child.WaitExit(30s)) << child.Log();
  EXPECT_EQ(child.exit_code(), 0) << child.Log();
}

// Mode group (src/README.md, "Scaling out"): a job's processes share its
// partitions, and each holds partition p of both topics (a task), whose
// state goes when the task moves to another process; inputs
// that are not co-partitioned are refused at start (exit 2, saying what to
// fix).
// http_port 0: no HTTP endpoint.
std::string GroupJob(const test_support::TempDir& dir, const std::string& bootstrap,
                     const std::string& name, const std::string& topics = "",
                     uint16_t http_port = 0) {
  return fmt::format(R"(
source:
  type: kafka
  kafka: {{brokers: "{}", group_id: shared, mode: group, poll_timeout_ms: 50{}}}
sink: {{type: file, path: {}}}
state: {{dir: {}}}
http: {{enabled: {}, address: "127.0.0.1:{}"}}
)",
                     bootstrap, topics, dir.File("out-" + name + ".jsonl"),
                     dir.File("state-" + name), http_port != 0, http_port);
}

// The partitions of the last "source.kafka: assigned" line of log, by topic.
std::map<std::string, std::set<int>> LastAssignment(const std::string& log) {
  std::map<std::string, std::set<int>> by_topic;
  const size_t at = log.rfind("source.kafka: assigned ");
  if (at == std::string::npos) return by_topic;
  const std::string line = log.substr(at, log.find('\n', at) - at);
  static const std::regex topic_re(R"((\w+) \[([0-9, ]*)\])");
  for (std::sregex_iterator it(line.begin(), line.end(), topic_re), end; it != end; ++it) {
    std::set<int>& ids = by_topic[(*it)[1]];
    std::stringstream list((*it)[2]);
    for (std::string id; std::getline(list, id, ',');) ids.insert(std::stoi(id));
  }
  return by_topic;
}

TEST(ProcessTest, InGroupModeEachProcessHoldsPartitionPOfBothTopics) {
  test_support::TempDir dir;
  testbroker::BrokerOptions bo;
  bo.default_partitions = 3;
  auto broker = testbroker::TestBroker::Start(bo);
  ASSERT_TRUE(broker.ok()) << broker.status().ToString();
  GenerateOptions gen;
  gen.brokers = (*broker)->bootstrap();
  gen.impressions = 300;
  ASSERT_TRUE(GenerateTrace(gen, test_support::OracleWorkload(9, 10'000)).ok());

  std::vector<std::unique_ptr<test_support::Child>> children;
  const uint16_t a_http = test_support::FreeLoopbackPort().value();
  for (const std::string name : {"a", "b"}) {
    const std::string config = dir.File(name + ".yaml");
    std::ofstream(config) << GroupJob(dir, (*broker)->bootstrap(), name, "",
                                      name == "a" ? a_http : 0);
    children.push_back(std::make_unique<test_support::Child>(
        CTRJOIN_BINARY, std::vector<std::string>{"run", "--config", config},
        dir.File(name + ".log")));
    // a first holds every task, then b joins.
    const auto until = std::chrono::steady_clock::now() + 30s;
    while (name == "a" && LastAssignment(children[0]->Log())["impressions"] != std::set{0, 1, 2} &&
           std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(50ms);
    }
  }
  // Until the group settles with both: each holds p of both topics, and
  // together they hold every partition once.
  const std::set<int> all = {0, 1, 2};
  std::map<std::string, std::set<int>> a, b;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    a = LastAssignment(children[0]->Log());
    b = LastAssignment(children[1]->Log());
    std::set<int> both = a["impressions"];
    both.insert(b["impressions"].begin(), b["impressions"].end());
    if (!a["impressions"].empty() && !b["impressions"].empty() && both == all) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_FALSE(a["impressions"].empty()) << children[0]->Log();
  EXPECT_FALSE(b["impressions"].empty()) << children[1]->Log();
  EXPECT_EQ(a["impressions"], a["clicks"]) << children[0]->Log();
  EXPECT_EQ(b["impressions"], b["clicks"]) << children[1]->Log();
  EXPECT_EQ(a["impressions"].size() + b["impressions"].size(), 3u);
  // a held every task before b came: it drops the state of those it lost.
  for (int task : b["impressions"]) {
    const std::string dropped =
        fmt::format("route: task {} was revoked; its state is dropped", task);
    const auto until = std::chrono::steady_clock::now() + 10s;
    while (children[0]->Log().find(dropped) == std::string::npos &&
           std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(50ms);
    }
    EXPECT_NE(children[0]->Log().find(dropped), std::string::npos) << children[0]->Log();
    EXPECT_FALSE(std::filesystem::exists(dir.File("state-a/live/task-" + std::to_string(task))));
  }
  // a's tasks, each with its own watermark and state size, on /metrics.
  std::string last;
  ASSERT_TRUE(WaitForBody(a_http, "/metrics", 200,
                          fmt::format("ctrjoin_tasks {}", a["impressions"].size()), 10s, &last))
      << last;
  for (int task : a["impressions"]) {
    for (const char* metric :
         {"ctrjoin_task_watermark_timestamp_seconds", "ctrjoin_task_state_entries"}) {
      EXPECT_NE(last.find(fmt::format("{}{{task=\"{}\"}}", metric, task)), std::string::npos)
          << metric << "\n"
          << last;
    }
  }
  for (auto& child : children) {
    EXPECT_NE(child->Log().find("impressions and clicks are co-partitioned"), std::string::npos)
        << child->Log();
    child->Signal(SIGTERM);
    ASSERT_TRUE(child->WaitExit(30s)) << child->Log();
    EXPECT_EQ(child->exit_code(), 0) << child->Log();
  }
}

TEST(ProcessTest, InGroupModeTopicsWithDifferentPartitionCountsAreRefused) {
  test_support::TempDir dir;
  auto broker = testbroker::TestBroker::Start({});
  ASSERT_TRUE(broker.ok()) << broker.status().ToString();
  auto producer = BulkProducer::Open({{"bootstrap.servers", (*broker)->bootstrap()}});
  ASSERT_TRUE(producer.ok());
  ASSERT_TRUE(CreateKafkaTopics((*producer)->get(), {{"imp2", 2}, {"clk3", 3}}, 10'000).ok());
  const std::string config = dir.File("job.yaml");
  std::ofstream(config) << GroupJob(dir, (*broker)->bootstrap(), "x",
                                    ", impressions_topic: imp2, clicks_topic: clk3");
  test_support::Child child(CTRJOIN_BINARY, {"run", "--config", config}, dir.File("run.log"));
  ASSERT_TRUE(child.WaitExit(30s)) << child.Log();
  EXPECT_EQ(child.exit_code(), 2) << child.Log();
  EXPECT_NE(child.Log().find("topic 'imp2' has 2 partitions and 'clk3' has 3"), std::string::npos)
      << child.Log();
}

// Past startup.timeout_ms the start gives up (exit 1, naming the key); a
// SIGTERM while start-up waits is a clean stop (exit 0).
TEST(ProcessTest, AStartThatWaitsGivesUpAfterStartupTimeoutOrStopsOnSigterm) {
  test_support::TempDir dir;
  const uint16_t broker_port = test_support::FreeLoopbackPort().value();
  const std::string config = dir.File("job.yaml");
  std::ofstream(config) << KafkaJob(dir, broker_port, test_support::FreeLoopbackPort().value(),
                                    "startup: {timeout_ms: 1000}");
  test_support::Child child(CTRJOIN_BINARY, {"run", "--config", config}, dir.File("run.log"));
  ASSERT_TRUE(child.WaitExit(60s)) << child.Log();
  EXPECT_EQ(child.exit_code(), 1) << child.Log();
  EXPECT_NE(child.Log().find("gave up on source.kafka"), std::string::npos) << child.Log();
  EXPECT_NE(child.Log().find("(startup.timeout_ms)"), std::string::npos) << child.Log();

  // A replay resolves its range under the same rule.
  test_support::Child replay(CTRJOIN_BINARY,
                             {"replay", "--config", config, "--output", dir.File("backfill")},
                             dir.File("replay.log"));
  ASSERT_TRUE(replay.WaitExit(60s)) << replay.Log();
  EXPECT_EQ(replay.exit_code(), 1) << replay.Log();
  EXPECT_NE(replay.Log().find("gave up on the replay range"), std::string::npos) << replay.Log();

  std::ofstream(config) << KafkaJob(dir, broker_port, test_support::FreeLoopbackPort().value(),
                                    "startup: {timeout_ms: 0}");
  test_support::Child waiting(CTRJOIN_BINARY, {"run", "--config", config}, dir.File("run2.log"));
  ASSERT_FALSE(waiting.WaitExit(12s)) << "start-up waits until stopped:\n" << waiting.Log();
  waiting.Signal(SIGTERM);
  ASSERT_TRUE(waiting.WaitExit(25s)) << waiting.Log();
  EXPECT_EQ(waiting.exit_code(), 0) << waiting.Log();
  EXPECT_NE(waiting.Log().find("start-up: stopped while waiting for source.kafka"),
            std::string::npos)
      << waiting.Log();
}

// Mode group with checkpoints: a start waits for the group's stable
// committed offsets while a transaction that sent offsets for them is open
// (KIP-447); a SIGTERM meanwhile ends the start cleanly (exit 0), not at the
// shutdown watchdog.
TEST(ProcessTest, ASigtermWhileTheStartWaitsForStableOffsetsEndsItCleanly) {
  test_support::TempDir dir;
  testbroker::BrokerOptions bo;
  bo.default_partitions = 2;
  auto broker = testbroker::TestBroker::Start(bo);
  ASSERT_TRUE(broker.ok()) << broker.status().ToString();
  const std::string brokers = (*broker)->bootstrap();
  auto conf = MakeKafkaConf({{"bootstrap.servers", brokers},
                             {"transactional.id", "someone-else"},
                             {"transaction.timeout.ms", "600000"}});
  ASSERT_TRUE(conf.ok());
  auto producer = MakeKafkaHandle(RD_KAFKA_PRODUCER, std::move(conf).value());
  ASSERT_TRUE(producer.ok());
  rd_kafka_t* rk = producer->get();
  ASSERT_TRUE(CreateKafkaTopics(rk, {{"impressions", 2}, {"clicks", 2}}, 10'000).ok());
  ASSERT_EQ(rd_kafka_init_transactions(rk, 10'000), nullptr);
  ASSERT_EQ(rd_kafka_begin_transaction(rk), nullptr);
  KafkaPartitionList offsets(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(offsets.get(), "impressions", 0)->offset = 0;
  rd_kafka_consumer_group_metadata_t* group = rd_kafka_consumer_group_metadata_new("job");
  rd_kafka_error_t* sent = rd_kafka_send_offsets_to_transaction(rk, offsets.get(), group, 10'000);
  rd_kafka_consumer_group_metadata_destroy(group);
  ASSERT_EQ(sent, nullptr) << rd_kafka_error_string(sent);
  // The transaction stays open while this producer lives.

  const std::string config = dir.File("job.yaml");
  std::ofstream(config) << fmt::format(R"(
source:
  type: kafka
  kafka: {{brokers: "{0}", group_id: job, mode: group, start: earliest}}
sink:
  type: kafka
  kafka: {{brokers: "{0}", topic: samples, transactional_id_prefix: job}}
state: {{dir: {1}}}
dead_letter: {{type: file, path: {2}}}
checkpoint: {{enabled: true, interval_ms: 200}}
http: {{enabled: false}}
)",
                                       brokers, dir.File("state"), dir.File("dead.jsonl"));
  test_support::Child child(CTRJOIN_BINARY, {"run", "--config", config}, dir.File("run.log"));
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline &&
         child.Log().find("waiting for stable committed offsets of group 'job'") ==
             std::string::npos) {
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_NE(child.Log().find("waiting for stable committed offsets of group 'job'"),
            std::string::npos)
      << child.Log();
  child.Signal(SIGTERM);
  ASSERT_TRUE(child.WaitExit(20s)) << child.Log();
  EXPECT_EQ(child.exit_code(), 0) << child.Log();
  EXPECT_NE(child.Log().find("start-up: stopped while recovering"), std::string::npos)
      << child.Log();
}

// Readiness through a broker outage: ready, then not ready (naming the
// brokers) once they have not answered for the grace, then ready again once
// records flow.
TEST(ProcessTest, ReadinessFollowsABrokerOutageAndItsEnd) {
  test_support::TempDir dir;
  testbroker::BrokerOptions bo;
  bo.port = test_support::FreeLoopbackPort().value();
  bo.default_partitions = 1;
  auto broker = testbroker::TestBroker::Start(bo);
  ASSERT_TRUE(broker.ok()) << broker.status().ToString();
  GenerateOptions gen{dir.File("imp.jsonl"), dir.File("clk.jsonl"), "", 200};
  ASSERT_TRUE(GenerateTrace(gen, test_support::OracleWorkload(4, 10'000)).ok());
  auto produce = [&] {
    auto producer = BulkProducer::Open({{"bootstrap.servers", (*broker)->bootstrap()}});
    ASSERT_TRUE(producer.ok());
    for (auto [topic, file] : {std::pair{"impressions", dir.File("imp.jsonl")},
                               std::pair{"clicks", dir.File("clk.jsonl")}}) {
      ASSERT_TRUE(test_support::ProduceLines(**producer, topic, file, 1).ok());
    }
  };
  produce();
  const uint16_t http_port = test_support::FreeLoopbackPort().value();
  const std::string config = dir.File("job.yaml");
  std::ofstream(config) << KafkaJob(dir, bo.port, http_port, "",
                                    ", ready_unreachable_grace_ms: 2000");
  test_support::Child child(CTRJOIN_BINARY, {"run", "--config", config}, dir.File("run.log"));
  std::string last;
  ASSERT_TRUE(WaitForBody(http_port, "/ready", 200, "ready", 30s, &last)) << last << "\n"
                                                                          << child.Log();

  broker->reset();  // stopped, its port closed
  ASSERT_TRUE(WaitForBody(http_port, "/ready", 503,
                          "not ready: the Kafka brokers have not answered for", 60s, &last))
      << last << "\n"
      << child.Log();
  ASSERT_TRUE(WaitForBody(http_port, "/metrics", 200, "\nctrjoin_source_up 0\n", 5s, &last));
  ASSERT_TRUE(WaitForBody(http_port, "/healthz", 200, "ok", 5s, &last)) << last;

  broker = testbroker::TestBroker::Start(bo);  // the same port, empty
  ASSERT_TRUE(broker.ok()) << broker.status().ToString();
  produce();
  ASSERT_TRUE(WaitForBody(http_port, "/ready", 200, "ready", 60s, &last)) << last << "\n"
                                                                          << child.Log();
  ASSERT_TRUE(WaitForBody(http_port, "/metrics", 200, "\nctrjoin_source_up 1\n", 5s, &last));
  child.Signal(SIGTERM);
  ASSERT_TRUE(child.WaitExit(30s)) << child.Log();
  EXPECT_EQ(child.exit_code(), 0) << child.Log();
}

}  // namespace
}  // namespace ctrjoin
