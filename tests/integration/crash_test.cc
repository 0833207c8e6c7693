// The crash suite (CTest label "crash"; the long variant is labelled
// "slow"): runs the real `ctrjoin run` binary on a generated workload with
// exactly-once output, kills it with SIGKILL over and over — at random
// moments from outside, and at chosen points inside the checkpoint protocol
// through the CTRJOIN_CRASH_AT test hook (txn/crash_point.h) — restarts it
// until a run finishes, and then checks that the committed output holds
// every expected sample exactly once with the right label (the brute-force
// oracle of tests/support/trace_oracle.h). Once for the transactional file
// sink, once for the Kafka sink through the transaction-capable test broker,
// read back with a read_committed consumer.
//
// CTRJOIN_CRASH_KILLS sets how many kills each test makes (default 20).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <set>
#include <thread>

#include "src/app/app.h"
#include "src/io/kafka_client.h"
#include "tests/support/kafka_broker/broker.h"
#include "tests/support/kafka_test_util.h"
#include "tests/support/temp_dir.h"
#include "tests/support/trace_oracle.h"

namespace ctrjoin {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int64_t kWindowMs = 20'000;
constexpr uint64_t kImpressions = 60'000;
// Points inside the protocol where the hook kills the process.
const char* const kCrashPoints[] = {
    "write",  "barrier",     "precommit", "after_precommit", "checkpoint_complete",
    "commit", "after_commit"};

int Kills() {
  const char* v = std::getenv("CTRJOIN_CRASH_KILLS");
  return v != nullptr ? std::max(1, std::atoi(v)) : 20;
}

struct RunResult {
  bool finished = false;   // exit 0
  bool started = false;    // got as far as logging its start-up line
  bool killed = false;     // SIGKILL
  bool signalled = false;  // we sent the signal before it exited
  int status = 0;
};

// Runs `ctrjoin <args>` (e.g. run --config c.yaml), with crash_at in
// CTRJOIN_CRASH_AT (if not empty), sending `signal` after kill_after (if not
// zero); bounded by 120 s (then SIGKILL).
RunResult RunOnce(const std::vector<std::string>& args, const std::string& log,
                  const std::string& crash_at, std::chrono::milliseconds kill_after,
                  int signal = SIGKILL) {
  std::error_code ec;
  const uintmax_t log_before = fs::exists(log) ? fs::file_size(log, ec) : 0;
  const pid_t pid = fork();
  if (pid == 0) {
    // Both streams to the log (spdlog writes to stdout).
    FILE* err = std::freopen(log.c_str(), "a", stderr);
    if (err != nullptr) dup2(fileno(err), STDOUT_FILENO);
    if (!crash_at.empty()) setenv("CTRJOIN_CRASH_AT", crash_at.c_str(), 1);
    std::vector<char*> argv{const_cast<char*>(CTRJOIN_BINARY)};
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(CTRJOIN_BINARY, argv.data());
    _exit(127);
  }
  RunResult r;
  const Clock::time_point start = Clock::now();
  bool sent_kill = false;
  while (true) {
    int status = 0;
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) {
      r.status = status;
      r.finished = WIFEXITED(status) && WEXITSTATUS(status) == 0;
      r.killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
      r.signalled = sent_kill;
      std::ifstream in(log);
      in.seekg(static_cast<std::streamoff>(log_before));
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      r.started = text.find("checkpoint: ") != std::string::npos;
      return r;
    }
    const auto elapsed = Clock::now() - start;
    if (!sent_kill && kill_after.count() > 0 && elapsed >= kill_after) {
      kill(pid, signal);
      sent_kill = true;
    }
    if (elapsed > std::chrono::seconds(120)) kill(pid, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

std::string Tail(const std::string& path) {
  std::vector<std::string> lines = test_support::ReadLines(path);
  std::string out;
  for (size_t i = lines.size() > 15 ? lines.size() - 15 : 0; i < lines.size(); ++i) {
    out += lines[i] + "\n";
  }
  return out;
}

// Kills and restarts the job (`ctrjoin <args>`) until a run finishes;
// returns how many times it was killed. Some runs are stopped with SIGTERM
// instead, which must end them cleanly (exit 0, current epoch committed).
int RunThroughCrashes(const std::vector<std::string>& args, const std::string& log,
                      std::mt19937_64& rng, int max_kills) {
  int kills = 0;
  for (int attempt = 0; attempt < 4 * max_kills + 50; ++attempt) {
    std::string crash_at;
    std::chrono::milliseconds kill_after{0};
    int signal = SIGKILL;
    if (kills < max_kills) {
      const uint64_t mode = rng() % 5;
      if (mode < 2) {
        crash_at =
            fmt::format("{}:{}", kCrashPoints[rng() % std::size(kCrashPoints)], 1 + rng() % 4);
      } else {
        kill_after = std::chrono::milliseconds(5 + rng() % 200);
        if (mode == 4) signal = SIGTERM;
      }
    }
    const RunResult r = RunOnce(args, log, crash_at, kill_after, signal);
    if (signal == SIGTERM && r.signalled) {
      // Before main installs its handlers the default action ends the
      // process: harmless (like a kill), but only that early.
      EXPECT_TRUE(r.finished || !r.started)
          << "SIGTERM must end the run with exit 0 (status " << r.status << "):\n"
          << Tail(log);
      if (!r.finished && r.started) return kills;
      continue;  // stopped: resume it
    }
    if (r.finished) return kills;
    EXPECT_TRUE(r.killed) << "ctrjoin failed (status " << r.status << "):\n" << Tail(log);
    if (!r.killed) return kills;
    ++kills;
  }
  ADD_FAILURE() << "the job never finished";
  return kills;
}

std::string BaseConfig(const test_support::TempDir& dir) {
  return fmt::format(R"(
join: {{window_ms: {}, allowed_lateness_ms: 5000}}
watermark: {{out_of_orderness_ms: 5000, idle_timeout_ms: 0}}
state: {{dir: {}, memory_budget_mb: 64}}
dead_letter: {{type: file, path: {}}}
checkpoint: {{enabled: true, interval_ms: 50, retain: 2}}
pipeline: {{shards: 2, batch_size: 256}}
http: {{address: "127.0.0.1:0"}}
)",
                     kWindowMs, dir.File("state"), dir.File("dead.jsonl"));
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

size_t CountCheckpoints(const std::string& dir) {
  size_t n = 0;
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().starts_with("chk-")) ++n;
  }
  return n;
}

// What one kind of job adds to the rounds of CrashRounds.
struct CrashJob {
  // Writes the job's config (the rest of BaseConfig) for a fresh trace.
  std::function<void(const test_support::TempDir&, const GenerateOptions&, int round,
                     std::string& config_yaml)>
      setup;
  // Writes the committed output as JSON lines to `path`.
  std::function<void(const test_support::TempDir&, int round, const std::string& path)> collect;
  // The command line after `ctrjoin`; default: run --config <config>.
  std::function<std::vector<std::string>(const test_support::TempDir&, const std::string& config)>
      command = [](const test_support::TempDir&, const std::string& config) {
        return std::vector<std::string>{"run", "--config", config};
      };
  // The impressions the output must label (a JSON-lines file); default: all.
  std::function<std::string(const test_support::TempDir&, const GenerateOptions&)> impressions =
      [](const test_support::TempDir&, const GenerateOptions& gen) { return gen.impressions_path; };
  std::string checkpoints = "state/checkpoints";  // under the round's directory
};

// Rounds, until Kills() kills were made: a fresh trace in a fresh directory,
// the job run through kills until it finishes, then its committed output
// checked against the oracle (one sample per impression, the right label)
// and the checkpoints counted (retain 2, plus at most one pending).
void CrashRounds(uint64_t seed, const CrashJob& job) {
  std::mt19937_64 rng(seed);
  const int target = Kills();
  int kills = 0;
  for (int round = 0; kills < target; ++round) {
    test_support::TempDir dir;
    GenerateOptions gen{dir.File("imp.jsonl"), dir.File("clk.jsonl"), "", kImpressions};
    ASSERT_TRUE(GenerateTrace(gen, test_support::OracleWorkload(seed + round, kWindowMs)).ok());
    std::string yaml = BaseConfig(dir);
    job.setup(dir, gen, round, yaml);
    if (::testing::Test::HasFatalFailure()) return;
    const std::string config = dir.File("job.yaml");
    WriteFile(config, yaml);
    const int round_kills =
        RunThroughCrashes(job.command(dir, config), dir.File("ctrjoin.log"), rng, target - kills);
    kills += round_kills;

    job.collect(dir, round, dir.File("all.jsonl"));
    const test_support::Oracle oracle =
        test_support::ComputeOracle(job.impressions(dir, gen), gen.clicks_path, kWindowMs);
    const auto samples = test_support::ReadSamples(dir.File("all.jsonl"));
    test_support::ExpectMatchesOracle(oracle, samples);
    EXPECT_LE(CountCheckpoints(dir.File(job.checkpoints)), 2u + 1u);
    std::printf("round %d: %d kills, %zu samples\n", round, round_kills, samples.size());
    if (::testing::Test::HasFailure()) {
      std::printf("log tail:\n%s", Tail(dir.File("ctrjoin.log")).c_str());
      return;
    }
  }
}

// Every committed epoch file in <dir>/out, concatenated; nothing left staged.
void CollectEpochFiles(const test_support::TempDir& dir, int, const std::string& path) {
  std::ofstream all(path);
  for (const fs::directory_entry& e : fs::directory_iterator(dir.File("out"))) {
    if (!e.path().filename().string().starts_with("epoch-")) continue;
    std::ifstream in(e.path());
    all << in.rdbuf();
  }
  // Besides the sink's LOCK and OWNER files.
  for (const fs::directory_entry& e : fs::directory_iterator(dir.File("out/_staging"))) {
    const std::string name = e.path().filename().string();
    EXPECT_TRUE(name == "LOCK" || name == "OWNER") << "staged epoch left behind: " << name;
  }
}

TEST(CrashTest, FileSinkExactlyOnceThroughKills) {
  CrashJob job;
  job.setup = [](const test_support::TempDir& dir, const GenerateOptions& gen, int,
                 std::string& yaml) {
    yaml += fmt::format(R"(
source: {{type: files, files: {{impressions: {}, clicks: {}}}}}
sink: {{type: file, path: {}}}
)",
                        gen.impressions_path, gen.clicks_path, dir.File("out"));
  };
  job.collect = CollectEpochFiles;
  CrashRounds(20261121, job);
}

// The trace into two fresh topics of 2 partitions (line i to partition i % 2).
void ProduceTrace(const std::string& brokers, const GenerateOptions& gen,
                  const std::string& imp_topic, const std::string& clk_topic) {
  auto producer = BulkProducer::Open({{"bootstrap.servers", brokers}, {"linger.ms", "5"}});
  ASSERT_TRUE(producer.ok());
  for (auto [topic, file] :
       {std::pair{imp_topic, gen.impressions_path}, std::pair{clk_topic, gen.clicks_path}}) {
    ASSERT_TRUE(test_support::ProduceLines(**producer, topic, file, 2).ok());
  }
}

TEST(CrashTest, KafkaSinkExactlyOnceThroughKills) {
  testbroker::BrokerOptions options;
  options.default_partitions = 2;
  auto broker = testbroker::TestBroker::Start(options);
  ASSERT_TRUE(broker.ok()) << broker.status().ToString();
  const std::string brokers = (*broker)->bootstrap();
  // Fresh topics, group and transactional ids per round.
  CrashJob job;
  job.setup = [&](const test_support::TempDir&, const GenerateOptions& gen, int round,
                  std::string& yaml) {
    const std::string imp_topic = fmt::format("impressions-{}", round);
    const std::string clk_topic = fmt::format("clicks-{}", round);
    ProduceTrace(brokers, gen, imp_topic, clk_topic);
    yaml += fmt::format(R"(
source:
  type: kafka
  kafka: {{brokers: "{0}", impressions_topic: {1}, clicks_topic: {2}, group_id: crash-{3},
          mode: assign, stop_at_end: true, poll_timeout_ms: 20}}
sink:
  type: kafka
  kafka: {{brokers: "{0}", topic: samples-{3}, transactional_id_prefix: crash-{3},
          transaction_timeout_ms: 15000, flush_timeout_ms: 10000}}
)",
                        brokers, imp_topic, clk_topic, round);
  };
  job.collect = [&](const test_support::TempDir&, int round, const std::string& path) {
    Status st = test_support::ConsumeCommitted(brokers, fmt::format("samples-{}", round), path);
    EXPECT_TRUE(st.ok()) << st.ToString();
  };
  CrashRounds(777, job);
}

// `ctrjoin replay` of an offset range of Kafka topics into a directory,
// killed and restarted (same --name) until it finishes: it resumes from its
// own checkpoints and labels every impression of the range exactly once.
TEST(CrashTest, ReplayResumesThroughKills) {
  testbroker::BrokerOptions options;
  options.default_partitions = 2;
  auto broker = testbroker::TestBroker::Start(options);
  ASSERT_TRUE(broker.ok()) << broker.status().ToString();
  const std::string brokers = (*broker)->bootstrap();
  // Impressions at offsets [5000, 20000) of each partition: lines i with
  // 10000 <= i < 40000 (line i went to partition i % 2 at offset i / 2).
  constexpr size_t kFirstLine = 10'000, kEndLine = 40'000;
  CrashJob job;
  job.setup = [&](const test_support::TempDir& dir, const GenerateOptions& gen, int round,
                  std::string& yaml) {
    const std::string imp_topic = fmt::format("r-impressions-{}", round);
    const std::string clk_topic = fmt::format("r-clicks-{}", round);
    ProduceTrace(brokers, gen, imp_topic, clk_topic);
    yaml += fmt::format(R"(
source:
  type: kafka
  kafka: {{brokers: "{0}", impressions_topic: {1}, clicks_topic: {2}, group_id: live-{3},
          mode: assign, poll_timeout_ms: 20}}
sink: {{type: file, path: {4}}}
)",
                        brokers, imp_topic, clk_topic, round, dir.File("live-out"));
  };
  job.command = [](const test_support::TempDir& dir, const std::string& config) {
    return std::vector<std::string>{"replay",
                                    "--config",
                                    config,
                                    "--name",
                                    "r",
                                    "--start-offsets",
                                    "0=5000,1=5000",
                                    "--end-offsets",
                                    "0=20000,1=20000",
                                    "--output",
                                    dir.File("out"),
                                    "--progress",
                                    "log"};
  };
  job.impressions = [](const test_support::TempDir& dir, const GenerateOptions& gen) {
    const std::vector<std::string> lines = test_support::ReadLines(gen.impressions_path);
    std::ofstream range(dir.File("range.jsonl"));
    for (size_t i = kFirstLine; i < kEndLine && i < lines.size(); ++i) range << lines[i] << "\n";
    return dir.File("range.jsonl");
  };
  job.collect = CollectEpochFiles;
  job.checkpoints = "state/replay-r/checkpoints";
  CrashRounds(31415, job);
}

}  // namespace
}  // namespace ctrjoin
