#pragma once
// The ctrjoin configuration file (YAML): one section per component, each
// filled into that component's XxxOptions struct and validated by it. Every
// key is declared once, in its section's table in config.cc (src/app/
// config_key.h says how); reading, the checks, the overrides and the
// reference in src/app/README.md come from those tables. An unknown key, a
// mistyped value or an invalid value is rejected with a message naming the
// key ("join.window_ms: expected an integer, got 'ten'").
//
// This is composition code of the ctrjoin binary (library ctrjoin_app): the
// only part of src/ that names concrete joins and sinks. Called from main's
// thread at start-up.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "joins/embedded_feature_store.h"
#include "joins/hbase_client.h"
#include "joins/label_join.h"
#include "joins/lookup_service.h"
#include "sinks/kafka_sink.h"
#include "sinks/kafka_txn_sink.h"
#include "sinks/sample_format.h"
#include "sinks/sample_schema.h"
#include "src/app/config_key.h"
#include "src/core/enum_names.h"
#include "src/core/status.h"
#include "src/io/file_source.h"
#include "src/io/kafka_source.h"
#include "src/ops/http_server.h"
#include "src/pipeline/event_parser.h"
#include "src/pipeline/pipeline.h"
#include "src/pipeline/watermark.h"
#include "txn/checkpoint_coordinator.h"

namespace ctrjoin {

enum class SourceType { kFiles, kKafka };
constexpr auto NamesOf(SourceType) {
  return std::to_array<NamedValue<SourceType>>(
      {{SourceType::kFiles, "files"}, {SourceType::kKafka, "kafka"}});
}

struct SourceConfig {
  SourceType type = SourceType::kFiles;
  FileSourceOptions files;
  KafkaSourceOptions kafka;
};

struct StateConfig {
  std::string dir = "./ctrjoin-state";
  // Join state budget: hot in-memory state plus RocksDB's block cache and
  // memtables. A quarter (at least 16 MiB) goes to RocksDB.
  uint64_t memory_budget_mb = 1024;

  size_t RocksDbBytes() const;
  size_t HotBytesPerShard(uint32_t shards) const;
};

enum class SinkType { kStdout, kFile, kKafka };
constexpr auto NamesOf(SinkType) {
  return std::to_array<NamedValue<SinkType>>(
      {{SinkType::kStdout, "stdout"}, {SinkType::kFile, "file"}, {SinkType::kKafka, "kafka"}});
}

struct SinkConfig {
  SinkType type = SinkType::kStdout;
  SampleFormat format = SampleFormat::kJson;  // json only for stdout
  std::string path;  // for file: a file, or with checkpoints or rolling a directory
  // For file: parts close at this size or age (both 0: one file; with
  // checkpoints a part per epoch), and may be gzipped.
  uint64_t roll_bytes = 0;
  int64_t roll_ms = 0;
  FileCompression compression = FileCompression::kNone;
  // Whether a plain file sink writes rolled parts into a directory.
  bool Rolled() const {
    return roll_bytes > 0 || roll_ms > 0 || compression != FileCompression::kNone;
  }
  KafkaSinkOptions kafka;  // for kafka
  // For kafka with checkpoints (exactly once): see KafkaTransactionalSinkOptions.
  std::string transactional_id_prefix;
  int pool_size = 2;
  int transaction_timeout_ms = 60'000;
};

enum class DeadLetterType { kFile, kKafka, kStderr };
constexpr auto NamesOf(DeadLetterType) {
  return std::to_array<NamedValue<DeadLetterType>>({{DeadLetterType::kFile, "file"},
                                                    {DeadLetterType::kKafka, "kafka"},
                                                    {DeadLetterType::kStderr, "stderr"}});
}

struct DeadLetterConfig {
  DeadLetterType type = DeadLetterType::kFile;
  std::string path = "dead-letters.jsonl";  // for file
  KafkaSinkOptions kafka;                   // for kafka
};

// How long a stop (SIGINT/SIGTERM) may take (src/app/shutdown_watchdog.h).
struct ShutdownConfig {
  int64_t timeout_ms = 20'000;  // 0 = unbounded
};

// How long start-up keeps retrying a broker or feature store that does not
// answer (src/app/README.md, "startup").
struct StartupConfig {
  int64_t timeout_ms = 300'000;  // 0 = until stopped
};

// The HTTP endpoint (/metrics, /healthz, /ready; see src/ops/ops_endpoints.h).
struct HttpConfig {
  // Off in a Config built in code (tests, embedders); on in FileDefaults(),
  // so a config file (run, replay) serves HTTP unless it says otherwise.
  bool enabled = false;
  HttpServerOptions server;  // key `address`: default 127.0.0.1:9464 (loopback only)
  // /ready fails when the last checkpoint is older than this; 0 = derive:
  // max(3 x checkpoint.interval_ms, 10 s). Only with checkpoints.
  int64_t ready_max_checkpoint_age_ms = 0;
  // /ready fails when the Kafka brokers or the feature store have not
  // answered for longer; 0 = never for that reason.
  int64_t ready_unreachable_grace_ms = 10'000;

  int64_t ReadyMaxCheckpointAgeMs(int64_t checkpoint_interval_ms) const;
};

enum class FeatureStoreType { kEmbedded, kHBase };
constexpr auto NamesOf(FeatureStoreType) {
  return std::to_array<NamedValue<FeatureStoreType>>(
      {{FeatureStoreType::kEmbedded, "embedded"}, {FeatureStoreType::kHBase, "hbase"}});
}

// What start-up does when a lookup's family keeps fewer versions than its
// max_versions: warn and read with the family's count, or refuse to start.
enum class VersionsCheck { kWarn, kRefuse };
constexpr auto NamesOf(VersionsCheck) {
  return std::to_array<NamedValue<VersionsCheck>>(
      {{VersionsCheck::kWarn, "warn"}, {VersionsCheck::kRefuse, "refuse"}});
}

struct FeatureStoreConfig {
  FeatureStoreType type = FeatureStoreType::kEmbedded;  // used when lookups are configured
  EmbeddedFeatureStoreOptions embedded;
  HBaseClientOptions hbase;
  VersionsCheck versions_check = VersionsCheck::kWarn;
};

struct Config {
  SourceConfig source;
  SchemaOptions schema;
  WatermarkOptions watermark;
  LabelJoinOptions join;
  std::vector<LookupSpec> lookups;  // none: samples carry the impression's own features only
  LookupServiceOptions lookup;
  FeatureStoreConfig feature_store;
  StateConfig state;
  SinkConfig sink;
  DeadLetterConfig dead_letter;
  PipelineOptions pipeline;
  CheckpointOptions checkpoint;  // dir defaults to <state.dir>/checkpoints
  HttpConfig http;
  ShutdownConfig shutdown;
  StartupConfig startup;

  // The sections' checks in table order: the keys' own rules, then each
  // section's (the components' Validate() and rules across keys).
  Status Validate() const;
  KafkaTransactionalSinkOptions KafkaTxnSinkOptions() const;
  // `schema` with the lookups' names, for the event parser.
  SchemaOptions ParserSchema() const;
  // What the output publishes (sinks/sample_schema.h). Validated first.
  OutputSchema PublishedSchema() const;
};

// What a config file starts from: Config's defaults with http.enabled.
Config FileDefaults();

// One top-level section of the config file and its table: the keys (full
// paths, "source.kafka.mode" in "source") and the section's checks beyond
// the keys' own rules, null when there are none.
struct ConfigSection {
  std::string name;  // "source"
  std::string doc;   // a sentence for the reference
  std::vector<ConfigKey<Config>> keys;
  std::function<Status(const Config&)> validate;
};
const std::vector<ConfigSection>& ConfigSections();
// The keys of one element of `lookups`.
const std::vector<ConfigKey<LookupSpec>>& LookupKeys();

// The reference of every key, generated from the tables: a Markdown table per
// section. src/app/README.md holds it; `ctrjoin config-reference` prints it.
std::string ConfigReference();

// A config key set by an environment variable: CTRJOIN_<SECTION>__<KEY>,
// levels separated by a double underscore, case-insensitive:
// CTRJOIN_JOIN__WINDOW_MS=60000 sets join.window_ms,
// CTRJOIN_SOURCE__KAFKA__BROKERS=... sets source.kafka.brokers.
struct EnvOverride {
  std::string variable;    // "CTRJOIN_JOIN__WINDOW_MS"
  std::string assignment;  // "join.window_ms=60000"
};
// The overrides in an environment (environ); variables without "__" after
// the prefix (CTRJOIN_CRASH_AT, CTRJOIN_LOG_FORMAT) are not config keys.
std::vector<EnvOverride> EnvOverrides(char** env);

// Reads YAML text; env overrides apply on top, then overrides
// ("dotted.key=value" pairs from --set), with YAML scalar syntax for values.
// Unknown keys and mistyped values are errors; values are not validated.
// checkpoint.dir left empty becomes <state.dir>/checkpoints.
Result<Config> ReadConfig(const std::string& yaml_text, const std::vector<std::string>& overrides,
                          const std::vector<EnvOverride>& env = {});
// ReadConfig, then Validate().
Result<Config> ParseConfig(const std::string& yaml_text, const std::vector<std::string>& overrides,
                           const std::vector<EnvOverride>& env = {});
Result<Config> LoadConfigFile(const std::string& path, const std::vector<std::string>& overrides,
                              const std::vector<EnvOverride>& env = {});

}  // namespace ctrjoin
