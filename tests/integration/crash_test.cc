// The crash suite (CTest label "crash"; the long variant is labelled
// "slow"): runs the real `ctrjoin run` binary on a generated workload with
// exactly-once output, kills it with SIGKILL over and over — at random
// moments from outside, and at chosen points inside the checkpoint protocol
// through the CTRJOIN_CRASH_AT test hook (src/core/crash_point.h) — restarts it
// until a run finishes, and then checks that the committed output holds
// every expected sample exactly once with the right label (the brute-force
// oracle of tests/support/trace_oracle.h). Once for the transactional file
// sink, once for the Kafka sink through the transaction-capable test broker,
// read back with a read_committed consumer. The Zombie tests at the end
// start a second instance of a running job (same host; another host, with
// the first one frozen and woken later) and check that exactly one goes on.
//
// CTRJOIN_CRASH_KILLS sets how many kills each test makes (default 20),
// CTRJOIN_ZOMBIE_ROUNDS the rounds of each zombie test (default 2).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <thread>

#include "src/app/app.h"
#include "src/io/kafka_client.h"
#include "tests/support/child_process.h"
#include "tests/support/kafka_broker/broker.h"
#include "tests/support/kafka_test_util.h"
#include "tests/support/temp_dir.h"
#include "tests/support/trace_oracle.h"

namespace ctrjoin {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using test_support::Child;
const std::string kBinary = CTRJOIN_BINARY;

constexpr int64_t kWindowMs = 20'000;
constexpr uint64_t kImpressions = 60'000;
// Points inside the protocol where the hook kills the process: in the
// changelog, between the two halves of a write (a torn record), between
// deleting two segments, and while a restore loads entries (into the next
// generation).
const char* const kCrashPoints[] = {
    "write",  "barrier",      "precommit",       "after_precommit",  "checkpoint_complete",
    "commit", "after_commit", "changelog_write", "changelog_delete", "changelog_restore"};

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
  std::map<std::string, std::string> env;
  if (!crash_at.empty()) env["CTRJOIN_CRASH_AT"] = crash_at;
  Child child(kBinary, args, log, env);
  RunResult r;
  const Clock::time_point start = Clock::now();
  while (!child.WaitExit(std::chrono::milliseconds(2))) {
    const auto elapsed = Clock::now() - start;
    if (!r.signalled && kill_after.count() > 0 && elapsed >= kill_after) {
      child.Signal(signal);
      r.signalled = true;
    }
    if (elapsed > std::chrono::seconds(120)) child.Signal(SIGKILL);
  }
  r.status = child.status();
  r.finished = child.exit_code() == 0;
  r.killed = WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGKILL;
  r.started = child.Log().find("checkpoint: ") != std::string::npos;
  return r;
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
    // The shard count may change between restarts: key groups move.
    std::vector<std::string> run_args = args;
    if (args.front() == "run") {
      run_args.push_back("--set");
      run_args.push_back(fmt::format("pipeline.shards={}", 1 + rng() % 3));
    }
    const RunResult r = RunOnce(run_args, log, crash_at, kill_after, signal);
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

// Everything but source and sink, for a job whose state and dead letters
// are under `root` (<root>/state, <root>/dead.jsonl).
std::string BaseConfig(const fs::path& root, int64_t interval_ms = 50) {
  return fmt::format(R"(
join: {{window_ms: {}, allowed_lateness_ms: 5000}}
watermark: {{out_of_orderness_ms: 5000, idle_timeout_ms: 0}}
state: {{dir: {}, memory_budget_mb: 64}}
dead_letter: {{type: file, path: {}}}
checkpoint: {{enabled: true, interval_ms: {}, retain: 2, changelog_segment_mb: 1}}
pipeline: {{shards: 2, batch_size: 256}}
http: {{address: "127.0.0.1:0"}}
)",
                     kWindowMs, (root / "state").string(), (root / "dead.jsonl").string(),
                     interval_ms);
}

// The source of a job that reads <name>-impressions and <name>-clicks with
// consumer group <name>; stop_at_end: a bounded run, else a live job that
// runs until it is stopped; `properties`: extra librdkafka settings.
std::string KafkaSourceYaml(const std::string& brokers, const std::string& name, bool stop_at_end,
                            const std::string& properties = "{}") {
  return fmt::format(R"(
source:
  type: kafka
  kafka: {{brokers: "{0}", impressions_topic: {1}-impressions, clicks_topic: {1}-clicks,
          group_id: {1}, mode: assign, stop_at_end: {2}, poll_timeout_ms: 20,
          properties: {3}}}
)",
                     brokers, name, stop_at_end, properties);
}

// A Kafka sink writing <name>-samples with transactional-id prefix <name>,
// for a job whose epochs last interval_ms (the transaction timeout must be
// at least 3 intervals + 10 s).
std::string KafkaSinkYaml(const std::string& brokers, const std::string& name,
                          int64_t interval_ms = 50) {
  return fmt::format(R"(
sink:
  type: kafka
  kafka: {{brokers: "{0}", topic: {1}-samples, transactional_id_prefix: {1},
          transaction_timeout_ms: {2}, flush_timeout_ms: 10000}}
)",
                     brokers, name, std::max<int64_t>(15'000, 3 * interval_ms + 10'000));
}

// `text` with its line starting with `prefix` replaced by `line`.
std::string ReplaceLine(std::string text, const std::string& prefix, const std::string& line) {
  const size_t at = text.find("\n" + prefix) + 1;
  EXPECT_NE(at, 0u) << "no line " << prefix;
  text.replace(at, text.find('\n', at) - at, line);
  return text;
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

// Checks the committed output (JSON lines at `output`) against the oracle:
// one sample per impression of `impressions`, with the right label, and, if
// `dead_letters` is not empty, every rejected record there once. Returns the
// number of samples.
size_t ExpectExactlyOnce(const std::string& impressions, const std::string& clicks,
                         const std::string& output, const std::string& dead_letters) {
  const test_support::Oracle oracle = test_support::ComputeOracle(impressions, clicks, kWindowMs);
  const auto samples = test_support::ReadSamples(output);
  test_support::ExpectMatchesOracle(oracle, samples);
  if (!dead_letters.empty()) test_support::ExpectDeadLettersOnce(oracle, dead_letters);
  return samples.size();
}

// What one kind of job adds to the rounds of CrashRounds.
struct CrashJob {
  // Writes the job's config (the rest of BaseConfig) for a fresh trace.
  std::function<void(const test_support::TempDir&, const GenerateOptions&, int round,
                     std::string& config_yaml)>
      setup;
  // Writes the committed output as JSON lines to `path`.
  std::function<void(const test_support::TempDir&, int round, const std::string& path)> collect;
  // Writes the committed dead letters as JSON lines to `path`; unset: the
  // job's dead letters are not checked.
  std::function<void(const test_support::TempDir&, int round, const std::string& path)>
      collect_dead_letters;
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
    std::string yaml = BaseConfig(dir.path());
    job.setup(dir, gen, round, yaml);
    if (::testing::Test::HasFatalFailure()) return;
    const std::string config = dir.File("job.yaml");
    WriteFile(config, yaml);
    const int round_kills =
        RunThroughCrashes(job.command(dir, config), dir.File("ctrjoin.log"), rng, target - kills);
    kills += round_kills;

    job.collect(dir, round, dir.File("all.jsonl"));
    std::string dead_letters;
    if (job.collect_dead_letters) {
      dead_letters = dir.File("all-dead.jsonl");
      job.collect_dead_letters(dir, round, dead_letters);
    }
    const size_t samples = ExpectExactlyOnce(job.impressions(dir, gen), gen.clicks_path,
                                             dir.File("all.jsonl"), dead_letters);
    EXPECT_LE(CountCheckpoints(dir.File(job.checkpoints)), 2u + 1u);
    // The changelog: the last run's generation, and those its kept
    // checkpoints name (until one of its own is the oldest kept).
    size_t generations = 0;
    for (const fs::directory_entry& e :
         fs::directory_iterator(dir.File(job.checkpoints + "/changelog"))) {
      generations += e.path().filename().string().starts_with("gen-");
    }
    EXPECT_GE(generations, 1u);
    EXPECT_LE(generations, CountCheckpoints(dir.File(job.checkpoints)) + 1);
    std::printf("round %d: %d kills, %zu samples, %zu dead letters\n", round, round_kills, samples,
                dead_letters.empty() ? size_t{0} : test_support::ReadLines(dead_letters).size());
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
    if (!e.path().filename().string().starts_with("part-")) continue;
    std::ifstream in(e.path());
    all << in.rdbuf();
  }
  // Besides the sink's LOCK and OWNER files.
  for (const fs::directory_entry& e : fs::directory_iterator(dir.File("out/_staging"))) {
    const std::string name = e.path().filename().string();
    EXPECT_TRUE(name == "LOCK" || name == "OWNER") << "staged epoch left behind: " << name;
  }
}

// Every committed dead-letter file (<dir>/out/dead-letters), concatenated.
void CollectDeadLetterFiles(const test_support::TempDir& dir, int, const std::string& path) {
  std::ofstream all(path);
  if (!fs::exists(dir.File("out/dead-letters"))) return;
  for (const fs::directory_entry& e : fs::directory_iterator(dir.File("out/dead-letters"))) {
    std::ifstream in(e.path());
    all << in.rdbuf();
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
  job.collect_dead_letters = CollectDeadLetterFiles;
  CrashRounds(20261121, job);
}

// Parts that span epochs (sink.roll_bytes): a kill leaves an open part that
// recovery cuts back to the committed epochs, or a part closed by an epoch
// whose checkpoint never completed, which recovery opens again.
TEST(CrashTest, FileSinkWithRolledPartsExactlyOnceThroughKills) {
  CrashJob job;
  job.setup = [](const test_support::TempDir& dir, const GenerateOptions& gen, int round,
                 std::string& yaml) {
    yaml += fmt::format(R"(
source: {{type: files, files: {{impressions: {}, clicks: {}}}}}
sink: {{type: file, path: {}, roll_bytes: {}, compression: {}}}
)",
                        gen.impressions_path, gen.clicks_path, dir.File("out"),
                        1'000'000 * (1 + round % 3), round % 2 == 0 ? "none" : "gzip");
  };
  job.collect = [](const test_support::TempDir& dir, int round, const std::string& path) {
    if (round % 2 == 0) return CollectEpochFiles(dir, round, path);
    // gzip parts: decompressed, concatenated.
    std::ofstream all(path);
    for (const fs::directory_entry& e : fs::directory_iterator(dir.File("out"))) {
      if (!e.path().filename().string().starts_with("part-")) continue;
      EXPECT_TRUE(e.path().string().ends_with(".jsonl.gz")) << e.path();
      gzFile gz = gzopen(e.path().c_str(), "rb");
      ASSERT_NE(gz, nullptr);
      char buf[1 << 16];
      for (int n; (n = gzread(gz, buf, sizeof buf)) > 0;) all.write(buf, n);
      gzclose(gz);
    }
  };
  job.collect_dead_letters = CollectDeadLetterFiles;
  CrashRounds(20261203, job);
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
    const std::string name = fmt::format("crash-{}", round);
    ProduceTrace(brokers, gen, name + "-impressions", name + "-clicks");
    yaml += KafkaSourceYaml(brokers, name, /*stop_at_end=*/true) + KafkaSinkYaml(brokers, name);
    // Dead letters to <name>-dead on the sink's brokers: in the epochs' transactions.
    yaml = ReplaceLine(
        yaml, "dead_letter:",
        fmt::format(R"(dead_letter: {{type: kafka, kafka: {{brokers: "{}", topic: {}-dead}}}})",
                    brokers, name));
  };
  job.collect = [&](const test_support::TempDir&, int round, const std::string& path) {
    Status st =
        test_support::ConsumeCommitted(brokers, fmt::format("crash-{}-samples", round), path);
    EXPECT_TRUE(st.ok()) << st.ToString();
  };
  job.collect_dead_letters = [&](const test_support::TempDir&, int round, const std::string& path) {
    Status st = test_support::ConsumeCommitted(brokers, fmt::format("crash-{}-dead", round), path);
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

// Zombies: a second instance of a running job. What a supervisor or an
// operator can get wrong: start a job that already runs, on the same host or
// on another one, or wake a process taken for dead (a long pause, a frozen
// VM: SIGSTOP here). Each round checks that exactly one instance goes on,
// that the other one ends with the exit code that tells a supervisor not to
// restart it blindly (2 refused, 3 fenced: txn/README.md, "Exit codes for a
// supervisor"), and that the committed output holds every expected sample
// exactly once with the right label.

int ZombieRounds() {
  const char* v = std::getenv("CTRJOIN_ZOMBIE_ROUNDS");
  return v != nullptr ? std::max(1, std::atoi(v)) : 2;
}

using std::chrono::milliseconds;
using std::chrono::seconds;

// Short fetch waits for the zombie tests' jobs, whose bounded runs resume
// at the end of the input: a broker answers a connection's requests in
// order, so each end offset such a run asks for would wait behind a parked
// fetch (librdkafka's fetch.wait.max.ms, 500 ms).
const char* const kShortFetchWaits = R"({fetch.wait.max.ms: "10"})";

// The checkpoint coordinator's debug line per commit.
const std::regex kCommitted(R"(checkpoint: epoch (\d+) committed)");

std::vector<std::string> RunCommand(const std::string& config) {
  return {"--log-level", "debug", "run", "--config", config};
}

// The same, as a bounded run: to the end of the input, every window closed.
std::vector<std::string> BoundedRunCommand(const std::string& config) {
  std::vector<std::string> args = RunCommand(config);
  args.insert(args.end(), {"--set", "source.kafka.stop_at_end=true"});
  return args;
}

std::string Report(const Child& child) {
  return child.Describe() + ", log tail:\n" + Tail(child.log());
}

// The newest epoch the process logged as committed; 0 if none.
uint64_t LastCommitted(const Child& child) {
  const std::string log = child.Log();
  uint64_t last = 0;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), kCommitted);
       it != std::sregex_iterator(); ++it) {
    last = std::max<uint64_t>(last, std::stoull((*it)[1].str()));
  }
  return last;
}

// The epoch the process restored at start-up (the one the output recorded
// as committed); 0 when it started afresh, nullopt when it logged neither.
std::optional<uint64_t> RestoredEpoch(const Child& child) {
  const std::string log = child.Log();
  std::smatch m;
  if (std::regex_search(log, m, std::regex(R"(checkpoint: restoring epoch (\d+))"))) {
    return std::stoull(m[1].str());
  }
  if (log.find("checkpoint: no committed epoch") != std::string::npos) return 0;
  return std::nullopt;
}

// A round's trace, in <dir>/imp.jsonl and clk.jsonl and produced into the
// topics <name>-impressions and <name>-clicks.
GenerateOptions RoundTrace(const test_support::TempDir& dir, const std::string& brokers,
                           const std::string& name, uint64_t seed) {
  GenerateOptions gen{dir.File("imp.jsonl"), dir.File("clk.jsonl"), "", kImpressions};
  EXPECT_TRUE(GenerateTrace(gen, test_support::OracleWorkload(seed, kWindowMs)).ok());
  ProduceTrace(brokers, gen, name + "-impressions", name + "-clicks");
  return gen;
}

// Checks <name>-samples, read with read_committed, against the oracle.
size_t ExpectKafkaOutputExactlyOnce(const test_support::TempDir& dir, const std::string& brokers,
                                    const std::string& name, const GenerateOptions& gen) {
  const Status st =
      test_support::ConsumeCommitted(brokers, name + "-samples", dir.File("all.jsonl"));
  EXPECT_TRUE(st.ok()) << st.ToString();
  return ExpectExactlyOnce(gen.impressions_path, gen.clicks_path, dir.File("all.jsonl"), "");
}

// Same host: instance A of a live job (Kafka source that never ends by
// itself) holds the job's directories. B, started with the same config, is
// refused at once (exit 2) with a message naming A's pid. C, started with
// --wait-for-lock=60 (and as a bounded run, so that the round ends), waits;
// A is stopped with SIGTERM (exit 0) and C takes over from A's last epoch
// and finishes the job. Even rounds write to a Kafka sink, odd rounds to the
// transactional file sink (which locks its directory too).
TEST(CrashTest, ZombieOnSameHostIsRefusedByTheLock) {
  testbroker::BrokerOptions options;
  options.default_partitions = 2;
  auto broker = testbroker::TestBroker::Start(options);
  ASSERT_TRUE(broker.ok()) << broker.status().ToString();
  const std::string brokers = (*broker)->bootstrap();
  std::mt19937_64 rng(5150);
  for (int round = 0; round < ZombieRounds(); ++round) {
    SCOPED_TRACE(fmt::format("round {}", round));
    test_support::TempDir dir;
    const std::string name = fmt::format("lock-{}", round);
    const GenerateOptions gen = RoundTrace(dir, brokers, name, 9000 + round);
    const bool kafka_sink = round % 2 == 0;
    const std::string config = dir.File("job.yaml");
    WriteFile(config,
              BaseConfig(dir.path()) + KafkaSourceYaml(brokers, name, false, kShortFetchWaits) +
                  (kafka_sink ? KafkaSinkYaml(brokers, name)
                              : fmt::format("sink: {{type: file, path: {}}}\n", dir.File("out"))));

    Child a(kBinary, RunCommand(config), dir.File("a.log"));
    ASSERT_TRUE(a.WaitForLog(kCommitted, seconds(60))) << Report(a);

    Child b(kBinary, RunCommand(config), dir.File("b.log"));
    ASSERT_TRUE(b.WaitExit(seconds(10))) << "B was not refused: " << Report(b);
    EXPECT_EQ(b.exit_code(), 2) << Report(b);
    EXPECT_NE(b.Log().find(fmt::format("is in use by another ctrjoin process (pid {})", a.pid())),
              std::string::npos)
        << "B's message must name A's pid " << a.pid() << ":\n"
        << b.Log();
    EXPECT_TRUE(a.Running()) << Report(a);

    std::vector<std::string> takeover = BoundedRunCommand(config);
    takeover.push_back("--wait-for-lock=60");
    Child c(kBinary, takeover, dir.File("c.log"));
    ASSERT_TRUE(
        c.WaitForLog(std::regex(fmt::format("waiting for a job directory held by pid {}", a.pid())),
                     seconds(30)))
        << Report(c);
    std::this_thread::sleep_for(milliseconds(rng() % 500));
    EXPECT_TRUE(a.Running()) << Report(a);
    a.Signal(SIGTERM);
    ASSERT_TRUE(a.WaitExit(seconds(60))) << Report(a);
    EXPECT_EQ(a.exit_code(), 0) << Report(a);
    ASSERT_TRUE(c.WaitExit(seconds(120))) << Report(c);
    EXPECT_EQ(c.exit_code(), 0) << Report(c);
    // C went on from A's last commit, not afresh.
    EXPECT_EQ(RestoredEpoch(c), LastCommitted(a)) << Report(c);

    size_t samples = 0;
    if (kafka_sink) {
      samples = ExpectKafkaOutputExactlyOnce(dir, brokers, name, gen);
    } else {
      CollectEpochFiles(dir, round, dir.File("all.jsonl"));
      CollectDeadLetterFiles(dir, round, dir.File("all-dead.jsonl"));
      samples = ExpectExactlyOnce(gen.impressions_path, gen.clicks_path, dir.File("all.jsonl"),
                                  dir.File("all-dead.jsonl"));
    }
    std::printf(
        "round %d (%s sink): B refused (exit 2), A stopped after epoch %llu, C restored epoch %llu "
        "and finished; %zu samples\n",
        round, kafka_sink ? "kafka" : "file", static_cast<unsigned long long>(LastCommitted(a)),
        static_cast<unsigned long long>(RestoredEpoch(c).value_or(0)), samples);
    if (::testing::Test::HasFailure()) return;
  }
}

// A copy of a job's checkpoint directory, taken while the job is frozen: the
// complete checkpoints and the record of the transactional ids, not the lock
// or checkpoints in progress.
void CopyCheckpoints(const fs::path& from, const fs::path& to) {
  fs::create_directories(to);
  for (const fs::directory_entry& e : fs::directory_iterator(from)) {
    const std::string name = e.path().filename().string();
    if (name == "LOCK" || name.ends_with(".inprogress")) continue;
    fs::copy(e.path(), to / name, fs::copy_options::recursive);
  }
}

enum class Wake { kAfterSuccessorCommitted, kDuringSuccessorStartUp };

// Another host: instance A of a live job is frozen (SIGSTOP) and instance B
// takes the job over with its own state.dir and checkpoint.dir, the same
// input, consumer group, transactional ids and output topic. B's
// checkpoint.dir starts as a copy of A's, as a standby restores the job's
// checkpoints before it takes over (without the checkpoint of the epoch the
// output committed an instance refuses to start: txn/README.md, "Recovery").
// B's start fences A through the transactional ids; A is woken after B
// committed an epoch, or right after B was spawned, while B initialises the
// ids. A must exit 3 (fenced) having committed nothing that B's recovery did
// not see, while B, a live job too, goes on: it is stopped (SIGTERM, exit 0)
// once A is gone and finishes the job as a bounded run.
void AnotherHostRound(const std::string& brokers, const std::string& name, uint64_t seed, Wake wake,
                      std::mt19937_64& rng) {
  test_support::TempDir dir;
  const GenerateOptions gen = RoundTrace(dir, brokers, name, seed);
  // A woken during B's start-up must not complete another checkpoint before
  // B fenced it (B could not restore it), so it stops itself just after one
  // completed, with most of a long epoch ahead of it: before its commit,
  // while its commit is due (the transaction holds the epoch's output and
  // input offsets), or after it.
  const int64_t interval_ms = wake == Wake::kDuringSuccessorStartUp ? 2000 : 50;
  std::map<std::string, std::string> stop_at;
  if (wake == Wake::kDuringSuccessorStartUp) {
    const char* const points[] = {"checkpoint_complete", "commit", "after_commit"};
    stop_at["CTRJOIN_STOP_AT"] =
        fmt::format("{}:{}", points[rng() % std::size(points)], 1 + rng() % 2);
  }
  const std::string a_config = dir.File("a.yaml");
  const std::string b_config = dir.File("b.yaml");
  for (const auto& [config, host] : {std::pair{a_config, "a"}, std::pair{b_config, "b"}}) {
    WriteFile(config, BaseConfig(dir / host, interval_ms) +
                          KafkaSourceYaml(brokers, name, false, kShortFetchWaits) +
                          KafkaSinkYaml(brokers, name, interval_ms));
  }

  Child a(kBinary, RunCommand(a_config), dir.File("a.log"), stop_at);
  if (wake == Wake::kAfterSuccessorCommitted) {
    // Anywhere: in the first epochs' burst, or while A idles at the end of
    // the input (it reads the trace in about 2 s).
    ASSERT_TRUE(a.WaitForLog(kCommitted, seconds(60))) << Report(a);
    std::this_thread::sleep_for(milliseconds(rng() % 2000));
    a.Signal(SIGSTOP);
  }
  ASSERT_TRUE(a.WaitStopped(seconds(60))) << Report(a);
  const uint64_t committed_before_freeze = LastCommitted(a);
  CopyCheckpoints(dir / "a/state/checkpoints", dir / "b/state/checkpoints");

  Child b(kBinary, RunCommand(b_config), dir.File("b.log"));
  if (wake == Wake::kAfterSuccessorCommitted) {
    ASSERT_TRUE(b.WaitForLog(kCommitted, seconds(60))) << Report(b);
  } else {
    // Before B initialised the transactional ids, or while, or after.
    std::this_thread::sleep_for(milliseconds(rng() % 300));
  }
  a.Signal(SIGCONT);
  ASSERT_TRUE(a.WaitExit(seconds(60))) << "A woke and went on: " << Report(a);
  EXPECT_EQ(a.exit_code(), 3) << "A must exit 3 (fenced): " << Report(a);
  EXPECT_TRUE(b.Running()) << "B must go on: " << Report(b);
  const std::optional<uint64_t> restored = RestoredEpoch(b);
  ASSERT_TRUE(restored.has_value()) << Report(b);
  // Whatever A committed, B's recovery saw it: A committed nothing once B
  // had fenced it.
  EXPECT_LE(LastCommitted(a), *restored) << Report(a);

  b.Signal(SIGTERM);
  ASSERT_TRUE(b.WaitExit(seconds(60))) << Report(b);
  EXPECT_EQ(b.exit_code(), 0) << Report(b);
  Child b_end(kBinary, BoundedRunCommand(b_config), dir.File("b-end.log"));
  ASSERT_TRUE(b_end.WaitExit(seconds(120))) << Report(b_end);
  EXPECT_EQ(b_end.exit_code(), 0) << Report(b_end);

  const size_t samples = ExpectKafkaOutputExactlyOnce(dir, brokers, name, gen);
  std::printf(
      "%s: A frozen%s with epochs up to %llu committed, woken %s, exit %d having committed up "
      "to epoch %llu; B restored epoch %llu, committed up to %llu, stopped (exit %d) and "
      "finished (exit %d); %zu samples\n",
      name.c_str(), stop_at.empty() ? "" : (" at " + stop_at["CTRJOIN_STOP_AT"]).c_str(),
      static_cast<unsigned long long>(committed_before_freeze),
      wake == Wake::kAfterSuccessorCommitted ? "after B committed" : "as B started", a.exit_code(),
      static_cast<unsigned long long>(LastCommitted(a)), static_cast<unsigned long long>(*restored),
      static_cast<unsigned long long>(LastCommitted(b)), b.exit_code(), b_end.exit_code(), samples);
}

void AnotherHostRounds(Wake wake, uint64_t seed) {
  testbroker::BrokerOptions options;
  options.default_partitions = 2;
  auto broker = testbroker::TestBroker::Start(options);
  ASSERT_TRUE(broker.ok()) << broker.status().ToString();
  std::mt19937_64 rng(seed);
  for (int round = 0; round < ZombieRounds(); ++round) {
    SCOPED_TRACE(fmt::format("round {}", round));
    const std::string name =
        fmt::format("{}-{}", wake == Wake::kAfterSuccessorCommitted ? "host" : "startup", round);
    AnotherHostRound((*broker)->bootstrap(), name, seed + round, wake, rng);
    if (::testing::Test::HasFailure()) return;
  }
}

TEST(CrashTest, ZombieOnAnotherHostIsFencedAndExits3) {
  AnotherHostRounds(Wake::kAfterSuccessorCommitted, 60606);
}

TEST(CrashTest, ZombieWokenDuringSuccessorStartUpIsFenced) {
  AnotherHostRounds(Wake::kDuringSuccessorStartUp, 70707);
}

}  // namespace
}  // namespace ctrjoin
