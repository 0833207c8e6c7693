// Mode group with checkpoints (txn/README.md, "Several processes on one
// job"), through the real binary: three processes share one job over the
// test broker; one is killed (-9), a fourth joins, one is paused (SIGSTOP)
// past the session timeout and resumed, the killed one comes back. The
// input arrives in slices between these events, so tasks move while their
// impressions wait for clicks. The read_committed output must hold every
// impression of the trace exactly once, with the label the brute-force
// oracle gives it: a click that arrives after its impression's task moved
// still makes a positive, because the task's state moved with it.
//
// CTRJOIN_GROUP_ROUNDS sets the rounds (1 in CI, label crash; more under
// the label slow).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "src/app/app.h"
#include "src/io/kafka_client.h"
#include "tests/support/child_process.h"
#include "tests/support/kafka_broker/broker.h"
#include "tests/support/kafka_test_util.h"
#include "tests/support/temp_dir.h"
#include "tests/support/trace_oracle.h"

namespace ctrjoin {
namespace {

using namespace std::chrono_literals;
using test_support::Child;

constexpr int32_t kPartitions = 4;
constexpr int64_t kWindowMs = 10'000;
constexpr int kSessionTimeoutMs = 6'000;

int Rounds() {
  const char* v = std::getenv("CTRJOIN_GROUP_ROUNDS");
  return v != nullptr ? std::max(1, static_cast<int>(std::strtol(v, nullptr, 10))) : 1;
}

std::string ImpressionIdOf(const std::string& line) {
  static const std::regex id_re(R"re("impression_id"\s*:\s*"([^"]*)")re");
  std::smatch m;
  return std::regex_search(line, m, id_re) ? m[1].str() : std::string();
}

// Lines [from, to) to topic, each keyed by its impression id and in the
// partition Kafka's default partitioner gives that key (co-partitioned, as
// mode group needs); a line without an id goes to partition 0.
void ProduceKeyed(BulkProducer& producer, const std::string& topic,
                  const std::vector<std::string>& lines, size_t from, size_t to) {
  for (size_t i = from; i < to && i < lines.size(); ++i) {
    const std::string key = ImpressionIdOf(lines[i]);
    const int32_t partition = key.empty() ? 0 : KafkaDefaultPartition(key, kPartitions);
    ASSERT_TRUE(producer.Produce(topic, partition, lines[i], 0, key).ok());
  }
  ASSERT_TRUE(producer.Flush(30'000).ok());
}

// An id whose partition is p, distinct per (what, p).
std::string IdIn(const std::string& what, int32_t p) {
  for (int n = 0;; ++n) {
    std::string id = fmt::format("{}-{}-{}", what, p, n);
    if (KafkaDefaultPartition(id, kPartitions) == p) return id;
  }
}

// On every partition of both topics a record far past the trace, so that
// every task's watermark passes every window of the trace: an impression
// whose own window never closes (no sample) and an orphan click.
void ProduceTail(BulkProducer& producer, int64_t ts) {
  for (int32_t p = 0; p < kPartitions; ++p) {
    const std::string imp = IdIn("tail-imp", p);
    const std::string clk = IdIn("tail-clk", p);
    ASSERT_TRUE(producer
                    .Produce("impressions", p,
                             fmt::format(R"({{"impression_id":"{}","user_id":"u0","item_id":"i0",)"
                                         R"("ts":{}}})",
                                         imp, ts),
                             0, imp)
                    .ok());
    ASSERT_TRUE(producer
                    .Produce("clicks", p,
                             fmt::format(R"({{"impression_id":"{}","ts":{}}})", clk, ts), 0, clk)
                    .ok());
  }
  ASSERT_TRUE(producer.Flush(30'000).ok());
}

int64_t MaxTs(const std::vector<std::string>& lines) {
  static const std::regex ts_re(R"re("ts"\s*:\s*(-?[0-9]+))re");
  int64_t max = 0;
  for (const std::string& line : lines) {
    std::smatch m;
    if (std::regex_search(line, m, ts_re)) max = std::max<int64_t>(max, std::stoll(m[1].str()));
  }
  return max;
}

std::string JobYaml(const test_support::TempDir& dir, const std::string& brokers,
                    const std::string& name) {
  return fmt::format(R"(
source:
  type: kafka
  kafka: {{brokers: "{0}", group_id: job, mode: group, poll_timeout_ms: 20,
          properties: {{session.timeout.ms: "{1}", heartbeat.interval.ms: "500"}}}}
sink:
  type: kafka
  kafka: {{brokers: "{0}", topic: samples, transactional_id_prefix: job,
          transaction_timeout_ms: 15000, flush_timeout_ms: 10000}}
join: {{window_ms: {2}, allowed_lateness_ms: 5000}}
watermark: {{out_of_orderness_ms: 5000, idle_timeout_ms: 0}}
state: {{dir: {3}, memory_budget_mb: 64}}
dead_letter: {{type: file, path: {4}}}
checkpoint: {{enabled: true, interval_ms: 100}}
pipeline: {{shards: 2, batch_size: 256}}
http: {{enabled: false}}
)",
                     brokers, kSessionTimeoutMs, kWindowMs, dir.File("state-" + name),
                     dir.File("dead-" + name + ".jsonl"));
}

class Processes {
 public:
  Processes(const test_support::TempDir& dir, std::string brokers)
      : dir_(dir), brokers_(std::move(brokers)) {}

  Child& Start(const std::string& name) {
    const std::string config = dir_.File(name + ".yaml");
    std::ofstream(config) << JobYaml(dir_, brokers_, name);
    const std::string log = dir_.File(fmt::format("{}-{}.log", name, ++starts_));
    children_.push_back(std::make_unique<Child>(
        CTRJOIN_BINARY, std::vector<std::string>{"run", "--config", config}, log));
    names_.push_back(name);
    return *children_.back();
  }
  std::vector<std::unique_ptr<Child>>& all() { return children_; }
  std::string Logs() {
    std::string text;
    for (size_t i = 0; i < children_.size(); ++i) {
      text += fmt::format("==== {} ====\n{}\n", names_[i], children_[i]->Log());
    }
    return text;
  }

 private:
  const test_support::TempDir& dir_;
  const std::string brokers_;
  std::vector<std::unique_ptr<Child>> children_;
  std::vector<std::string> names_;
  int starts_ = 0;
};

// Waits until `child`'s log has `text` (up to `timeout`).
bool WaitForLog(Child& child, const std::string& text, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (child.Log().find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

void Round(uint64_t seed) {
  test_support::TempDir dir;
  testbroker::BrokerOptions bo;
  bo.default_partitions = kPartitions;
  auto broker = testbroker::TestBroker::Start(bo);
  ASSERT_TRUE(broker.ok()) << broker.status().ToString();
  const std::string brokers = (*broker)->bootstrap();
  auto producer = BulkProducer::Open({{"bootstrap.servers", brokers}, {"linger.ms", "5"}});
  ASSERT_TRUE(producer.ok());
  ASSERT_TRUE(CreateKafkaTopics((*producer)->get(),
                                {{"impressions", kPartitions}, {"clicks", kPartitions}}, 10'000)
                  .ok());

  GenerateOptions gen;
  gen.impressions_path = dir.File("impressions.jsonl");
  gen.clicks_path = dir.File("clicks.jsonl");
  gen.impressions = 1500;
  ASSERT_TRUE(GenerateTrace(gen, test_support::OracleWorkload(seed, kWindowMs)).ok());
  const test_support::Oracle oracle =
      test_support::ComputeOracle(gen.impressions_path, gen.clicks_path, kWindowMs);
  const std::vector<std::string> imps = test_support::ReadLines(gen.impressions_path);
  const std::vector<std::string> clks = test_support::ReadLines(gen.clicks_path);
  // The input in four slices, between the events below.
  auto slice = [&](int i) {
    ProduceKeyed(**producer, "impressions", imps, imps.size() * i / 4, imps.size() * (i + 1) / 4);
    ProduceKeyed(**producer, "clicks", clks, clks.size() * i / 4, clks.size() * (i + 1) / 4);
  };

  Processes procs(dir, brokers);
  slice(0);
  Child& a = procs.Start("a");
  ASSERT_TRUE(WaitForLog(a, "source.kafka: assigned", 60s)) << procs.Logs();
  Child& b = procs.Start("b");
  Child& c = procs.Start("c");
  // Every process holds tasks once the group settled.
  for (Child* child : {&b, &c}) {
    ASSERT_TRUE(WaitForLog(*child, "source.kafka: assigned", 60s)) << procs.Logs();
  }
  std::this_thread::sleep_for(2s);
  slice(1);
  std::this_thread::sleep_for(1s);

  // kill -9 b; a fourth process joins.
  b.Signal(SIGKILL);
  ASSERT_TRUE(b.WaitExit(10s));
  Child& d = procs.Start("d");
  ASSERT_TRUE(WaitForLog(d, "source.kafka: assigned", 60s)) << procs.Logs();
  slice(2);
  std::this_thread::sleep_for(1s);

  // c paused past the session timeout: its tasks move; resumed, it must not
  // commit for them (it exits; a supervisor restarts it).
  c.Signal(SIGSTOP);
  ASSERT_TRUE(c.WaitStopped(5s));
  std::this_thread::sleep_for(std::chrono::milliseconds(kSessionTimeoutMs + 4'000));
  slice(3);
  c.Signal(SIGCONT);
  // b comes back (same state.dir: same transactional ids, which aborts what
  // the killed b left open).
  procs.Start("b");
  ProduceTail(**producer, MaxTs(imps) + 10 * kWindowMs);

  // Until the output holds a sample per impression of the trace.
  const std::string out = dir.File("samples.jsonl");
  const auto deadline = std::chrono::steady_clock::now() + 180s;
  size_t seen = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    ASSERT_TRUE(test_support::ConsumeCommitted(brokers, "samples", out).ok());
    seen = test_support::ReadLines(out).size();
    if (seen >= oracle.labels.size()) break;
    std::this_thread::sleep_for(2s);
  }
  // Anything late would be a duplicate: give it a moment to show. Past the
  // tail's watermark every entry has expired, so the changelog's heads go.
  const std::regex trimmed("records deleted up to task");
  for (auto until = std::chrono::steady_clock::now() + 30s;
       std::chrono::steady_clock::now() < until && !std::regex_search(procs.Logs(), trimmed);) {
    std::this_thread::sleep_for(500ms);
  }
  std::this_thread::sleep_for(3s);
  // While they run, `ctrjoin tasks` names the process holding each task
  // (the group's description): one of the four instances.
  std::set<std::string> instances;
  for (const char* name : {"a", "b", "c", "d"}) {
    std::ifstream in(dir.File(fmt::format("state-{}/INSTANCE", name)));
    std::string id;
    in >> id;
    instances.insert(id);
  }
  const std::regex held_line(R"(\n([0-9]+) .*? instance ([0-9a-f]+) +(?:epoch|never|not by))");
  std::map<int, std::string> holders;
  std::string held_report;
  for (int attempt = 0; attempt < 10 && holders.size() < static_cast<size_t>(kPartitions);
       ++attempt) {
    Child held(CTRJOIN_BINARY, {"tasks", "--config", dir.File("a.yaml")},
               dir.File(fmt::format("held-{}.log", attempt)));
    ASSERT_TRUE(held.WaitExit(30s));
    held_report = held.Log();
    holders.clear();
    for (std::sregex_iterator m(held_report.begin(), held_report.end(), held_line), end; m != end;
         ++m) {
      holders[std::stoi((*m)[1])] = (*m)[2];
    }
    if (holders.size() < static_cast<size_t>(kPartitions)) std::this_thread::sleep_for(1s);
  }
  EXPECT_EQ(holders.size(), static_cast<size_t>(kPartitions)) << held_report;
  for (const auto& [task, instance] : holders) {
    EXPECT_TRUE(instances.contains(instance)) << task << " held by " << instance;
  }
  for (auto& child : procs.all()) child->Signal(SIGTERM);
  for (auto& child : procs.all()) {
    if (!child->WaitExit(60s)) child->Signal(SIGKILL);
  }
  ASSERT_TRUE(test_support::ConsumeCommitted(brokers, "samples", out).ok());
  const auto samples = test_support::ReadSamples(out);
  const size_t positives = test_support::ExpectMatchesOracle(oracle, samples);
  EXPECT_GT(positives, 0u);
  // The paused process did not go on as if nothing happened: fenced (its
  // assignment lost, or its commit refused for a stale generation).
  EXPECT_EQ(c.exit_code(), 3);
  // Tasks moved with their state.
  EXPECT_TRUE(
      std::regex_search(procs.Logs(), std::regex("task [0-9]+ restored [1-9][0-9]* entries")));
  // The changelog topic was trimmed (sinks/changelog_trimmer.h).
  EXPECT_TRUE(std::regex_search(procs.Logs(), trimmed));
  // `ctrjoin tasks` names, for every task, the process that committed it
  // last: one of the four instances.
  Child tasks(CTRJOIN_BINARY, {"tasks", "--config", dir.File("a.yaml")}, dir.File("tasks.log"));
  ASSERT_TRUE(tasks.WaitExit(30s));
  EXPECT_EQ(tasks.exit_code(), 0) << tasks.Log();
  const std::regex task_line(R"(\n([0-9]+) .* of instance ([0-9a-f]+))");
  std::set<int> tasks_seen;
  const std::string report = tasks.Log();
  for (std::sregex_iterator m(report.begin(), report.end(), task_line), end; m != end; ++m) {
    tasks_seen.insert(std::stoi((*m)[1]));
    EXPECT_TRUE(instances.contains((*m)[2])) << (*m)[0];
  }
  EXPECT_EQ(tasks_seen.size(), static_cast<size_t>(kPartitions)) << report;
  if (::testing::Test::HasFailure()) ADD_FAILURE() << procs.Logs();
  if (std::getenv("CTRJOIN_GROUP_LOGS") != nullptr) std::cout << procs.Logs() << report;
}

TEST(GroupCrashTest, KillsAJoinAndAPauseLeaveEverySampleExactlyOnce) {
  for (int round = 0; round < Rounds() && !::testing::Test::HasFailure(); ++round) {
    SCOPED_TRACE(fmt::format("round {}", round));
    Round(4000 + static_cast<uint64_t>(round));
  }
}

}  // namespace
}  // namespace ctrjoin
