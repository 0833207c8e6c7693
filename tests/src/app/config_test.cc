#include "src/app/config.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

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
  EXPECT_EQ(c->sink.type, SinkType::kStdout);
  EXPECT_EQ(c->source.files.clicks_path, "b.jsonl");
  EXPECT_FALSE(c->join.emit_corrections);
}

TEST(ConfigTest, FullConfigParses) {
  Result<Config> c = ParseConfig(R"(
source:
  type: kafka
  kafka:
    brokers: 127.0.0.1:9092
    mode: group
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
  EXPECT_EQ(c->source.kafka.mode, KafkaMode::kGroup);
  EXPECT_EQ(c->source.kafka.properties.at("fetch.wait.max.ms"), "50");
  EXPECT_EQ(c->schema.ts_field, "event_time");
  EXPECT_EQ(c->schema.max_id_bytes, 64u);
  EXPECT_TRUE(c->join.emit_corrections);
  EXPECT_EQ(c->pipeline.shards, 3u);
  EXPECT_EQ(c->state.HotBytesPerShard(3), ((256u << 20) - (64u << 20)) / 3);
}

TEST(ConfigTest, UnknownKeysAreNamed) {
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "join: {windw_ms: 5}"),
            "join.windw_ms: unknown key (see src/app/README.md)");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "bogus: 1"),
            "bogus: unknown key (see src/app/README.md)");
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

TEST(ConfigTest, NamedValuesAreReadOnceAndMisspellingsNamed) {
  Result<Config> c = ParseConfig(std::string(kMinimal) +
                                     "sink: {type: file, path: o, format: tf_example}\n"
                                     "dead_letter: {type: stderr}\n"
                                     "feature_store: {type: hbase, hbase: {protocol: compact}}",
                                 {"source.kafka.start=latest"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->source.type, SourceType::kFiles);
  EXPECT_EQ(c->source.kafka.start, StartPosition::kLatest);
  EXPECT_EQ(c->sink.type, SinkType::kFile);
  EXPECT_EQ(c->sink.format, SampleFormat::kTfExample);
  EXPECT_EQ(c->dead_letter.type, DeadLetterType::kStderr);
  EXPECT_EQ(c->feature_store.type, FeatureStoreType::kHBase);
  EXPECT_EQ(c->feature_store.hbase.protocol, HBaseProtocol::kCompact);
  EXPECT_EQ(c->feature_store.hbase.transport, HBaseTransport::kBuffered);

  EXPECT_EQ(ErrorOf("source: {type: s3}"), "source.type: must be 'files' or 'kafka', got 's3'");
  EXPECT_EQ(ErrorOf(kMinimal, {"source.kafka.mode=x"}),
            "--set source.kafka.mode=x: source.kafka.mode: must be 'assign' or 'group', got "
            "'x'");
  EXPECT_EQ(ErrorOf(kMinimal, {"source.kafka.start=middle"}),
            "--set source.kafka.start=middle: source.kafka.start: must be 'earliest' or 'latest', "
            "got 'middle'");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "sink: {type: files}"),
            "sink.type: must be 'stdout', 'file' or 'kafka', got 'files'");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "sink: {format: protobuf}"),
            "sink.format: must be 'json' or 'tf_example', got 'protobuf'");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "sink: {format: tf_example}"),
            "sink.format: stdout takes only 'json'");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "dead_letter: {type: null_device}"),
            "dead_letter.type: must be 'file', 'kafka' or 'stderr', got 'null_device'");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "feature_store: {type: redis}"),
            "feature_store.type: must be 'embedded' or 'hbase', got 'redis'");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "feature_store: {hbase: {transport: http}}"),
            "feature_store.hbase.transport: must be 'buffered' or 'framed', got 'http'");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "join: {late_clicks: keep}"),
            "join.late_clicks: must be 'drop' or 'correct', got 'keep'");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "join: {late_clicks: [drop]}"),
            "join.late_clicks: expected a scalar, got a non-scalar value");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "lookups: [{name: u, table: t, key_field: ts}]"),
            "lookups[0].key_field: must be 'user_id' or 'item_id', got 'ts'");
}

TEST(ConfigTest, LookupsAreReadAndCheckedPerElement) {
  Result<Config> c = ParseConfig(std::string(kMinimal) +
                                     "lookups:\n"
                                     "  - {name: user, table: users}\n"
                                     "  - {name: item, table: items, key_field: item_id, "
                                     "cache: {max_mb: 8}}\n",
                                 {});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->lookups.size(), 2u);
  EXPECT_EQ(c->lookups[0].key_field, LookupKey::kUserId);
  EXPECT_EQ(c->lookups[0].family, "f");
  EXPECT_EQ(c->lookups[1].key_field, LookupKey::kItemId);
  EXPECT_EQ(c->lookups[1].cache.max_mb, 8u);
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "lookups: [{name: u, table: t, cache: {ttl: 1}}]"),
            "lookups[0].cache.ttl: unknown key (see src/app/README.md)");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "lookups: [5]"), "lookups[0]: expected a mapping");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "lookups: {name: u}"),
            "lookups: expected a list, got a non-scalar value");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "lookups: [{name: u, table: t}, {name: u, table: v}]"),
            "lookups[1].name: 'u' is used twice");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "lookups: [{name: u.v, table: t}]"),
            "lookups[0].name: 'u.v' must not contain '.' (it prefixes the features: name.column)");
  Result<Config> named = ParseConfig(std::string(kMinimal) + "lookups: [{name: u, table: t}]", {});
  ASSERT_TRUE(named.ok());
  EXPECT_EQ(named->ParserSchema().lookup_names, std::vector<std::string>{"u"});
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "lookups: [{name: u, table: t, max_versions: 0}]"),
            "lookups[0].max_versions: must be in [1, 100]");
}

TEST(ConfigTest, OverridesApplyOnTop) {
  Result<Config> c =
      ParseConfig(kMinimal, {"join.window_ms=1234", "sink.type=file", "sink.path=/tmp/o.jsonl"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->join.window_ms, 1234);
  EXPECT_EQ(c->sink.path, "/tmp/o.jsonl");
  EXPECT_EQ(ErrorOf(kMinimal, {"join.window_ms"}), "--set join.window_ms: expected key=value");
  EXPECT_EQ(ErrorOf(kMinimal, {"join.windw=3"}),
            "--set join.windw=3: join.windw: unknown key (see src/app/README.md)");
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
  EXPECT_TRUE(ParseConfig(files + "checkpoint: {enabled: true, interval_ms: 10}", {}).ok());
  EXPECT_NE(ErrorOf(files + "checkpoint: {enabled: true, interval_ms: 9}")
                .find("checkpoint.interval_ms: must be in [10, 3600000], got 9"),
            std::string::npos);
  EXPECT_NE(ErrorOf(files + "checkpoint: {enabled: true, interval_ms: 3600001}")
                .find("checkpoint.interval_ms: must be in [10, 3600000], got 3600001"),
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
  // Mode group: exactly once through a Kafka sink only (each task's state
  // and offsets commit in its transactions), not through files.
  EXPECT_EQ(
      ErrorOf(kafka_both, {"sink.kafka.transactional_id_prefix=job", "source.kafka.mode=group"}),
      "");
  const std::string group_to_files =
      "source: {type: kafka, kafka: {brokers: b, mode: group}}\n"
      "sink: {type: file, path: out}\ncheckpoint: {enabled: true}\n";
  EXPECT_NE(ErrorOf(group_to_files)
                .find("checkpoint.enabled: in source.kafka.mode 'group' exactly-once output "
                      "needs sink.type 'kafka', not 'file'"),
            std::string::npos)
      << ErrorOf(group_to_files);
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
            "http.port: unknown key (see src/app/README.md)");
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

namespace ctrjoin {
namespace {

// A value of the key's kind that differs from `shown`, the default.
std::string OtherValue(ValueKind kind, const std::vector<std::string>& choices,
                       const std::string& shown, const std::string& key) {
  switch (kind) {
    case ValueKind::kBool: return shown == "true" ? "false" : "true";
    case ValueKind::kInteger:
    case ValueKind::kCount: return std::to_string(std::stoll(shown) + 1);
    case ValueKind::kString: return "rt-" + key;
    case ValueKind::kMap: return "{rt.property: v}";
    case ValueKind::kChoice: return choices[0] == shown ? choices[1] : choices[0];
    case ValueKind::kList: break;
  }
  ADD_FAILURE() << key << ": no value for a list";
  return "";
}

// {source: {kafka: {mode: VALUE}}} for "source.kafka.mode".
std::string FlowMapping(const std::string& path, const std::string& value) {
  const size_t dot = path.find('.');
  if (dot == std::string::npos) return "{" + path + ": " + value + "}";
  return "{" + path.substr(0, dot) + ": " + FlowMapping(path.substr(dot + 1), value) + "}";
}

// CTRJOIN_SOURCE__KAFKA__MODE for "source.kafka.mode".
std::string EnvVariable(const std::string& key) {
  std::string name = "CTRJOIN_";
  for (char ch : key) {
    if (ch == '.') {
      name += "__";
    } else {
      name += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    }
  }
  return name;
}

TEST(ConfigTableTest, EveryKeyRoundTripsThroughYamlEnvironmentAndSet) {
  const Config defaults = FileDefaults();
  Result<Config> base = ReadConfig("", {});
  ASSERT_TRUE(base.ok()) << base.status().ToString();
  for (const ConfigSection& section : ConfigSections()) {
    for (const ConfigKey<Config>& k : section.keys) {
      if (k.kind == ValueKind::kList) continue;  // lookups: see the next test
      EXPECT_TRUE(k.key.starts_with(section.name + ".")) << k.key;
      const std::string value = OtherValue(k.kind, k.choices, k.show(defaults), k.key);
      ASSERT_NE(value, k.show(defaults)) << k.key;

      Result<Config> from_yaml = ReadConfig(FlowMapping(k.key, value), {});
      ASSERT_TRUE(from_yaml.ok()) << k.key << ": " << from_yaml.status().ToString();
      EXPECT_EQ(k.show(*from_yaml), value) << k.key << " from YAML";
      // It sets its own field only (checkpoint.dir's default derives from state.dir).
      for (const ConfigSection& other_section : ConfigSections()) {
        for (const ConfigKey<Config>& other : other_section.keys) {
          if (other.key == k.key || (k.key == "state.dir" && other.key == "checkpoint.dir")) {
            continue;
          }
          EXPECT_EQ(other.show(*from_yaml), other.show(*base)) << k.key << " changed " << other.key;
        }
      }

      const std::string variable = EnvVariable(k.key) + "=" + value;
      char* environ[] = {const_cast<char*>(variable.c_str()), nullptr};
      Result<Config> from_env = ReadConfig("", {}, EnvOverrides(environ));
      ASSERT_TRUE(from_env.ok()) << variable << ": " << from_env.status().ToString();
      EXPECT_EQ(k.show(*from_env), value) << variable;

      Result<Config> from_set = ReadConfig("", {k.key + "=" + value});
      ASSERT_TRUE(from_set.ok()) << k.key << ": " << from_set.status().ToString();
      EXPECT_EQ(k.show(*from_set), value) << "--set " << k.key;
    }
  }
}

// Elements of a list have no environment variable (CTRJOIN_LOOKUPS is not
// one); the whole list can be set with --set.
TEST(ConfigTableTest, EveryLookupKeyRoundTripsThroughYamlAndSet) {
  const LookupSpec defaults;
  for (const ConfigKey<LookupSpec>& k : LookupKeys()) {
    const std::string value = OtherValue(k.kind, k.choices, k.show(defaults), k.key);
    const std::string list = "[" + FlowMapping(k.key, value) + "]";
    for (const Result<Config>& c :
         {ReadConfig("lookups: " + list, {}), ReadConfig("", {"lookups=" + list})}) {
      ASSERT_TRUE(c.ok()) << k.key << ": " << c.status().ToString();
      ASSERT_EQ(c.value().lookups.size(), 1u);
      EXPECT_EQ(k.show(c.value().lookups[0]), value) << k.key;
      for (const ConfigKey<LookupSpec>& other : LookupKeys()) {
        if (other.key == k.key) continue;
        EXPECT_EQ(other.show(c.value().lookups[0]), other.show(defaults))
            << k.key << " changed " << other.key;
      }
    }
  }
}

TEST(ConfigTableTest, KeysAreDeclaredOnceAndDocumented) {
  std::vector<std::string> names;
  for (const ConfigSection& section : ConfigSections()) {
    EXPECT_FALSE(section.doc.empty()) << section.name;
    for (const ConfigKey<Config>& k : section.keys) {
      names.push_back(k.key);
      EXPECT_FALSE(k.doc.empty()) << k.key;
    }
  }
  for (const ConfigKey<LookupSpec>& k : LookupKeys()) EXPECT_FALSE(k.doc.empty()) << k.key;
  std::sort(names.begin(), names.end());
  EXPECT_EQ(std::adjacent_find(names.begin(), names.end()), names.end());
}

TEST(ConfigTableTest, ReadmeHoldsTheGeneratedReference) {
  const std::string path = std::string(CTRJOIN_SOURCE_DIR) + "/src/app/README.md";
  std::ifstream in(path);
  ASSERT_TRUE(in) << path;
  std::stringstream text;
  text << in.rdbuf();
  const std::string readme = text.str();
  const std::string begin = "<!-- config-reference:begin -->\n";
  const std::string end = "<!-- config-reference:end -->";
  const size_t from = readme.find(begin);
  const size_t to = readme.find(end);
  ASSERT_NE(from, std::string::npos) << path << " has no " << begin;
  ASSERT_NE(to, std::string::npos) << path << " has no " << end;
  ASSERT_LT(from, to);
  EXPECT_EQ(readme.substr(from + begin.size(), to - from - begin.size()), ConfigReference())
      << "regenerate it: `ctrjoin config-reference`, pasted between the markers";
}

TEST(ConfigTableTest, ReferenceShowsTypesDefaultsAndRules) {
  const std::string reference = ConfigReference();
  for (const std::string& row : {
           std::string("| `source.kafka.mode` | `assign` \\| `group` | `assign` |"),
           std::string("| `join.window_ms` | integer | `600000` |"),
           std::string("| `state.memory_budget_mb` | integer ≥ 0 | `1024` |"),
           std::string("| `http.enabled` | bool | `true` |"),
           std::string("| `checkpoint.dir` | string | `<state.dir>/checkpoints` |"),
           std::string("| `lookups[i].key_field` | `user_id` \\| `item_id` | `user_id` |"),
           std::string("| `sink.kafka.properties` | map of strings | `{}` |"),
           std::string("| `source.kafka.brokers` | string | (none) |"),
       }) {
    EXPECT_NE(reference.find(row), std::string::npos) << row;
  }
  EXPECT_NE(reference.find("At least 64."), std::string::npos) << "the table's own rules";
}

}  // namespace
}  // namespace ctrjoin
