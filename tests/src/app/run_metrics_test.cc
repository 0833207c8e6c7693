// The whole exposition of a run's metrics and readiness
// (src/app/run_metrics.h). No sockets: see
// tests/integration/metrics_endpoint_test.cc for the served endpoints.
#include "src/app/run_metrics.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "src/core/event.h"

namespace ctrjoin {
namespace {

// One sample line: name{labels} value.
struct Line {
  std::string name;
  std::string labels;  // inside the braces, as written
  std::string value;
};

// A parsed exposition: families (name -> type) in order, and samples.
struct Parsed {
  std::vector<std::string> order;
  std::map<std::string, std::string> type;
  std::map<std::string, std::string> help;
  std::vector<Line> samples;
  std::vector<std::string> errors;

  // The value of the sample with exactly this name and labels, or "".
  std::string Value(const std::string& name, const std::string& labels = "") const {
    for (const Line& l : samples) {
      if (l.name == name && l.labels == labels) return l.value;
    }
    return "";
  }
};

// The family a sample belongs to: histograms own _bucket, _sum and _count.
std::string FamilyOf(const std::string& sample, const std::map<std::string, std::string>& type) {
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string s = suffix;
    if (sample.size() > s.size() && sample.ends_with(s)) {
      const std::string base = sample.substr(0, sample.size() - s.size());
      auto it = type.find(base);
      if (it != type.end() && it->second == "histogram") return base;
    }
  }
  return sample;
}

Parsed Parse(const std::string& text) {
  Parsed p;
  std::istringstream in(text);
  std::string current;  // the family whose samples may follow
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("# HELP ")) {
      std::istringstream f(line.substr(7));
      std::string name;
      f >> name;
      if (p.help.count(name)) p.errors.push_back("second HELP for " + name);
      p.help[name] = line.substr(7 + name.size());
      continue;
    }
    if (line.starts_with("# TYPE ")) {
      std::istringstream f(line.substr(7));
      std::string name, type;
      f >> name >> type;
      if (!p.help.count(name)) p.errors.push_back("TYPE before HELP for " + name);
      if (p.type.count(name)) p.errors.push_back("second TYPE for " + name);
      p.type[name] = type;
      p.order.push_back(name);
      current = name;
      continue;
    }
    Line l;
    const size_t brace = line.find('{');
    const size_t space = line.rfind(' ');
    if (brace != std::string::npos && brace < space) {
      l.name = line.substr(0, brace);
      const size_t close = line.rfind('}');
      l.labels = line.substr(brace + 1, close - brace - 1);
    } else {
      l.name = line.substr(0, space);
    }
    l.value = line.substr(space + 1);
    if (FamilyOf(l.name, p.type) != current) {
      p.errors.push_back("sample " + l.name + " outside its family's block");
    }
    p.samples.push_back(l);
  }
  return p;
}

void Fill(Metrics& m) {
  m.pipeline.impressions_in.Add(1000);
  m.pipeline.clicks_in.Add(30);
  m.pipeline.dead_letters_in[0].Add(2);
  m.pipeline.dead_letters_in[1].Add(1);
  m.pipeline.samples_out.Add(990);
  m.join.positives.Add(25);
  m.join.negatives.Add(965);
  m.join.orphan_clicks.Add(3);
  m.join.state_memory_bytes.Set(4096);
  m.pipeline.watermark_ms.Set(1'700'000'000'000);
  m.pipeline.max_event_ts_ms.Set(1'700'000'005'000);
  m.pipeline.running.Set(1);
  m.pipeline.assigned_partitions.Set(2);
  m.pipeline.task_watermarks.Set({{0, 1'700'000'000'000}});
  m.pipeline.task_state_entries.Set(0, 17);
  m.pipeline.task_restores.Set(1, {.position = 40, .end = 100, .bytes = 4096});
  m.pipeline.stage[static_cast<size_t>(Stage::kParse)].Record(0.03);
  m.pipeline.stage[static_cast<size_t>(Stage::kParse)].Record(0.3);
  m.pipeline.stage[static_cast<size_t>(Stage::kSink)].Record(7);
  m.pipeline.end_to_end.Record(1.5);
  m.pipeline.end_to_end.Record(1.5);
  m.pipeline.end_to_end.Record(12'000);
  m.lookup.For("user").latency.Record(2);
  m.checkpoint.commit_lag.Record(120);
}

TEST(PrometheusTest, EveryFamilyHasHelpAndTypeAndConventionalNames) {
  Metrics m;
  Fill(m);
  const Parsed p = Parse(RenderPrometheus(m, TopicLabels{}, 1'700'000'003'000));
  EXPECT_TRUE(p.errors.empty()) << ::testing::PrintToString(p.errors);
  ASSERT_GT(p.order.size(), 40u);
  for (const std::string& name : p.order) {
    // Ours, or the process families every Prometheus client library exports.
    EXPECT_TRUE(name.starts_with("ctrjoin_") || name.starts_with("process_")) << name;
    const std::string& type = p.type.at(name);
    EXPECT_TRUE(type == "counter" || type == "gauge" || type == "histogram") << name;
    EXPECT_EQ(type == "counter", name.ends_with("_total")) << name << " is a " << type;
    if (type == "histogram") {
      EXPECT_TRUE(name.ends_with("_seconds")) << name;
    }
    EXPECT_GT(p.help.at(name).size(), 10u) << name;
    EXPECT_EQ(name.find("_ms"), std::string::npos) << name << ": times in seconds";
  }
  for (const Line& l : p.samples) {
    EXPECT_TRUE(p.type.count(FamilyOf(l.name, p.type))) << l.name << " has no TYPE";
  }
}

TEST(PrometheusTest, CountersGaugesAndLabels) {
  Metrics m;
  Fill(m);
  const Parsed p = Parse(RenderPrometheus(m, TopicLabels{}, 1'700'000'003'000));
  EXPECT_EQ(p.type.at("ctrjoin_events_in_total"), "counter");
  EXPECT_EQ(p.Value("ctrjoin_events_in_total", R"(topic="impressions")"), "1000");
  EXPECT_EQ(p.Value("ctrjoin_events_in_total", R"(topic="clicks")"), "30");
  EXPECT_EQ(p.Value("ctrjoin_dead_letters_total", R"(topic="impressions")"), "2");
  EXPECT_EQ(p.Value("ctrjoin_dead_letters_total", R"(topic="clicks")"), "1");
  EXPECT_EQ(p.Value("ctrjoin_samples_out_total"), "990");
  EXPECT_EQ(p.Value("ctrjoin_join_samples_total", R"(kind="positive")"), "25");
  EXPECT_EQ(p.Value("ctrjoin_join_samples_total", R"(kind="negative")"), "965");
  EXPECT_EQ(p.Value("ctrjoin_join_orphan_clicks_total"), "3");
  EXPECT_EQ(p.type.at("ctrjoin_join_state_memory_bytes"), "gauge");
  EXPECT_EQ(p.Value("ctrjoin_join_state_memory_bytes"), "4096");
  EXPECT_EQ(p.Value("ctrjoin_up"), "1");
  EXPECT_EQ(p.Value("ctrjoin_watermark_timestamp_seconds"), "1700000000");
  EXPECT_EQ(p.Value("ctrjoin_watermark_lag_seconds"), "3");
  EXPECT_EQ(p.Value("ctrjoin_max_event_timestamp_seconds"), "1700000005");
  EXPECT_EQ(p.Value("ctrjoin_source_assigned_partitions"), "2");
  EXPECT_EQ(p.Value("ctrjoin_task_state_entries", R"(task="0")"), "17");
  EXPECT_EQ(p.Value("ctrjoin_task_restore_remaining_offsets", R"(task="1")"), "60");
  EXPECT_EQ(p.Value("ctrjoin_task_restore_read_bytes", R"(task="1")"), "4096");
  m.pipeline.task_restores.Set(1, {.position = 0, .end = -1, .bytes = 0});
  const Parsed before_fetch = Parse(RenderPrometheus(m, TopicLabels{}, 1'700'000'003'000));
  EXPECT_EQ(before_fetch.Value("ctrjoin_task_restore_read_bytes", R"(task="1")"), "0");
  EXPECT_EQ(before_fetch.Value("ctrjoin_task_restore_remaining_offsets", R"(task="1")"), "")
      << "the restore does not know the partition's offsets yet";
  m.pipeline.task_restores.Erase(1);
  EXPECT_FALSE(
      Parse(RenderPrometheus(m, TopicLabels{}, 0)).type.count("ctrjoin_task_restore_read_bytes"))
      << "no task restores";
  EXPECT_FALSE(p.type.count("ctrjoin_consumer_lag_records")) << "files: no lag";
  EXPECT_FALSE(p.type.count("ctrjoin_checkpoint_last_completed_timestamp_seconds"));
}

TEST(PrometheusTest, ConsumerLagPerTopicOnlyWhereKnown) {
  Metrics m;
  m.pipeline.consumer_lag[static_cast<size_t>(StreamKind::kClick)].Set(42);
  TopicLabels topics;
  topics.impressions = "ads.imp";
  topics.clicks = "ads.clk";
  const Parsed p = Parse(RenderPrometheus(m, topics, 0));
  EXPECT_TRUE(p.errors.empty()) << ::testing::PrintToString(p.errors);
  EXPECT_EQ(p.type.at("ctrjoin_consumer_lag_records"), "gauge");
  EXPECT_EQ(p.Value("ctrjoin_consumer_lag_records", R"(topic="ads.clk")"), "42");
  EXPECT_EQ(p.Value("ctrjoin_consumer_lag_records", R"(topic="ads.imp")"), "");
  EXPECT_EQ(p.Value("ctrjoin_events_in_total", R"(topic="ads.imp")"), "0");
  EXPECT_FALSE(p.type.count("ctrjoin_watermark_lag_seconds")) << "no watermark yet";
  EXPECT_FALSE(p.type.count("ctrjoin_consumer_partition_lag_records")) << "none known";

  m.pipeline.partition_lag.Set({{{StreamKind::kImpression, 3}, 7}, {{StreamKind::kClick, 0}, 0}});
  const Parsed q = Parse(RenderPrometheus(m, topics, 0));
  EXPECT_TRUE(q.errors.empty()) << ::testing::PrintToString(q.errors);
  EXPECT_EQ(q.type.at("ctrjoin_consumer_partition_lag_records"), "gauge");
  EXPECT_EQ(q.Value("ctrjoin_consumer_partition_lag_records", R"(topic="ads.imp",partition="3")"),
            "7");
  EXPECT_EQ(q.Value("ctrjoin_consumer_partition_lag_records", R"(topic="ads.clk",partition="0")"),
            "0");
}

TEST(PrometheusTest, LabelValuesAreEscaped) {
  TopicLabels topics;
  topics.impressions = "a\"b\\c\nd";
  const Parsed p = Parse(RenderPrometheus(Metrics{}, topics, 0));
  EXPECT_EQ(p.Value("ctrjoin_events_in_total", R"(topic="a\"b\\c\nd")"), "0");
}

TEST(PrometheusTest, HistogramsHaveCumulativeBucketsSumAndCount) {
  Metrics m;
  Fill(m);
  const Parsed p = Parse(RenderPrometheus(m, TopicLabels{}, 0));
  EXPECT_EQ(p.type.at("ctrjoin_end_to_end_latency_seconds"), "histogram");
  std::vector<Line> buckets;
  for (const Line& l : p.samples) {
    if (l.name == "ctrjoin_end_to_end_latency_seconds_bucket") buckets.push_back(l);
  }
  ASSERT_EQ(buckets.size(), LatencyHistogram::kBuckets);
  EXPECT_EQ(buckets.front().labels, R"(le="5e-05")");
  EXPECT_EQ(buckets[4].labels, R"(le="0.001")");
  EXPECT_EQ(buckets[5].labels, R"(le="0.002")");
  EXPECT_EQ(buckets[5].value, "2") << "1.5 ms twice";
  EXPECT_EQ(buckets[buckets.size() - 2].labels, R"(le="10")");
  EXPECT_EQ(buckets.back().labels, R"(le="+Inf")");
  EXPECT_EQ(buckets.back().value, "3");
  uint64_t previous = 0;
  for (const Line& b : buckets) {
    const uint64_t v = std::stoull(b.value);
    EXPECT_GE(v, previous) << b.labels;
    previous = v;
  }
  EXPECT_EQ(p.Value("ctrjoin_end_to_end_latency_seconds_count"), "3");
  EXPECT_EQ(std::stod(p.Value("ctrjoin_end_to_end_latency_seconds_sum")), 12.003);

  // One histogram per stage, told apart by the stage label.
  EXPECT_EQ(p.Value("ctrjoin_stage_latency_seconds_count", R"(stage="parse")"), "2");
  EXPECT_EQ(p.Value("ctrjoin_stage_latency_seconds_bucket", R"(stage="parse",le="5e-05")"), "1");
  EXPECT_EQ(p.Value("ctrjoin_stage_latency_seconds_bucket", R"(stage="parse",le="0.0005")"), "2");
  EXPECT_EQ(p.Value("ctrjoin_stage_latency_seconds_count", R"(stage="sink")"), "1");
  std::set<std::string> stages;
  for (const Line& l : p.samples) {
    if (l.name == "ctrjoin_stage_latency_seconds_count") stages.insert(l.labels);
  }
  EXPECT_EQ(stages.size(), kStages);
}

// src/ops/README.md, the metrics reference, lists every family rendered.
TEST(PrometheusTest, ReferenceListsEveryFamily) {
  std::ifstream in(std::string(CTRJOIN_SOURCE_DIR) + "/src/ops/README.md");
  ASSERT_TRUE(in) << "src/ops/README.md not found under " << CTRJOIN_SOURCE_DIR;
  std::stringstream text;
  text << in.rdbuf();
  const std::string body = text.str();
  Metrics m;
  Fill(m);
  m.pipeline.consumer_lag[0].Set(1);
  m.checkpoint.last_completed_ms.Set(1);
  m.pipeline.started_ms.Set(1);
  const Parsed p = Parse(RenderPrometheus(m, TopicLabels{}, 0));
  for (const std::string& name : p.order) {
    EXPECT_NE(body.find("`" + name + "`"), std::string::npos)
        << name << " is not in src/ops/README.md";
  }
}

TEST(OpsEndpointsTest, ReadyWhenRunningWithPartitionsAndAFreshCheckpoint) {
  Metrics m;
  ReadinessOptions o;
  o.checkpoints = true;
  o.max_checkpoint_age_ms = 10'000;
  const int64_t now = 1'000'000;
  EXPECT_EQ(NotReadyReason(m, o, now), "the pipeline is not running");
  m.pipeline.running.Set(1);
  m.pipeline.started_ms.Set(now - 1'000);
  EXPECT_EQ(NotReadyReason(m, o, now), "the source has no input partitions assigned yet");
  m.pipeline.assigned_partitions.Set(4);
  EXPECT_EQ(NotReadyReason(m, o, now), "") << "just started: no checkpoint due yet";
  m.pipeline.started_ms.Set(now - 12'000);
  EXPECT_EQ(NotReadyReason(m, o, now),
            "no checkpoint completed in the 12.0 s since the start (bound 10.0 s)");
  m.checkpoint.last_completed_ms.Set(now - 3'000);
  EXPECT_EQ(NotReadyReason(m, o, now), "");
  m.checkpoint.last_completed_ms.Set(now - 10'500);
  EXPECT_EQ(NotReadyReason(m, o, now), "the last checkpoint completed 10.5 s ago (bound 10.0 s)");
  o.checkpoints = false;
  EXPECT_EQ(NotReadyReason(m, o, now), "") << "without checkpoints, age does not matter";
  m.lookup.breaker_state.Set(1);
  EXPECT_EQ(NotReadyReason(m, o, now),
            "the feature store's circuit breaker is open: lookups wait for the store");
  m.lookup.breaker_state.Set(2);
  EXPECT_NE(NotReadyReason(m, o, now), "") << "half-open: one probe call is out";
  m.lookup.breaker_state.Set(0);
  EXPECT_EQ(NotReadyReason(m, o, now), "");
  m.pipeline.failed.Set(1);
  EXPECT_EQ(NotReadyReason(m, o, now), "a pipeline stage failed (see the log)");
}

}  // namespace
}  // namespace ctrjoin
