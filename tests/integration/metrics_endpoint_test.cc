// The HTTP endpoint of a running pipeline (RunPipelineWith over a generated
// trace, http enabled on 127.0.0.1): /healthz, /ready and /metrics while it
// runs, `promtool check metrics` over a real scrape, and a real Prometheus
// server (127.0.0.1 only) scraping it. promtool and prometheus come from the
// Debian package `prometheus` (scripts/setup); without them these tests
// fail, they are never skipped.
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <simdjson.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "sinks/file_sink.h"
#include "sinks/txn_file_sink.h"
#include "src/app/app.h"
#include "src/io/file_source.h"
#include "src/io/kafka_source.h"
#include "tests/support/http_client.h"
#include "tests/support/kafka_test_util.h"
#include "tests/support/temp_dir.h"
#include "tests/support/trace_oracle.h"
#include "txn/checkpoint_coordinator.h"

namespace ctrjoin {
namespace {

using Clock = std::chrono::steady_clock;
using test_support::HttpGet;
using test_support::HttpReply;

constexpr int64_t kWindowMs = 30'000;

// Passes a FileSource through but holds back the end of the input (the
// files' `finished` and end_of_input) until Release(), so that the pipeline
// stays up, idle, while a test looks at it. Next runs on the pipeline's
// source node; Release and drained from the test thread.
class GatedSource : public Source {
 public:
  explicit GatedSource(std::unique_ptr<FileSource> inner) : inner_(std::move(inner)) {}

  Result<SourceBatch> Next(size_t max_records) override {
    if (!drained_.load()) {
      Result<SourceBatch> batch = inner_->Next(max_records);
      if (!batch.ok()) return batch;
      end_.finished.insert(end_.finished.end(), batch->finished.begin(), batch->finished.end());
      batch->finished.clear();
      if (batch->end_of_input) {
        batch->end_of_input = false;
        drained_.store(true);
      }
      return batch;
    }
    if (!released_.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // an idle poll
      return SourceBatch{};
    }
    SourceBatch end = std::move(end_);
    end.end_of_input = true;
    return end;
  }
  std::string Describe() const override { return "gated " + inner_->Describe(); }

  bool drained() const { return drained_.load(); }
  void Release() { released_.store(true); }

 private:
  std::unique_ptr<FileSource> inner_;
  SourceBatch end_;  // source node only
  std::atomic<bool> drained_{false};
  std::atomic<bool> released_{false};
};

// Waits (bounded) for pred, checking every 50 ms.
template <typename Pred>
bool WaitFor(Pred pred, std::chrono::seconds bound = std::chrono::seconds(60)) {
  const Clock::time_point deadline = Clock::now() + bound;
  while (!pred()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

// The full path of an executable on PATH, or "" when there is none.
std::string FindOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::string candidate = dir + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Starts argv with stdin from `input` ("" = /dev/null) and stdout and
// stderr into `output`.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& input,
            const std::string& output) {
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  const int in = ::open(input.empty() ? "/dev/null" : input.c_str(), O_RDONLY);
  const int out = ::open(output.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (in < 0 || out < 0) ::_exit(126);
  ::dup2(in, 0);
  ::dup2(out, 1);
  ::dup2(out, 2);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  ::execv(args[0], args.data());
  ::_exit(127);
}

// The exit code of a finished child (128 + signal when killed).
int Wait(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Runs `promtool check metrics` over an exposition; its exit code and output.
std::pair<int, std::string> Promtool(const std::string& promtool, const test_support::TempDir& dir,
                                     const std::string& exposition) {
  const std::string in = dir.File("scrape.txt");
  const std::string out = dir.File("promtool.out");
  std::ofstream(in) << exposition;
  const int code = Wait(Spawn({promtool, "check", "metrics"}, in, out));
  return {code, ReadFile(out)};
}

// A pipeline over a generated trace, with its HTTP endpoint on a free
// loopback port, running on its own thread until Finish().
class RunningPipeline {
 public:
  RunningPipeline(const test_support::TempDir& dir, bool exactly_once) {
    GenerateOptions gen;
    gen.impressions_path = dir.File("impressions.jsonl");
    gen.clicks_path = dir.File("clicks.jsonl");
    gen.impressions = 20'000;
    Status generated = GenerateTrace(gen, test_support::OracleWorkload(11, kWindowMs));
    EXPECT_TRUE(generated.ok()) << generated.ToString();

    Result<uint16_t> port = test_support::FreeLoopbackPort();
    EXPECT_TRUE(port.ok()) << port.status().ToString();
    port_ = port.ok() ? *port : 0;
    config_.source.files.impressions_path = gen.impressions_path;
    config_.source.files.clicks_path = gen.clicks_path;
    config_.join.window_ms = kWindowMs;
    config_.state.dir = dir.File("state");
    config_.state.memory_budget_mb = 64;
    config_.pipeline.shards = 2;
    config_.pipeline.batch_size = 256;
    config_.http.enabled = true;
    config_.http.server.address = fmt::format("127.0.0.1:{}", port_);
    config_.checkpoint.enabled = exactly_once;
    config_.checkpoint.interval_ms = 100;
    config_.checkpoint.dir = dir.File("checkpoints");

    auto files = FileSource::Open(config_.source.files, config_.schema);
    EXPECT_TRUE(files.ok()) << files.status().ToString();
    source_ = std::make_unique<GatedSource>(std::move(files).value());
    auto dead = LineWriter::OpenFile(dir.File("dead.jsonl"), false);
    EXPECT_TRUE(dead.ok());
    dead_letters_ = std::make_unique<JsonLinesDeadLetterSink>(std::move(dead).value());
    if (exactly_once) {
      TransactionalFileSinkOptions o;
      o.dir = dir.File("out");
      auto txn = TransactionalFileSink::Open(o);
      EXPECT_TRUE(txn.ok()) << txn.status().ToString();
      txn_sink_ = std::move(txn).value();
      auto c = CheckpointCoordinator::Open(config_.checkpoint, txn_sink_.get(), CommitLog{},
                                           &metrics_.checkpoint);
      EXPECT_TRUE(c.ok()) << c.status().ToString();
      coordinator_ = std::move(c).value();
      auto resume = coordinator_->Recover();
      EXPECT_TRUE(resume.ok() && !resume->has_value());
      eos_ = ExactlyOnce{coordinator_.get(), std::nullopt};
    } else {
      auto out = LineWriter::OpenFile(dir.File("out.jsonl"), false);
      EXPECT_TRUE(out.ok());
      sink_ = std::make_unique<FileSampleSink>(std::move(out).value(), SampleFormat::kJson);
    }
    thread_ = std::thread([this, exactly_once] {
      SampleSink& sink = exactly_once ? static_cast<SampleSink&>(*coordinator_) : *sink_;
      status_ = RunPipelineWith(config_, metrics_, *source_, nullptr, sink, *dead_letters_,
                                exactly_once ? &eos_ : nullptr);
      done_.store(true);
    });
  }

  ~RunningPipeline() {
    if (thread_.joinable()) {
      Status st = Finish();  // a test that failed half-way; its status no longer matters
      (void)st;
    }
  }

  // Releases the end of the input; the run's status.
  Status Finish() {
    source_->Release();
    thread_.join();
    return status_;
  }

  // Waits (bounded) until every record was read and /ready answers 200.
  ::testing::AssertionResult WaitUntilDrainedAndReady() {
    const bool ok = WaitFor([&] {
      if (done_.load()) return true;
      if (!source_->drained()) return false;
      Result<HttpReply> ready = HttpGet(port_, "/ready");
      return ready.ok() && ready->status == 200;
    });
    if (done_.load()) {
      return ::testing::AssertionFailure() << "the run ended early: " << status_.ToString();
    }
    if (!ok) return ::testing::AssertionFailure() << "not drained and ready within 60 s";
    return ::testing::AssertionSuccess();
  }

  uint16_t port() const { return port_; }
  const Metrics& metrics() const { return metrics_; }

 private:
  Config config_;
  uint16_t port_ = 0;
  Metrics metrics_;
  std::unique_ptr<GatedSource> source_;
  std::unique_ptr<DeadLetterSink> dead_letters_;
  std::unique_ptr<SampleSink> sink_;
  std::unique_ptr<TransactionalFileSink> txn_sink_;
  std::unique_ptr<CheckpointCoordinator> coordinator_;
  ExactlyOnce eos_;
  std::thread thread_;
  std::atomic<bool> done_{false};
  Status status_;
};

TEST(MetricsEndpointTest, PromtoolAcceptsTheScrapeOfARunningExactlyOnceRun) {
  const std::string promtool = FindOnPath("promtool");
  ASSERT_FALSE(promtool.empty())
      << "promtool not found on PATH: run scripts/setup (Debian package prometheus)";
  test_support::TempDir dir;
  RunningPipeline run(dir, /*exactly_once=*/true);
  ASSERT_TRUE(run.WaitUntilDrainedAndReady());
  // A checkpoint after the last record, so that its epoch's batches count
  // in the read -> commit histogram.
  const uint64_t committed = run.metrics().checkpoint.committed.Get();
  ASSERT_TRUE(WaitFor([&] { return run.metrics().checkpoint.committed.Get() > committed + 1; }));

  Result<HttpReply> health = HttpGet(run.port(), "/healthz");
  ASSERT_TRUE(health.ok()) << health.status().ToString();
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, "ok\n");
  Result<HttpReply> missing = HttpGet(run.port(), "/metricz");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404);
  Result<HttpReply> scrape = HttpGet(run.port(), "/metrics");
  ASSERT_TRUE(scrape.ok()) << scrape.status().ToString();
  ASSERT_EQ(scrape->status, 200);
  const std::string& body = scrape->body;
  EXPECT_NE(body.find("ctrjoin_events_in_total{topic=\"impressions\"} "), std::string::npos);
  EXPECT_NE(body.find("ctrjoin_checkpoint_last_completed_timestamp_seconds "), std::string::npos);
  EXPECT_EQ(body.find("ctrjoin_end_to_end_commit_latency_seconds_count 0\n"), std::string::npos)
      << "batches were committed";
  EXPECT_EQ(body.find("ctrjoin_stage_latency_seconds_count{stage=\"parse\"} 0\n"),
            std::string::npos);
  EXPECT_NE(body.find("ctrjoin_pipeline_running 1\n"), std::string::npos);

  const auto [code, output] = Promtool(promtool, dir, body);
  EXPECT_EQ(code, 0) << output;
  EXPECT_EQ(output, "") << "promtool lints nothing";
  std::printf("promtool check metrics over a %zu-byte scrape: exit %d, output '%s'\n", body.size(),
              code, output.c_str());

  // The check can fail: a counter without _total, as a broken renderer
  // would write it, is reported.
  std::string broken = body;
  const std::string name = "ctrjoin_samples_out_total";
  for (size_t at = broken.find(name); at != std::string::npos; at = broken.find(name, at)) {
    broken.replace(at, name.size(), "ctrjoin_samples_out");
  }
  const auto [broken_code, broken_output] = Promtool(promtool, dir, broken);
  EXPECT_NE(broken_code, 0);
  EXPECT_NE(broken_output.find("ctrjoin_samples_out counter metrics should have \"_total\" suffix"),
            std::string::npos)
      << broken_output;

  Status st = run.Finish();
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_FALSE(HttpGet(run.port(), "/healthz").ok()) << "the server stopped with the run";
  EXPECT_EQ(run.metrics().pipeline.running.Get(), 0);
}

// Prometheus' HTTP API answer to an instant query: the value of each series
// (as text), or nullopt when the answer is not a successful vector.
std::optional<std::vector<std::string>> QueryValues(uint16_t port, const std::string& query) {
  std::string encoded;
  for (unsigned char c : query) {
    if (std::isalnum(c) || c == '_') {
      encoded += static_cast<char>(c);
    } else {
      encoded += fmt::format("%{:02X}", c);
    }
  }
  Result<HttpReply> reply = HttpGet(port, "/api/v1/query?query=" + encoded);
  if (!reply.ok() || reply->status != 200) return std::nullopt;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(reply->body).get(doc) != simdjson::SUCCESS) return std::nullopt;
  std::string_view status;
  simdjson::dom::array result;
  if (doc["status"].get(status) != simdjson::SUCCESS || status != "success" ||
      doc["data"]["result"].get(result) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  std::vector<std::string> values;
  for (simdjson::dom::element series : result) {
    std::string_view v;
    if (series["value"].at(1).get(v) == simdjson::SUCCESS) values.emplace_back(v);
  }
  return values;
}

TEST(MetricsEndpointTest, ARealPrometheusScrapesARunningPipeline) {
  const std::string prometheus = FindOnPath("prometheus");
  ASSERT_FALSE(prometheus.empty())
      << "prometheus not found on PATH: run scripts/setup (Debian package prometheus)";
  test_support::TempDir dir;
  RunningPipeline run(dir, /*exactly_once=*/false);
  ASSERT_TRUE(run.WaitUntilDrainedAndReady());

  Result<uint16_t> prom_port = test_support::FreeLoopbackPort();
  ASSERT_TRUE(prom_port.ok()) << prom_port.status().ToString();
  const std::string config = dir.File("prometheus.yml");
  std::ofstream(config) << fmt::format(R"(global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: ctrjoin
    static_configs:
      - targets: ['127.0.0.1:{}']
)",
                                       run.port());
  const std::string log = dir.File("prometheus.log");
  const pid_t pid =
      Spawn({prometheus, "--config.file=" + config, "--storage.tsdb.path=" + dir.File("tsdb"),
             fmt::format("--web.listen-address=127.0.0.1:{}", *prom_port), "--log.level=warn"},
            "", log);
  ASSERT_GT(pid, 0);

  // Until Prometheus reports the scrape succeeded and holds our samples
  // (bounded: it starts, waits for its first scrape interval, scrapes).
  std::optional<std::vector<std::string>> up, events;
  bool exited = false;
  const bool seen = WaitFor(
      [&] {
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) == pid) {
          exited = true;
          return true;
        }
        up = QueryValues(*prom_port, "up{job=\"ctrjoin\"}");
        events = QueryValues(*prom_port,
                             "ctrjoin_events_in_total{job=\"ctrjoin\",topic=\"impressions\"}");
        // The source is drained: the count no longer moves.
        return up && up->size() == 1 && (*up)[0] == "1" && events && events->size() == 1 &&
               (*events)[0] == std::to_string(run.metrics().pipeline.impressions_in.Get());
      },
      std::chrono::seconds(90));
  std::optional<std::vector<std::string>> quantile = QueryValues(
      *prom_port, "histogram_quantile(0.99, ctrjoin_end_to_end_latency_seconds_bucket)");
  if (!exited) {
    ::kill(pid, SIGTERM);
    EXPECT_EQ(Wait(pid), 0) << "prometheus did not stop cleanly:\n" << ReadFile(log);
  }
  ASSERT_FALSE(exited) << "prometheus exited early:\n" << ReadFile(log);
  ASSERT_TRUE(seen) << "no successful scrape of all impressions within 90 s; up = "
                    << (up ? ::testing::PrintToString(*up) : "no answer")
                    << ", events = " << (events ? ::testing::PrintToString(*events) : "no answer")
                    << ", expected " << run.metrics().pipeline.impressions_in.Get() << "\n"
                    << ReadFile(log);
  EXPECT_GT(run.metrics().pipeline.impressions_in.Get(), 19'000u);
  ASSERT_TRUE(quantile && quantile->size() == 1);
  EXPECT_GT(std::stod((*quantile)[0]), 0) << "end-to-end p99 as Prometheus computes it";
  std::printf(
      "prometheus: up = %s, ctrjoin_events_in_total{topic=\"impressions\"} = %s, "
      "end-to-end p99 = %s s\n",
      (*up)[0].c_str(), (*events)[0].c_str(), (*quantile)[0].c_str());

  Status st = run.Finish();
  ASSERT_TRUE(st.ok()) << st.ToString();
}

// ctrjoin_consumer_lag_records comes from KafkaSource::ConsumerLag: the
// high watermark librdkafka cached from its last fetch minus the position.
TEST(ConsumerLagTest, KafkaSourceReportsHighWatermarkMinusPosition) {
  auto cluster = test_support::MockKafkaCluster::Start();
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  ASSERT_TRUE((*cluster)->CreateTopic("impressions", 1).ok());
  ASSERT_TRUE((*cluster)->CreateTopic("clicks", 1).ok());
  test_support::TempDir dir;
  constexpr int kRecords = 100;
  {
    std::ofstream lines(dir.File("impressions.jsonl"));
    for (int i = 0; i < kRecords; ++i) lines << "{\"impression_id\": \"i" << i << "\"}\n";
  }
  auto producer = BulkProducer::Open({{"bootstrap.servers", (*cluster)->bootstraps()}});
  ASSERT_TRUE(producer.ok()) << producer.status().ToString();
  ASSERT_TRUE(
      test_support::ProduceLines(**producer, "impressions", dir.File("impressions.jsonl"), 1).ok());

  KafkaSourceOptions o;
  o.brokers = (*cluster)->bootstraps();
  o.poll_timeout_ms = 200;
  auto source = KafkaSource::Open(o);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  EXPECT_TRUE((*source)->ConsumerLag().empty()) << "nothing read yet: unknown";

  size_t read = 0;
  ASSERT_TRUE(WaitFor([&] {
    Result<SourceBatch> batch = (*source)->Next(30);
    EXPECT_TRUE(batch.ok()) << batch.status().ToString();
    if (batch.ok()) read += batch->records.size();
    return !batch.ok() || read >= 30;
  }));
  ASSERT_LT(read, static_cast<size_t>(kRecords));
  const std::vector<PartitionLag> lags = (*source)->ConsumerLag();
  ASSERT_EQ(lags.size(), 1u) << "an empty topic (clicks) has no position yet";
  EXPECT_EQ(lags[0].id, (PartitionId{StreamKind::kImpression, 0}));
  EXPECT_EQ(lags[0].records, kRecords - static_cast<int64_t>(read));
}

// src/ops/monitoring: the alert rules and the Grafana dashboard users load.

std::string SourceFile(const std::string& relative) {
  return std::string(CTRJOIN_SOURCE_DIR) + "/" + relative;
}

// Runs promtool with args; its exit code and output.
std::pair<int, std::string> RunPromtool(const test_support::TempDir& dir,
                                        std::vector<std::string> args) {
  const std::string promtool = FindOnPath("promtool");
  if (promtool.empty()) return {-1, "promtool not found on PATH: run scripts/setup"};
  args.insert(args.begin(), promtool);
  const std::string out = dir.File("promtool-run.out");
  const int code = Wait(Spawn(args, "", out));
  return {code, ReadFile(out)};
}

// The metric families src/ops/README.md lists (a test in app_test keeps
// that list in step with the code).
std::set<std::string> DocumentedMetrics() {
  const std::string readme = ReadFile(SourceFile("src/ops/README.md"));
  std::set<std::string> names;
  const std::regex row(R"(\| `((ctrjoin|process)_[a-z0-9_]+)` \|)");
  for (auto it = std::sregex_iterator(readme.begin(), readme.end(), row);
       it != std::sregex_iterator(); ++it) {
    names.insert((*it)[1].str());
  }
  return names;
}

// Metric names a PromQL expression reads (a histogram's _bucket, _sum and
// _count series stand for its family).
std::set<std::string> MetricsIn(const std::string& expr) {
  std::set<std::string> names;
  const std::regex name(R"(\b((ctrjoin|process)_[a-z0-9_]+))");
  for (auto it = std::sregex_iterator(expr.begin(), expr.end(), name); it != std::sregex_iterator();
       ++it) {
    std::string n = (*it)[1].str();
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string_view sv(suffix);
      if (n.size() > sv.size() && n.ends_with(sv) && n.find("_seconds") != std::string::npos) {
        n.resize(n.size() - sv.size());
      }
    }
    names.insert(n);
  }
  return names;
}

TEST(MonitoringTest, PromtoolChecksTheAlertRulesAndTheirUnitTestsPass) {
  test_support::TempDir dir;
  const auto [check, check_out] =
      RunPromtool(dir, {"check", "rules", SourceFile("src/ops/monitoring/alerts.yml")});
  EXPECT_EQ(check, 0) << check_out;
  EXPECT_NE(check_out.find("SUCCESS"), std::string::npos) << check_out;
  const auto [test, test_out] =
      RunPromtool(dir, {"test", "rules", SourceFile("src/ops/monitoring/alerts_test.yml")});
  EXPECT_EQ(test, 0) << test_out;
  std::printf("promtool check rules: exit %d; promtool test rules: exit %d\n", check, test);

  // The unit tests can fail: an alert expected where none fires is reported.
  std::string wrong = ReadFile(SourceFile("src/ops/monitoring/alerts_test.yml"));
  const std::string quiet =
      "      - eval_time: 1m\n        alertname: CtrjoinDown\n        exp_alerts: []";
  const size_t at = wrong.find(quiet);
  ASSERT_NE(at, std::string::npos);
  wrong.replace(at, quiet.size(),
                "      - eval_time: 1m\n        alertname: CtrjoinDown\n        exp_alerts:\n"
                "          - exp_labels: {severity: page, job: ctrjoin, instance: a}");
  std::filesystem::copy_file(SourceFile("src/ops/monitoring/alerts.yml"), dir.File("alerts.yml"));
  std::ofstream(dir.File("alerts_test.yml")) << wrong;
  const auto [failed, failed_out] =
      RunPromtool(dir, {"test", "rules", dir.File("alerts_test.yml")});
  EXPECT_NE(failed, 0) << failed_out;
}

TEST(MonitoringTest, TheDashboardAndTheRulesQueryOnlyDocumentedMetricsInValidPromQl) {
  test_support::TempDir dir;
  const std::set<std::string> documented = DocumentedMetrics();
  ASSERT_GT(documented.size(), 50u);

  simdjson::dom::parser parser;
  simdjson::dom::element dashboard;
  ASSERT_EQ(parser.load(SourceFile("src/ops/monitoring/dashboard.json")).get(dashboard),
            simdjson::SUCCESS)
      << "dashboard.json is not JSON";
  std::vector<std::string> exprs;
  simdjson::dom::array panels;
  ASSERT_EQ(dashboard["panels"].get(panels), simdjson::SUCCESS);
  for (simdjson::dom::element panel : panels) {
    simdjson::dom::array targets;
    if (panel["targets"].get(targets) != simdjson::SUCCESS) continue;  // a row
    for (simdjson::dom::element target : targets) {
      std::string_view expr;
      ASSERT_EQ(target["expr"].get(expr), simdjson::SUCCESS);
      exprs.emplace_back(expr);
    }
  }
  ASSERT_GE(exprs.size(), 20u);

  // Each query as a recording rule: promtool parses it as Prometheus would.
  std::string rules = "groups:\n  - name: dashboard\n    rules:\n";
  for (size_t i = 0; i < exprs.size(); ++i) {
    std::string e = std::regex_replace(exprs[i], std::regex(R"(\$__rate_interval)"), "1m");
    e = std::regex_replace(e, std::regex(R"(\$instance)"), ".*");
    rules +=
        fmt::format("      - record: dashboard:query_{}\n        expr: |\n          {}\n", i, e);
    for (const std::string& name : MetricsIn(exprs[i])) {
      EXPECT_TRUE(documented.contains(name))
          << "dashboard query " << i << " reads " << name << ", not in src/ops/README.md";
    }
  }
  std::ofstream(dir.File("dashboard_rules.yml")) << rules;
  const auto [code, out] = RunPromtool(dir, {"check", "rules", dir.File("dashboard_rules.yml")});
  EXPECT_EQ(code, 0) << out;
  std::printf("%zu dashboard queries: promtool check rules exit %d\n", exprs.size(), code);

  const std::string alerts = ReadFile(SourceFile("src/ops/monitoring/alerts.yml"));
  const std::set<std::string> alerted = MetricsIn(alerts);
  ASSERT_GE(alerted.size(), 10u);
  for (const std::string& name : alerted) {
    EXPECT_TRUE(documented.contains(name)) << "alerts.yml reads " << name;
  }

  // The name check can fail.
  EXPECT_FALSE(documented.contains("ctrjoin_samples_out"));
  EXPECT_TRUE(MetricsIn("rate(ctrjoin_stage_latency_seconds_bucket[1m])")
                  .contains("ctrjoin_stage_latency_seconds"));
}

}  // namespace
}  // namespace ctrjoin
