// End to end over files: a generated trace through `RunPipeline`, compared
// with labels computed independently from the same files by a brute-force
// oracle (no watermarks, no state: just the window rule).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <oneapi/tbb/task_arena.h>
#include <simdjson.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "joins/join_state.h"
#include "joins/label_join.h"
#include "sinks/file_sink.h"
#include "sinks/txn_file_sink.h"
#include "src/app/app.h"
#include "src/core/hash.h"
#include "src/io/file_source.h"
#include "src/io/workload.h"
#include "src/pipeline/checkpoint.h"
#include "src/pipeline/pipeline.h"
#include "src/state/spill_store.h"
#include "tests/support/temp_dir.h"
#include "tests/support/trace_oracle.h"
#include "txn/checkpoint_coordinator.h"

namespace ctrjoin {
namespace {

constexpr int64_t kWindowMs = 30'000;
using test_support::ComputeOracle;
using test_support::ExpectDeadLettersOnce;
using test_support::ExpectMatchesOracle;
using test_support::Oracle;
using test_support::ReadLines;
using test_support::ReadSamples;

class FilePipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    GenerateOptions gen;
    gen.impressions_path = Path("impressions.jsonl");
    gen.clicks_path = Path("clicks.jsonl");
    gen.impressions = 30'000;
    ASSERT_TRUE(GenerateTrace(gen, test_support::OracleWorkload(7, kWindowMs)).ok());
  }

  std::string Path(const std::string& name) const { return dir_.File(name); }

  Config MakeConfig(const std::string& out, uint32_t shards, size_t batch, uint64_t budget_mb) {
    Config c;
    c.source.files.impressions_path = Path("impressions.jsonl");
    c.source.files.clicks_path = Path("clicks.jsonl");
    c.watermark.out_of_orderness_ms = 5'000;
    c.join.window_ms = kWindowMs;
    c.state.dir = Path("state-" + out);
    c.state.memory_budget_mb = budget_mb;
    c.sink.type = SinkType::kFile;
    c.sink.path = Path(out);
    c.dead_letter.path = Path("dead-" + out);
    c.pipeline.shards = shards;
    c.pipeline.batch_size = batch;
    return c;
  }

  test_support::TempDir dir_;
};

TEST_F(FilePipelineTest, OneSamplePerImpressionWithTheWindowLabel) {
  const Oracle oracle = ComputeOracle(Path("impressions.jsonl"), Path("clicks.jsonl"), kWindowMs);
  ASSERT_GT(oracle.labels.size(), 29'000u);
  ASSERT_GT(oracle.rejected, 0u);

  Metrics metrics;
  Status st = RunPipeline(MakeConfig("samples.jsonl", 4, 256, 256), metrics);
  ASSERT_TRUE(st.ok()) << st.ToString();

  const size_t positives = ExpectMatchesOracle(oracle, ReadSamples(Path("samples.jsonl")));
  EXPECT_GT(positives, 500u);
  // A single file's schema is published beside it.
  EXPECT_EQ(ReadLines(Path("samples.jsonl.schema.json")).front(), "{");
  EXPECT_EQ(metrics.join.positives.Get(), positives);
  EXPECT_EQ(metrics.pipeline.dead_letters.Get(), oracle.rejected);
  EXPECT_EQ(ReadLines(Path("dead-samples.jsonl")).size(), oracle.rejected);
  // Each dead letter's reason_code is counted under its topic and reason.
  std::map<std::pair<std::string, std::string>, uint64_t> codes;
  simdjson::dom::parser parser;
  for (const std::string& line : ReadLines(Path("dead-samples.jsonl"))) {
    simdjson::dom::element doc;
    ASSERT_EQ(parser.parse(line).get(doc), simdjson::SUCCESS) << line;
    std::string_view stream, code;
    ASSERT_EQ(doc["stream"].get(stream), simdjson::SUCCESS);
    ASSERT_EQ(doc["reason_code"].get(code), simdjson::SUCCESS) << line;
    ++codes[{std::string(stream), std::string(code)}];
  }
  uint64_t counted = 0;
  for (StreamKind s : {StreamKind::kImpression, StreamKind::kClick}) {
    for (const auto& [code, name] : NamesOf(RejectCode{})) {
      const uint64_t n =
          metrics.pipeline.dead_letters_by_reason[static_cast<size_t>(s)][static_cast<size_t>(code)]
              .Get();
      const std::pair<std::string, std::string> key{StreamName(s), std::string(name)};
      EXPECT_EQ(n, codes[key]) << name;
      counted += n;
    }
  }
  EXPECT_EQ(counted, oracle.rejected);
  EXPECT_GT((codes[{"impressions", "invalid_json"}]), 0u);
  EXPECT_GT(metrics.join.duplicate_clicks.Get(), 0u);
  EXPECT_GT(metrics.join.duplicate_impressions.Get(), 0u);
  EXPECT_GT(metrics.join.orphan_clicks.Get(), 0u);
  EXPECT_EQ(metrics.join.late_clicks.Get(), 0u);
  EXPECT_EQ(metrics.join.state_entries.Get(), 0) << "every window closed at the end";
}

// A line the parser rejects, but with a plausible ts (the trace's last), as
// line 2 of one input file: it must not steer the merge. Before, it held its
// file back while the other was read to that ts; the held-back file went
// idle, the watermark ran ahead and windows closed before their clicks were
// read (wrong labels), or impressions arrived late (lost samples). Each
// rejection is one the oracle makes too.
struct BadLine {
  const char* name;
  bool in_clicks;
  const char* json;  // with {} for the ts
  int64_t idle_timeout_ms;
};

class FileMergeTest : public FilePipelineTest, public ::testing::WithParamInterface<BadLine> {};

TEST_P(FileMergeTest, ARejectedLineDoesNotSteerTheMergeNorMakeItsFileIdle) {
  const BadLine& bad = GetParam();
  const std::string file = Path(bad.in_clicks ? "clicks.jsonl" : "impressions.jsonl");
  const std::string last = ReadLines(Path("impressions.jsonl")).back();
  const int64_t last_ts = std::stoll(last.substr(last.find("\"ts\":") + 5));
  std::vector<std::string> lines = ReadLines(file);
  lines.insert(lines.begin() + 1, fmt::format(fmt::runtime(bad.json), last_ts));
  {
    std::ofstream out(file, std::ios::trunc);
    for (const std::string& l : lines) out << l << "\n";
  }
  const Oracle oracle = ComputeOracle(Path("impressions.jsonl"), Path("clicks.jsonl"), kWindowMs);

  Config c = MakeConfig("merge.jsonl", 2, 64, 256);
  c.watermark.idle_timeout_ms = bad.idle_timeout_ms;
  Metrics metrics;
  Status st = RunPipeline(c, metrics);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ExpectMatchesOracle(oracle, ReadSamples(Path("merge.jsonl")));
  EXPECT_EQ(metrics.pipeline.dead_letters.Get(), oracle.rejected);
  EXPECT_EQ(metrics.join.late_impressions.Get(), 0u);
}

INSTANTIATE_TEST_SUITE_P(
    BadLines, FileMergeTest,
    ::testing::Values(
        BadLine{"ClickWithABoolId", true, R"({{"impression_id": true, "ts": {}}})", 100},
        BadLine{"ClickWithABoolIdIdle1ms", true, R"({{"impression_id": true, "ts": {}}})", 1},
        BadLine{"ClickNotAnObject", true, R"([{{"impression_id": "x", "ts": {}}}])", 1},
        BadLine{"ImpressionWithABoolItem", false,
                R"({{"impression_id": "bad", "user_id": "u", "item_id": true, "ts": {}}})", 1},
        BadLine{"ImpressionWithoutUser", false,
                R"({{"impression_id": "bad", "item_id": "i", "ts": {}}})", 100}),
    [](const ::testing::TestParamInfo<BadLine>& info) { return std::string(info.param.name); });

// (Spilling is covered at the join level, in joins/join_state_test.cc.)
TEST_F(FilePipelineTest, SameInputSameSamplesWhateverShardsAndBatches) {
  Metrics m1, m2;
  ASSERT_TRUE(RunPipeline(MakeConfig("a.jsonl", 1, 512, 1024), m1).ok());
  ASSERT_TRUE(RunPipeline(MakeConfig("b.jsonl", 3, 97, 64), m2).ok());
  const auto a = ReadSamples(Path("a.jsonl"));
  const auto b = ReadSamples(Path("b.jsonl"));
  EXPECT_GT(a.size(), 29'000u);
  EXPECT_EQ(a, b);
}

// A bounded replay's end (Pipeline::EndAfterWindows): the first 3000
// impressions against all 60 s of clicks; the run ends once the watermark closes
// the last of their windows, long before the clicks end, with every label
// right.
TEST_F(FilePipelineTest, EndAfterWindowsStopsOnceTheRangeIsLabelled) {
  {
    std::ofstream head(Path("head.jsonl"));
    const std::vector<std::string> lines = ReadLines(Path("impressions.jsonl"));
    for (size_t i = 0; i < 3'000; ++i) head << lines[i] << "\n";
  }
  const Oracle oracle = ComputeOracle(Path("head.jsonl"), Path("clicks.jsonl"), kWindowMs);
  Config c = MakeConfig("head-samples.jsonl", 2, 256, 256);
  c.source.files.impressions_path = Path("head.jsonl");
  auto source = FileSource::Open(c.source.files, c.schema);
  ASSERT_TRUE(source.ok());
  auto out = LineWriter::OpenFile(Path("head-samples.jsonl"), false);
  ASSERT_TRUE(out.ok());
  FileSampleSink sink(std::move(out).value(), SampleFormat::kJson);
  auto dead = LineWriter::OpenFile(Path("head-dead.jsonl"), false);
  ASSERT_TRUE(dead.ok());
  JsonLinesDeadLetterSink dead_letters(std::move(dead).value());
  Metrics metrics;
  Status st = RunPipelineWith(c, metrics, **source, nullptr, sink, dead_letters, nullptr,
                              /*end_after_window_ms=*/kWindowMs);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ExpectMatchesOracle(oracle, ReadSamples(Path("head-samples.jsonl")));
  const size_t clicks = ReadLines(Path("clicks.jsonl")).size();
  // 3000 impressions are 6 s of event time; their windows close at about
  // 6 + 30 + 5 s of the 60 s of clicks.
  EXPECT_LT(metrics.pipeline.clicks_in.Get(), clicks * 3 / 4)
      << "read clicks long past the range's windows";
}

// A transactional sink that fails the commit of one epoch (no effect) and
// forwards everything else: the run then fails after later batches, and
// their dead letters, went through the graph. It may pace the writes (a
// sleep per write), so that the input lasts past that epoch whatever the
// machine's speed.
class FailingCommit : public TransactionalSink {
 public:
  FailingCommit(TransactionalSink* sink, EpochId fail, std::chrono::microseconds pace)
      : sink_(sink), fail_(fail), pace_(pace) {}
  Status Begin(EpochId epoch) override { return sink_->Begin(epoch); }
  Status Write(std::span<const Sample> samples) override {
    std::this_thread::sleep_for(pace_);
    return sink_->Write(samples);
  }
  Status WriteDeadLetter(const DeadLetter& letter) override {
    return sink_->WriteDeadLetter(letter);
  }
  Status PreCommit(EpochId epoch) override { return sink_->PreCommit(epoch); }
  Status Commit(EpochId epoch) override {
    if (epoch == fail_) return Status::IoError("injected commit failure", Effect::kNoEffect);
    return sink_->Commit(epoch);
  }
  Status Abort(EpochId epoch) override { return sink_->Abort(epoch); }
  Result<EpochId> Recover(EpochId last) override { return sink_->Recover(last); }
  std::string Describe() const override { return sink_->Describe(); }

 private:
  TransactionalSink* const sink_;
  const EpochId fail_;
  const std::chrono::microseconds pace_;
};

// One exactly-once run over c's files into the transactional file sink at
// c.sink.path, recovering first, as `ctrjoin run` does; the commit of epoch
// fail_commit (if not 0) fails, and each write then sleeps 1 ms (hundreds of
// writes: the input lasts several intervals of 50 ms).
Status RunExactlyOnce(const Config& c, EpochId fail_commit) {
  auto files = TransactionalFileSink::Open({c.sink.path, SampleFormat::kJson});
  if (!files.ok()) return files.status();
  FailingCommit sink(
      files->get(), fail_commit,
      fail_commit == EpochId{} ? std::chrono::microseconds(0) : std::chrono::microseconds(1000));
  Metrics metrics;
  auto coordinator = CheckpointCoordinator::Open(c.checkpoint, &sink, {}, &metrics.checkpoint);
  if (!coordinator.ok()) return coordinator.status();
  auto source = FileSource::Open(c.source.files, c.schema);
  if (!source.ok()) return source.status();
  ExactlyOnce eos{coordinator->get(), std::nullopt};
  auto resume = (*coordinator)->Recover();
  if (!resume.ok()) return resume.status();
  eos.resume = std::move(resume).value();
  if (eos.resume) CTRJOIN_RETURN_IF_ERROR((*source)->Seek(eos.resume->positions));
  return RunPipelineWith(c, metrics, **source, nullptr, **coordinator, **coordinator, &eos);
}

// The committed dead letters (<dir>/dead-letters/*.jsonl) into `path`.
void CollectDeadLetters(const std::string& dir, const std::string& path) {
  std::ofstream all(path);
  for (const auto& e : std::filesystem::directory_iterator(dir + "/dead-letters")) {
    std::ifstream in(e.path());
    all << in.rdbuf();
  }
}

// Exactly once covers dead letters: a run whose commit fails (as a crash
// would end it) after later batches and their dead letters went through,
// then the restart, leave every rejected record in the committed dead
// letters once, beside every sample once.
TEST_F(FilePipelineTest, DeadLettersAreCommittedExactlyOnceAcrossAFailedRunAndItsRestart) {
  const Oracle oracle = ComputeOracle(Path("impressions.jsonl"), Path("clicks.jsonl"), kWindowMs);
  ASSERT_GT(oracle.rejected, 0u);
  Config c = MakeConfig("eos-out", 2, 32, 256);
  c.checkpoint.enabled = true;
  c.checkpoint.interval_ms = 50;
  c.checkpoint.dir = Path("state-eos-out/checkpoints");
  std::filesystem::create_directories(c.sink.path);

  Status first = RunExactlyOnce(c, EpochId{3});
  ASSERT_FALSE(first.ok()) << "the input ended before epoch 3 committed";
  EXPECT_NE(first.ToString().find("injected commit failure"), std::string::npos)
      << first.ToString();
  Status second = RunExactlyOnce(c, EpochId{});
  ASSERT_TRUE(second.ok()) << second.ToString();

  std::ofstream all(Path("eos-all.jsonl"));
  for (const auto& e : std::filesystem::directory_iterator(c.sink.path)) {
    if (!e.path().filename().string().starts_with("part-")) continue;
    std::ifstream in(e.path());
    all << in.rdbuf();
  }
  all.close();
  ExpectMatchesOracle(oracle, ReadSamples(Path("eos-all.jsonl")));
  CollectDeadLetters(c.sink.path, Path("eos-dead.jsonl"));
  ExpectDeadLettersOnce(oracle, Path("eos-dead.jsonl"));
}

// Resuming from a checkpoint taken while an input partition had not
// delivered anything yet. That partition held the watermark back (at the
// minimum) when the checkpoint was taken; the resumed run must go on
// holding it back until the partition delivers, also for a barrier (or a
// stop) routed before the source's first batch, which happens when start-up
// takes longer than the checkpoint interval. Otherwise the watermark jumps
// to the bound of the partitions that had data: a held click expires as an
// orphan before its impression arrives, and the impression gets label 0.
namespace resume {

constexpr int64_t kT0 = 1'767'225'600'000;
const PartitionId kImp0{StreamKind::kImpression, 0};
const PartitionId kImp1{StreamKind::kImpression, 1};
const PartitionId kClk0{StreamKind::kClick, 0};

RawRecord ImpressionRecord(PartitionId p, int64_t offset, const std::string& id, int64_t ts) {
  return RawRecord{
      SourcePosition{p.stream, p.partition, Offset{offset}},
      fmt::format(R"({{"impression_id":"{}","user_id":"u","item_id":"i","ts":{}}})", id, kT0 + ts)};
}

RawRecord ClickRecord(PartitionId p, int64_t offset, const std::string& id, int64_t ts) {
  return RawRecord{SourcePosition{p.stream, p.partition, Offset{offset}},
                   fmt::format(R"({{"impression_id":"{}","ts":{}}})", id, kT0 + ts)};
}

// Returns its batches in order, then stops the pipeline.
class ScriptedSource : public Source {
 public:
  std::deque<SourceBatch> batches;
  Pipeline* pipeline = nullptr;

  Result<SourceBatch> Next(size_t) override {
    if (batches.empty()) {
      pipeline->Stop();
      return SourceBatch{};
    }
    SourceBatch b = std::move(batches.front());
    batches.pop_front();
    return b;
  }
  Status Seek(const SourcePositions&) override { return Status::Ok(); }
  std::string Describe() const override { return "scripted"; }
};

// Injects a barrier at the chosen NextBarrier calls (and the final one) and
// keeps what each completed barrier recorded.
class ScriptedHooks : public CheckpointHooks {
 public:
  ScriptedHooks(std::set<int> at, uint64_t first_epoch)
      : at_(std::move(at)), next_epoch_(first_epoch) {}

  Result<std::shared_ptr<Barrier>> NextBarrier(bool final) override {
    const int call = calls_++;
    if (final_sent_ || (!final && !at_.contains(call))) return std::shared_ptr<Barrier>();
    auto b = std::make_shared<Barrier>();
    b->epoch = next_epoch_++;
    b->final = final;
    final_sent_ = final;
    return b;
  }
  Status OnBarrier(Barrier& barrier) override {
    barrier.meta.epoch = barrier.epoch;
    for (const ShardMark& m : barrier.marks) {
      CTRJOIN_RETURN_IF_ERROR(m.wait_durable());
      barrier.meta.shard_logs.push_back({m.segment, m.offset});
    }
    metas.push_back(barrier.meta);
    return Status::Ok();
  }

  std::vector<CheckpointMeta> metas;

 private:
  const std::set<int> at_;
  uint64_t next_epoch_;
  int calls_ = 0;
  bool final_sent_ = false;
};

class CollectingSink : public SampleSink {
 public:
  Status Write(std::span<const Sample> s) override {
    samples.insert(samples.end(), s.begin(), s.end());
    return Status::Ok();
  }
  Status Flush() override { return Status::Ok(); }
  std::string Describe() const override { return "collected"; }
  std::vector<Sample> samples;
};

class NoDeadLetters : public DeadLetterSink {
 public:
  Status Write(const DeadLetter&) override { return Status::Ok(); }
  Status Flush() override { return Status::Ok(); }
};

struct RunResult {
  std::vector<Sample> samples;
  std::vector<CheckpointMeta> metas;
};

// One run of a one-shard pipeline with the label join (W = 20 s, L = 5 s),
// its changes in the changelog <name>-log, resumed from `resume` (its state
// from the changelog resume_dir) if given.
RunResult RunOnce(const test_support::TempDir& dir, const std::string& name,
                  std::deque<SourceBatch> batches, std::set<int> barriers_at, uint64_t first_epoch,
                  const std::optional<CheckpointMeta>& resume, const std::string& resume_dir) {
  RunResult result;
  Metrics metrics;
  SpillStoreOptions so;
  so.dir = dir.File("state");
  so.name = name;
  so.rocksdb_memory_bytes = 16 << 20;
  auto store = SpillStore::Open(so);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  if (!store.ok()) return result;
  auto log = ChangelogWriter::Open(ChangelogOptions{dir.File(name + "-log")});
  EXPECT_TRUE(log.ok()) << log.status().ToString();
  if (!log.ok()) return result;
  LabelJoinOptions join;
  join.window_ms = 20'000;
  join.allowed_lateness_ms = 5'000;
  ShardFactory make_shard = [&](uint32_t shard) -> Result<std::unique_ptr<ShardProcessor>> {
    JoinState state(shard, store->get(), 64 << 20, &metrics.join);
    state.SetChangelog(log->get());
    if (resume) {
      CTRJOIN_RETURN_IF_ERROR(ReplayJoinChangelog(
                                  resume_dir, resume->epoch, [](uint64_t) { return true; },
                                  [&](uint64_t key, JoinEntry e, std::string_view) {
                                    state.Put(key, std::move(e));
                                    return Status::Ok();
                                  })
                                  .status());
    }
    auto p = std::make_unique<LabelJoin>(join, std::move(state), &metrics.join);
    if (resume) CTRJOIN_RETURN_IF_ERROR(p->Restore(resume->watermark));
    return std::unique_ptr<ShardProcessor>(std::move(p));
  };
  ScriptedSource source;
  source.batches = std::move(batches);
  ScriptedHooks hooks(std::move(barriers_at), first_epoch);
  CollectingSink sink;
  NoDeadLetters dead_letters;
  PipelineOptions po;
  po.shards = 1;
  Pipeline pipeline(po, SchemaOptions{}, WatermarkOptions{5'000, 0}, &source, nullptr, &sink,
                    &dead_letters, &metrics.pipeline);
  source.pipeline = &pipeline;
  pipeline.SetCheckpointHooks(&hooks);
  if (resume) pipeline.ResumeFrom(*resume);
  Status st = pipeline.Run(make_shard);
  EXPECT_TRUE(st.ok()) << st.ToString();
  result.samples = std::move(sink.samples);
  result.metas = std::move(hooks.metas);
  return result;
}

TEST(PipelineResumeTest, PartitionSilentAtTheCheckpointStillHoldsTheWatermark) {
  test_support::TempDir dir;
  // Run 1: impressions[1] is assigned but delivers nothing. The click for B
  // (ts 60 s) is held; impressions[0] and clicks[0] are far ahead, but the
  // silent partition holds the watermark at its minimum. Checkpoint 1
  // follows the batch; then the run stops.
  SourceBatch first;
  first.assigned = {kImp0, kImp1, kClk0};
  first.records = {ImpressionRecord(kImp0, 0, "A", 72'000), ClickRecord(kClk0, 0, "B", 60'000),
                   ClickRecord(kClk0, 1, "C", 120'000)};
  std::deque<SourceBatch> run1;
  run1.push_back(std::move(first));
  RunResult one = RunOnce(dir, "run1", std::move(run1), {1}, 1, std::nullopt, "");
  ASSERT_FALSE(one.metas.empty());
  ASSERT_EQ(one.metas[0].epoch, 1u);
  ASSERT_EQ(one.metas[0].watermark, EventTime::Min());

  // Run 2 resumes from checkpoint 1 (its metadata read back as from disk).
  // Its first message is a barrier (start-up took longer than the interval);
  // then the source reports its assignment and B arrives on impressions[1],
  // with its window [50 s, 70 s]; then impressions at 80 s close it.
  Result<CheckpointMeta> meta = CheckpointMeta::Decode(one.metas[0].Encode());
  ASSERT_TRUE(meta.ok()) << meta.status().ToString();
  SourceBatch b;
  b.assigned = {kImp0, kImp1, kClk0};
  b.records = {ImpressionRecord(kImp1, 0, "B", 50'000)};
  SourceBatch later;
  later.records = {ImpressionRecord(kImp0, 1, "D", 80'000),
                   ImpressionRecord(kImp1, 1, "E", 80'000)};
  std::deque<SourceBatch> run2;
  run2.push_back(std::move(b));
  run2.push_back(std::move(later));
  RunResult two = RunOnce(dir, "run2", std::move(run2), {0}, 3, *meta, dir.File("run1-log"));
  ASSERT_FALSE(two.metas.empty());
  EXPECT_EQ(two.metas[0].watermark, EventTime::Min())
      << "the barrier routed before the first batch moved the watermark";

  std::map<std::string, int> labels;
  for (const Sample& s : two.samples) {
    EXPECT_TRUE(labels.emplace(s.impression.impression_id, s.label).second)
        << "two samples for " << s.impression.impression_id;
  }
  ASSERT_TRUE(labels.contains("B")) << "no sample for B";
  EXPECT_EQ(labels["B"], 1) << "B's held click was lost";
}

// The source runs on a thread of its own (SourceFeeder), so a source that
// waits (a Kafka poll, a paced replay) holds no worker of the graph. In an
// arena of one thread, this source waits for the sink to write the positive
// of the batch it read first: run on the graph's only thread, it would wait
// out its 10 s with nothing written.
class WaitingSource : public Source {
 public:
  explicit WaitingSource(std::function<bool()> written) : written_(std::move(written)) {}

  Result<SourceBatch> Next(size_t) override {
    if (calls_++ == 0) {
      SourceBatch first;
      first.assigned = {kImp0, kClk0};
      first.records = {ImpressionRecord(kImp0, 0, "A", 10'000), ClickRecord(kClk0, 0, "A", 11'000)};
      return first;
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!written_() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    saw_output = written_();
    SourceBatch end;
    end.end_of_input = true;
    return end;
  }
  Status Seek(const SourcePositions&) override { return Status::Ok(); }
  std::string Describe() const override { return "waiting"; }

  bool saw_output = false;

 private:
  const std::function<bool()> written_;
  int calls_ = 0;
};

class CountingSink : public SampleSink {
 public:
  Status Write(std::span<const Sample> s) override {
    for (const Sample& sample : s) positives += sample.label == 1 ? 1 : 0;
    return Status::Ok();
  }
  Status Flush() override { return Status::Ok(); }
  std::string Describe() const override { return "counted"; }
  std::atomic<size_t> positives{0};
};

// Label joins (W = 20 s, L = 5 s) without a changelog, over one spill
// store in dir: the shards of a test of the graph itself.
class PlainJoins {
 public:
  PlainJoins(const test_support::TempDir& dir, Metrics* metrics) : metrics_(metrics) {
    SpillStoreOptions so;
    so.dir = dir.File("state");
    so.name = "plain";
    so.rocksdb_memory_bytes = 16 << 20;
    auto store = SpillStore::Open(so);
    status_ = store.status();
    if (store.ok()) store_ = std::move(store).value();
    join_.window_ms = 20'000;
    join_.allowed_lateness_ms = 5'000;
  }
  const Status& status() const { return status_; }
  ShardFactory Factory() {
    return [this](uint32_t shard) -> Result<std::unique_ptr<ShardProcessor>> {
      JoinState state(shard, store_.get(), 64 << 20, &metrics_->join);
      return std::unique_ptr<ShardProcessor>(
          std::make_unique<LabelJoin>(join_, std::move(state), &metrics_->join));
    };
  }

 private:
  Metrics* const metrics_;
  Status status_;
  std::unique_ptr<SpillStore> store_;
  LabelJoinOptions join_;
};

TEST(PipelineThreadsTest, ASourceThatWaitsHoldsNoWorkerOfTheGraph) {
  test_support::TempDir dir;
  Metrics metrics;
  PlainJoins joins(dir, &metrics);
  ASSERT_TRUE(joins.status().ok()) << joins.status().ToString();
  ShardFactory make_shard = joins.Factory();
  CountingSink sink;
  NoDeadLetters dead_letters;
  WaitingSource source([&] { return sink.positives.load() > 0; });
  PipelineOptions po;
  po.shards = 1;
  Pipeline pipeline(po, SchemaOptions{}, WatermarkOptions{5'000, 0}, &source, nullptr, &sink,
                    &dead_letters, &metrics.pipeline);
  Status st;
  oneapi::tbb::task_arena one_thread(1);
  one_thread.execute([&] { st = pipeline.Run(make_shard); });
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(source.saw_output) << "the source's wait held the graph's only thread";
  EXPECT_EQ(sink.positives.load(), 1u);
}

// Group mode (co-partitioned inputs): an event read from another partition
// than the one its impression id belongs to is dead-lettered with code
// wrong_partition, so that its task does not keep a half it can never join.
class CollectedDeadLetters : public DeadLetterSink {
 public:
  Status Write(const DeadLetter& d) override {
    letters.push_back(d);
    return Status::Ok();
  }
  Status Flush() override { return Status::Ok(); }
  std::vector<DeadLetter> letters;
};

// One batch (then the end of the input) through a 2-shard pipeline in mode
// group over 2 partitions, where ids ending in '1' belong in partition 1
// and the others in partition 0.
struct CoPartitionedRun {
  explicit CoPartitionedRun(SourceBatch batch) {
    test_support::TempDir dir;
    PlainJoins joins(dir, &metrics);
    EXPECT_TRUE(joins.status().ok()) << joins.status().ToString();
    ScriptedSource source;
    source.batches.push_back(std::move(batch));
    SourceBatch end;
    end.end_of_input = true;
    source.batches.push_back(std::move(end));
    PipelineOptions po;
    po.shards = 2;
    Pipeline pipeline(po, SchemaOptions{}, WatermarkOptions{5'000, 0}, &source, nullptr, &sink,
                      &dead_letters, &metrics.pipeline);
    source.pipeline = &pipeline;
    pipeline.RequireCoPartitioned(
        {2, [](std::string_view id, int32_t) { return id.back() == '1' ? 1 : 0; }});
    status = pipeline.Run(joins.Factory());
  }

  Metrics metrics;
  CollectingSink sink;
  CollectedDeadLetters dead_letters;
  Status status;
};

TEST(PipelineCoPartitionTest, AnEventOnTheWrongPartitionIsDeadLettered) {
  const PartitionId imp1{StreamKind::kImpression, 1};
  const PartitionId clk1{StreamKind::kClick, 1};
  SourceBatch batch;
  batch.assigned = {kImp0, imp1, kClk0, clk1};
  batch.records = {ImpressionRecord(kImp0, 0, "a0", 0), ImpressionRecord(imp1, 0, "b1", 1),
                   ImpressionRecord(kImp0, 1, "c1", 2), ClickRecord(kClk0, 0, "a0", 3),
                   ClickRecord(clk1, 0, "b0", 4),       ClickRecord(clk1, 1, "b1", 5)};
  CoPartitionedRun run(std::move(batch));
  ASSERT_TRUE(run.status.ok()) << run.status.ToString();
  const CollectingSink& sink = run.sink;
  const CollectedDeadLetters& dead_letters = run.dead_letters;
  const Metrics& metrics = run.metrics;

  std::map<std::string, int> labels;
  for (const Sample& sample : sink.samples) labels[sample.impression.impression_id] = sample.label;
  EXPECT_EQ(labels, (std::map<std::string, int>{{"a0", 1}, {"b1", 1}}));
  ASSERT_EQ(dead_letters.letters.size(), 2u);
  const DeadLetter& imp = dead_letters.letters[0];
  EXPECT_EQ(imp.code, RejectCode::kWrongPartition);
  EXPECT_EQ(imp.pos.stream, StreamKind::kImpression);
  EXPECT_EQ(imp.pos.offset.value, 1);
  EXPECT_NE(imp.reason.find("puts 'c1' in partition 1 of 2, not 0"), std::string::npos)
      << imp.reason;
  EXPECT_NE(imp.payload.find(R"("impression_id":"c1")"), std::string::npos);
  const DeadLetter& click = dead_letters.letters[1];
  EXPECT_EQ(click.code, RejectCode::kWrongPartition);
  EXPECT_EQ(click.pos.stream, StreamKind::kClick);
  EXPECT_NE(click.reason.find("puts 'b0' in partition 0 of 2, not 1"), std::string::npos)
      << click.reason;
  EXPECT_EQ(
      metrics.pipeline.dead_letters_by_reason[1][static_cast<size_t>(RejectCode::kWrongPartition)]
          .Get(),
      1u);
}

// Partitions added to the topics while the job runs move keys between
// tasks: a record from a partition past the count checked at start stops
// the run, naming it, instead of dead-lettering most of the input.
TEST(PipelineCoPartitionTest, ARecordFromAPartitionAddedSinceTheStartStopsTheRun) {
  const PartitionId imp2{StreamKind::kImpression, 2};
  SourceBatch batch;
  batch.assigned = {kImp0, imp2};
  batch.records = {ImpressionRecord(kImp0, 0, "a0", 0), ImpressionRecord(imp2, 0, "b2", 1)};
  CoPartitionedRun run(std::move(batch));
  EXPECT_EQ(run.status.code(), StatusCode::kUnavailable) << run.status.ToString();  // exit 1
  EXPECT_NE(run.status.message().find("a record came from partition 2, but the topics had 2"),
            std::string::npos)
      << run.status.ToString();
}

}  // namespace resume

}  // namespace
}  // namespace ctrjoin
