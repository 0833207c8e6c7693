// The metric types (src/ops/metrics.h), the Prometheus exposition writer and
// registry (src/ops/prometheus.h), and the HTTP address syntax
// (src/ops/http_server.h). No sockets: tests/integration/http_server_test.cc
// serves.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "src/ops/http_server.h"
#include "src/ops/prometheus.h"

namespace ctrjoin {
namespace {

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
  h.Record(0.05);    // le 0.05
  h.Record(0.051);   // le 0.1
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

TEST(MetricRegistryTest, RendersTheProcessFamiliesThenEveryWriterInOrder) {
  Counter c;
  c.Add(3);
  Gauge g(-2);
  MetricRegistry registry;
  registry.Add([&](Exposition& e) { e.Metric("ctrjoin_a_total", "A.", c); });
  registry.Add([&](Exposition& e) {
    e.Metric("ctrjoin_b", "B \\ with\nnewline.", g);
    e.Single("ctrjoin_now_seconds", "gauge", "Now.", Seconds(e.now_ms()));
  });
  const std::string text = registry.Render(1'500);
  const size_t up = text.find("ctrjoin_up 1\n");
  const size_t a = text.find("# TYPE ctrjoin_a_total counter\nctrjoin_a_total 3\n");
  const size_t b =
      text.find("# HELP ctrjoin_b B \\\\ with\\nnewline.\n# TYPE ctrjoin_b gauge\nctrjoin_b -2\n");
  ASSERT_NE(up, std::string::npos) << text;
  ASSERT_NE(a, std::string::npos) << text;
  ASSERT_NE(b, std::string::npos) << text;
  EXPECT_LT(up, a);
  EXPECT_LT(a, b);
  EXPECT_NE(text.find("ctrjoin_now_seconds 1.5\n"), std::string::npos) << text;
  EXPECT_NE(text.find("ctrjoin_process_start_time_seconds "), std::string::npos);
  EXPECT_NE(text.find("ctrjoin_build_info{version=\"" + std::string(CTRJOIN_TEST_VERSION) +
                      "\",commit=\""),
            std::string::npos)
      << text;
}

// The process families of Prometheus' client libraries, read from /proc.
TEST(MetricRegistryTest, RendersTheProcessFamilies) {
  const std::string text = MetricRegistry().Render(0);
  for (const char* family :
       {"process_cpu_seconds_total", "process_resident_memory_bytes",
        "process_virtual_memory_bytes", "process_open_fds", "process_start_time_seconds"}) {
    EXPECT_NE(text.find(std::string("\n") + family + " "), std::string::npos) << family << "\n"
                                                                              << text;
  }
  const size_t at = text.find("\nprocess_resident_memory_bytes ");
  ASSERT_NE(at, std::string::npos);
  EXPECT_GT(std::stoull(text.substr(at + 31)), 1u << 20) << "a process uses more than 1 MiB";
  const size_t fds = text.find("\nprocess_open_fds ");
  ASSERT_NE(fds, std::string::npos);
  EXPECT_GE(std::stoull(text.substr(fds + 18)), 3u) << "stdin, stdout, stderr at least";
}

TEST(ExpositionTest, HistogramBucketsAreCumulativeInSecondsAndEndWithInf) {
  LatencyHistogram h;
  h.Record(0.03);
  h.Record(7);
  h.Record(12'000);
  std::string out;
  Exposition e(out, 0);
  e.Histogram("ctrjoin_x_seconds", "X.", h);
  EXPECT_NE(out.find("ctrjoin_x_seconds_bucket{le=\"5e-05\"} 1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("ctrjoin_x_seconds_bucket{le=\"0.01\"} 2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("ctrjoin_x_seconds_bucket{le=\"10\"} 2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("ctrjoin_x_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos) << out;
  EXPECT_NE(out.find("ctrjoin_x_seconds_count 3\n"), std::string::npos) << out;
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
