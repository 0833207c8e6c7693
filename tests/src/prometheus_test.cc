// The Prometheus exposition of Metrics (src/prometheus.h), the latency
// histogram behind it, readiness (src/ops_endpoints.h) and the HTTP address
// syntax (src/http_server.h). No sockets: see
// tests/integration/metrics_endpoint_test.cc for the served endpoints.
#include "src/prometheus.h"

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "src/event.h"
#include "src/http_server.h"
#include "src/ops_endpoints.h"

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

TEST(LatencyHistogramTest, BucketsAreExponentialFrom50UsTo10s) {
  const auto& b = LatencyHistogram::kBoundsMs;
  EXPECT_DOUBLE_EQ(b[0], 0.05);
  EXPECT_DOUBLE_EQ(b[LatencyHistogram::kBuckets - 2], 10'000);
  for (size_t i = 1; i + 1 < LatencyHistogram::kBuckets; ++i) {
    EXPECT_GE(b[i] / b[i - 1], 2.0 - 1e-9) << i;
    EXPECT_LE(b[i] / b[i - 1], 2.5 + 1e-9) << i;
  }
}

TEST(LatencyHistogramTest, AValueOnABoundGoesIntoThatBucket) {
  LatencyHistogram h;
  h.Record(0.05);   // le 0.05
  h.Record(0.051);  // le 0.1
  h.Record(20'000);  // +Inf
  EXPECT_EQ(h.bucket(0), 1u);
  EXPECT_EQ(h.bucket(1), 1u);
  EXPECT_EQ(h.bucket(LatencyHistogram::kBuckets - 1), 1u);
  EXPECT_EQ(h.count(), 3u);
  EXPECT_NEAR(h.sum_ms(), 20'000.101, 1e-6);
  EXPECT_DOUBLE_EQ(h.max_ms(), 20'000);
  EXPECT_DOUBLE_EQ(h.QuantileBoundMs(1.0), 20'000) << "+Inf: the largest value";
}

TEST(LatencyHistogramTest, QuantilesBelowTwoMillisecondsAreToldApart) {
  LatencyHistogram h;
  for (int i = 0; i < 900; ++i) h.Record(0.08);
  for (int i = 0; i < 95; ++i) h.Record(0.4);
  for (int i = 0; i < 4; ++i) h.Record(0.9);
  h.Record(1.7);
  EXPECT_DOUBLE_EQ(h.QuantileBoundMs(0.5), 0.1);
  EXPECT_DOUBLE_EQ(h.QuantileBoundMs(0.99), 0.5);
  EXPECT_DOUBLE_EQ(h.QuantileBoundMs(0.999), 1);
  EXPECT_DOUBLE_EQ(h.QuantileBoundMs(1.0), 2);
}

TEST(LatencyHistogramTest, QuantileInterpolatesInsideTheBucket) {
  LatencyHistogram h;
  EXPECT_EQ(h.QuantileMs(0.5), 0) << "empty";
  // 100 values in (1, 2]: the median is half-way through that bucket.
  for (int i = 1; i <= 100; ++i) h.Record(1 + i / 100.0);
  EXPECT_NEAR(h.QuantileMs(0.5), 1.5, 1e-9);
  EXPECT_NEAR(h.QuantileMs(0.9), 1.9, 1e-9);
  EXPECT_DOUBLE_EQ(h.QuantileMs(1.0), 2);
  // Never above the largest value: 10 values of 3 ms sit in (2, 5].
  LatencyHistogram g;
  for (int i = 0; i < 10; ++i) g.Record(3);
  EXPECT_NEAR(g.QuantileMs(0.5), 2.5, 1e-9);
  EXPECT_DOUBLE_EQ(g.QuantileMs(0.99), 2 + (3 - 2) * 0.99);
  g.Record(std::chrono::milliseconds(30'000));  // +Inf bucket: up to the max
  EXPECT_DOUBLE_EQ(g.QuantileMs(1.0), 30'000);
}

void Fill(Metrics& m) {
  m.impressions_in.Add(1000);
  m.clicks_in.Add(30);
  m.dead_letters_in[0].Add(2);
  m.dead_letters_in[1].Add(1);
  m.samples_out.Add(990);
  m.join.positives.Add(25);
  m.join.negatives.Add(965);
  m.join.orphan_clicks.Add(3);
  m.join.state_memory_bytes.Set(4096);
  m.watermark_ms.Set(1'700'000'000'000);
  m.max_event_ts_ms.Set(1'700'000'005'000);
  m.pipeline.running.Set(1);
  m.pipeline.assigned_partitions.Set(2);
  m.pipeline.stage[static_cast<size_t>(Stage::kParse)].Record(0.03);
  m.pipeline.stage[static_cast<size_t>(Stage::kParse)].Record(0.3);
  m.pipeline.stage[static_cast<size_t>(Stage::kSink)].Record(7);
  m.pipeline.end_to_end.Record(1.5);
  m.pipeline.end_to_end.Record(1.5);
  m.pipeline.end_to_end.Record(12'000);
  m.lookup.latency.Record(2);
  m.checkpoint.commit_lag.Record(120);
}

TEST(PrometheusTest, EveryFamilyHasHelpAndTypeAndConventionalNames) {
  Metrics m;
  Fill(m);
  const Parsed p = Parse(RenderPrometheus(m, ExpositionOptions{}, 1'700'000'003'000));
  EXPECT_TRUE(p.errors.empty()) << ::testing::PrintToString(p.errors);
  ASSERT_GT(p.order.size(), 40u);
  for (const std::string& name : p.order) {
    EXPECT_TRUE(name.starts_with("ctrjoin_")) << name;
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
  const Parsed p = Parse(RenderPrometheus(m, ExpositionOptions{}, 1'700'000'003'000));
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
  EXPECT_FALSE(p.type.count("ctrjoin_consumer_lag_records")) << "files: no lag";
  EXPECT_FALSE(p.type.count("ctrjoin_checkpoint_last_completed_timestamp_seconds"));
}

TEST(PrometheusTest, ConsumerLagPerTopicOnlyWhereKnown) {
  Metrics m;
  m.consumer_lag[static_cast<size_t>(StreamKind::kClick)].Set(42);
  ExpositionOptions topics;
  topics.impressions_topic = "ads.imp";
  topics.clicks_topic = "ads.clk";
  const Parsed p = Parse(RenderPrometheus(m, topics, 0));
  EXPECT_TRUE(p.errors.empty()) << ::testing::PrintToString(p.errors);
  EXPECT_EQ(p.type.at("ctrjoin_consumer_lag_records"), "gauge");
  EXPECT_EQ(p.Value("ctrjoin_consumer_lag_records", R"(topic="ads.clk")"), "42");
  EXPECT_EQ(p.Value("ctrjoin_consumer_lag_records", R"(topic="ads.imp")"), "");
  EXPECT_EQ(p.Value("ctrjoin_events_in_total", R"(topic="ads.imp")"), "0");
  EXPECT_FALSE(p.type.count("ctrjoin_watermark_lag_seconds")) << "no watermark yet";
}

TEST(PrometheusTest, LabelValuesAreEscaped) {
  ExpositionOptions topics;
  topics.impressions_topic = "a\"b\\c\nd";
  const Parsed p = Parse(RenderPrometheus(Metrics{}, topics, 0));
  EXPECT_EQ(p.Value("ctrjoin_events_in_total", R"(topic="a\"b\\c\nd")"), "0");
}

TEST(PrometheusTest, HistogramsHaveCumulativeBucketsSumAndCount) {
  Metrics m;
  Fill(m);
  const Parsed p = Parse(RenderPrometheus(m, ExpositionOptions{}, 0));
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

// README.md, "HTTP endpoint and metrics", lists every family rendered.
TEST(PrometheusTest, ReadmeListsEveryFamily) {
  std::ifstream in(std::string(CTRJOIN_SOURCE_DIR) + "/README.md");
  ASSERT_TRUE(in) << "README.md not found under " << CTRJOIN_SOURCE_DIR;
  std::stringstream text;
  text << in.rdbuf();
  const std::string readme = text.str();
  const size_t section = readme.find("## HTTP endpoint and metrics");
  ASSERT_NE(section, std::string::npos);
  const std::string body = readme.substr(section, readme.find("\n## ", section + 1) - section);
  Metrics m;
  Fill(m);
  m.consumer_lag[0].Set(1);
  m.checkpoint.last_completed_ms.Set(1);
  m.pipeline.started_ms.Set(1);
  const Parsed p = Parse(RenderPrometheus(m, ExpositionOptions{}, 0));
  for (const std::string& name : p.order) {
    EXPECT_NE(body.find("`" + name + "`"), std::string::npos) << name << " is not in the README";
  }
}

TEST(OpsEndpointsTest, ReadyWhenRunningWithPartitionsAndAFreshCheckpoint) {
  Metrics m;
  OpsEndpointOptions o;
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
  m.pipeline.failed.Set(1);
  EXPECT_EQ(NotReadyReason(m, o, now), "a pipeline stage failed (see the log)");
}

TEST(HttpAddressTest, ParsesLoopbackAndExplicitOtherAddresses) {
  Result<HostPort> a = ParseHostPort("127.0.0.1:9464", "http.address");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 9464);
  EXPECT_TRUE(a->loopback);
  Result<HostPort> v6 = ParseHostPort("[::1]:0", "http.address");
  ASSERT_TRUE(v6.ok()) << v6.status().ToString();
  EXPECT_EQ(v6->host, "::1");
  EXPECT_TRUE(v6->loopback);
  Result<HostPort> any = ParseHostPort("0.0.0.0:9464", "http.address");
  ASSERT_TRUE(any.ok());
  EXPECT_FALSE(any->loopback);
  Result<HostPort> local = ParseHostPort("localhost:80", "http.address");
  ASSERT_TRUE(local.ok());
  EXPECT_EQ(local->host, "127.0.0.1");
  for (const char* bad : {"9464", ":9464", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:x",
                          "example.com:9464", "::1:9464", "[127.0.0.1]:80"}) {
    Result<HostPort> r = ParseHostPort(bad, "http.address");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_TRUE(r.status().message().starts_with("http.address: ")) << r.status().message();
  }
}

}  // namespace
}  // namespace ctrjoin
