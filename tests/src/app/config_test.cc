#include "src/app/config.h"

#include <gtest/gtest.h>

namespace ctrjoin {
namespace {

const char* kMinimal = R"(
source:
  type: files
  files: {impressions: a.jsonl, clicks: b.jsonl}
)";

std::string ErrorOf(const std::string& yaml, std::vector<std::string> overrides = {}) {
  Result<Config> c = ParseConfig(yaml, overrides);
  return c.ok() ? "" : c.status().message();
}

TEST(ConfigTest, DefaultsApply) {
  Result<Config> c = ParseConfig(kMinimal, {});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->join.window_ms, 600'000);
  EXPECT_EQ(c->watermark.out_of_orderness_ms, 5'000);
  EXPECT_EQ(c->sink.type, "stdout");
  EXPECT_EQ(c->source.files.clicks_path, "b.jsonl");
  EXPECT_FALSE(c->join.emit_corrections);
}

TEST(ConfigTest, FullConfigParses) {
  Result<Config> c = ParseConfig(R"(
source:
  type: kafka
  kafka:
    brokers: 127.0.0.1:9092
    mode: subscribe
    properties: {fetch.wait.max.ms: "50"}
schema: {ts_field: event_time, max_id_bytes: 64}
watermark: {out_of_orderness_ms: 100, idle_timeout_ms: 0}
join: {window_ms: 1000, allowed_lateness_ms: 10, late_clicks: correct}
state: {dir: /tmp/x, memory_budget_mb: 256}
sink: {type: file, path: out.jsonl}
dead_letter: {type: stderr}
pipeline: {batch_size: 64, shards: 3}
)",
                                 {});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->source.kafka.mode, "subscribe");
  EXPECT_EQ(c->source.kafka.properties.at("fetch.wait.max.ms"), "50");
  EXPECT_EQ(c->schema.ts_field, "event_time");
  EXPECT_EQ(c->schema.max_id_bytes, 64u);
  EXPECT_TRUE(c->join.emit_corrections);
  EXPECT_EQ(c->pipeline.shards, 3u);
  EXPECT_EQ(c->state.HotBytesPerShard(3), ((256u << 20) - (64u << 20)) / 3);
}

TEST(ConfigTest, UnknownKeysAreNamed) {
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "join: {windw_ms: 5}"),
            "join.windw_ms: unknown key (see README, Configuration)");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "bogus: 1"),
            "bogus: unknown key (see README, Configuration)");
}

TEST(ConfigTest, MistypedValuesAreNamed) {
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "join: {window_ms: ten}"),
            "join.window_ms: expected an integer, got 'ten'");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "pipeline: {shards: -1}"),
            "pipeline.shards: expected a non-negative integer, got '-1'");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "join: [1, 2]"),
            "join: expected a mapping, got a non-scalar value");
}

TEST(ConfigTest, InvalidValuesAreNamed) {
  EXPECT_NE(ErrorOf(std::string(kMinimal) + "join: {window_ms: 0}").find("join.window_ms"),
            std::string::npos);
  EXPECT_NE(ErrorOf(std::string(kMinimal) + "join: {late_clicks: keep}").find("join.late_clicks"),
            std::string::npos);
  EXPECT_NE(ErrorOf("source: {type: files}").find("source.files.impressions"), std::string::npos);
  EXPECT_NE(ErrorOf(std::string(kMinimal) + "sink: {type: file}").find("sink.path"),
            std::string::npos);
  EXPECT_NE(ErrorOf(std::string(kMinimal) + "sink: {type: kafka}").find("sink.kafka.brokers"),
            std::string::npos);
  EXPECT_NE(ErrorOf(std::string(kMinimal) + "state: {memory_budget_mb: 1}")
                .find("state.memory_budget_mb"),
            std::string::npos);
  EXPECT_NE(ErrorOf("source: {type: s3}").find("source.type"), std::string::npos);
  EXPECT_NE(ErrorOf("a: [").find("not valid YAML"), std::string::npos);
}

TEST(ConfigTest, OverridesApplyOnTop) {
  Result<Config> c =
      ParseConfig(kMinimal, {"join.window_ms=1234", "sink.type=file", "sink.path=/tmp/o.jsonl"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->join.window_ms, 1234);
  EXPECT_EQ(c->sink.path, "/tmp/o.jsonl");
  EXPECT_EQ(ErrorOf(kMinimal, {"join.window_ms"}), "--set join.window_ms: expected key=value");
  EXPECT_EQ(ErrorOf(kMinimal, {"join.windw=3"}),
            "--set join.windw=3: join.windw: unknown key (see README, Configuration)");
}

TEST(EnvOverrideTest, DoubleUnderscoreSeparatesLevels) {
  const char* env[] = {"CTRJOIN_JOIN__WINDOW_MS=60000",
                       "CTRJOIN_SOURCE__KAFKA__BROKERS=h:1",
                       "CTRJOIN_CRASH_AT=write:3",
                       "CTRJOIN_LOG_FORMAT=json",
                       "PATH=/bin",
                       nullptr};
  std::vector<EnvOverride> o = EnvOverrides(const_cast<char**>(env));
  ASSERT_EQ(o.size(), 2u);
  EXPECT_EQ(o[0].variable, "CTRJOIN_JOIN__WINDOW_MS");
  EXPECT_EQ(o[0].assignment, "join.window_ms=60000");
  EXPECT_EQ(o[1].assignment, "source.kafka.brokers=h:1");
}

TEST(EnvOverrideTest, AppliesBetweenFileAndSetAndNamesTheVariable) {
  const std::string yaml =
      "source: {files: {impressions: a, clicks: b}}\njoin: {window_ms: 1000}\n";
  auto c = ParseConfig(yaml, {}, {{"CTRJOIN_JOIN__WINDOW_MS", "join.window_ms=2000"}});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->join.window_ms, 2000);
  c = ParseConfig(yaml, {"join.window_ms=3000"},
                  {{"CTRJOIN_JOIN__WINDOW_MS", "join.window_ms=2000"}});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->join.window_ms, 3000) << "--set wins over the environment";
  c = ParseConfig(yaml, {}, {{"CTRJOIN_JOIN__WINDOW_MS", "join.window_ms=ten"}});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("CTRJOIN_JOIN__WINDOW_MS"), std::string::npos)
      << c.status().message();
  EXPECT_NE(c.status().message().find("join.window_ms"), std::string::npos);
  c = ParseConfig(yaml, {}, {{"CTRJOIN_JOIN__WINDOW_MS", "join.window_ms=-1"}});
  ASSERT_FALSE(c.ok()) << "a value the validation rejects";
  EXPECT_NE(c.status().message().find("environment variable CTRJOIN_JOIN__WINDOW_MS"),
            std::string::npos)
      << c.status().message();
  c = ParseConfig(yaml, {"join.window_ms=-1"}, {{"CTRJOIN_JOIN__WINDOW_MS", "join.window_ms=2"}});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("--set join.window_ms=-1"), std::string::npos)
      << "the last setter is named: " << c.status().message();
  c = ParseConfig(yaml, {}, {{"CTRJOIN_JOIN__WINDOWMS", "join.windowms=5"}});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("CTRJOIN_JOIN__WINDOWMS"), std::string::npos)
      << c.status().message();
}

}  // namespace
}  // namespace ctrjoin

namespace ctrjoin {
namespace {

TEST(ConfigTest, CheckpointKeysAreValidated) {
  const std::string files = std::string(kMinimal) + "sink: {type: file, path: out}\n";
  Result<Config> ok = ParseConfig(files + "checkpoint: {enabled: true, interval_ms: 100}", {});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->checkpoint.dir, ok->state.dir + "/checkpoints");
  EXPECT_EQ(ok->checkpoint.retain, 3u);
  EXPECT_NE(ErrorOf(files + "checkpoint: {enabled: true, interval_ms: 10}")
                .find("checkpoint.interval_ms: must be in [50, 3600000], got 10"),
            std::string::npos);
  EXPECT_NE(ErrorOf(files + "checkpoint: {enabled: true, retain: 0}").find("checkpoint.retain"),
            std::string::npos);
  EXPECT_NE(ErrorOf(std::string(kMinimal) + "checkpoint: {enabled: true}")
                .find("checkpoint.enabled: exactly-once output needs sink.type"),
            std::string::npos);
  // A Kafka sink under exactly once needs a Kafka source and a prefix.
  const std::string kafka_sink =
      std::string(kMinimal) + "sink: {type: kafka, kafka: {brokers: b, topic: t}}\n";
  EXPECT_NE(ErrorOf(kafka_sink + "checkpoint: {enabled: true}").find("needs a Kafka source"),
            std::string::npos);
  const std::string kafka_both =
      "source: {type: kafka, kafka: {brokers: b}}\n"
      "sink: {type: kafka, kafka: {brokers: b, topic: t}}\ncheckpoint: {enabled: true}\n";
  EXPECT_NE(ErrorOf(kafka_both).find("sink.kafka.transactional_id_prefix"), std::string::npos);
  EXPECT_NE(ErrorOf(kafka_both, {"sink.kafka.transactional_id_prefix=job",
                                 "sink.kafka.transaction_timeout_ms=5000"})
                .find("sink.kafka.transaction_timeout_ms: 5000 ms is too short"),
            std::string::npos);
  EXPECT_NE(
      ErrorOf(kafka_both, {"sink.kafka.transactional_id_prefix=job", "source.kafka.mode=subscribe"})
          .find("source.kafka.mode: checkpoints need mode 'assign'"),
      std::string::npos);
}

}  // namespace
}  // namespace ctrjoin

namespace ctrjoin {
namespace {

TEST(ConfigTest, HttpKeysAreValidated) {
  EXPECT_FALSE(Config().http.enabled) << "a Config built in code serves no HTTP";
  Result<Config> c = ParseConfig(kMinimal, {});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->http.enabled) << "a config file serves HTTP by default";
  EXPECT_EQ(c->http.server.address, "127.0.0.1:9464");
  EXPECT_EQ(c->http.ReadyMaxCheckpointAgeMs(1'000), 10'000);
  EXPECT_EQ(c->http.ReadyMaxCheckpointAgeMs(5'000), 15'000);

  c = ParseConfig(std::string(kMinimal) +
                      "http: {enabled: false, address: '0.0.0.0:0', "
                      "ready_max_checkpoint_age_ms: 2500}",
                  {});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_FALSE(c->http.enabled);
  EXPECT_EQ(c->http.server.address, "0.0.0.0:0");
  EXPECT_EQ(c->http.ReadyMaxCheckpointAgeMs(1'000), 2'500);

  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "http: {enabled: maybe}"),
            "http.enabled: expected true or false, got 'maybe'");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "http: {port: 1}"),
            "http.port: unknown key (see README, Configuration)");
  EXPECT_TRUE(ErrorOf(std::string(kMinimal) + "http: {address: 'metrics.example:9464'}")
                  .starts_with("http.address: the host must be an IP address or localhost"));
  EXPECT_TRUE(ErrorOf(kMinimal, {"http.address=127.0.0.1:70000"})
                  .starts_with("--set http.address=127.0.0.1:70000: http.address: the port must "
                               "be a number in [0, 65535]"));
  EXPECT_NE(ErrorOf(std::string(kMinimal) + "http: {ready_max_checkpoint_age_ms: -1}")
                .find("http.ready_max_checkpoint_age_ms: must be >= 0"),
            std::string::npos);
  // A disabled endpoint's address is not looked at.
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "http: {enabled: false, address: nowhere}"), "");
}

}  // namespace
}  // namespace ctrjoin
