#include "src/app/config.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string_view>

namespace ctrjoin {

namespace {

// The accessor of a Config field, for the tables below: FIELD(join.window_ms).
#define FIELD(path) ([](auto& c) -> auto& { return c.path; })

constexpr int64_t kYearMs = 366LL * 86'400'000;

// A duration in ms: >= 0 and at most a year (larger values overflow the
// event-time and clock arithmetic; use 0 to disable idleness instead).
Rule<int64_t> Duration() {
  return {"At most a year.", [](const int64_t& v, const std::string& name) {
            if (v >= 0 && v <= kYearMs) return Status::Ok();
            return Status::InvalidArgument(name + ": must be >= 0 and at most a year (" +
                                           std::to_string(kYearMs) + " ms), got " +
                                           std::to_string(v));
          }};
}

Rule<uint64_t> AtLeast(uint64_t min) {
  return {"At least " + std::to_string(min) + ".",
          [min](const uint64_t& v, const std::string& name) {
            if (v >= min) return Status::Ok();
            return Status::InvalidArgument(name + ": must be >= " + std::to_string(min) + ", got " +
                                           std::to_string(v));
          }};
}

Rule<std::string> NotEmpty() {
  return {"Not empty.", [](const std::string& v, const std::string& name) {
            if (!v.empty()) return Status::Ok();
            return Status::InvalidArgument(name + ": must not be empty");
          }};
}

using Keys = std::vector<ConfigKey<Config>>;

Keys Concat(std::initializer_list<Keys> parts) {
  Keys all;
  for (const Keys& part : parts) all.insert(all.end(), part.begin(), part.end());
  return all;
}

// The keys of a KafkaSinkOptions at prefix ("sink.kafka", "dead_letter.kafka");
// transactional: what exactly-once output (sink.kafka) adds to them.
template <typename Get>
Keys KafkaSinkKeys(const std::string& prefix, Get get, bool transactional) {
  return {
      Key<Config>(
          prefix + ".brokers", [get](auto& c) -> auto& { return get(c).brokers; },
          "Bootstrap servers. Required for `kafka`."),
      Key<Config>(
          prefix + ".topic", [get](auto& c) -> auto& { return get(c).topic; },
          "The topic. Required for `kafka`."),
      Key<Config>(
          prefix + ".properties", [get](auto& c) -> auto& { return get(c).properties; },
          "Extra librdkafka settings, applied after ctrjoin's own (so they can override them); "
          "one librdkafka does not know is refused at start-up." +
              std::string(transactional ? " With checkpoints not transactional.id, "
                                          "transaction.timeout.ms or enable.idempotence."
                                        : "")),
      Key<Config>(
          prefix + ".flush_timeout_ms", [get](auto& c) -> auto& { return get(c).flush_timeout_ms; },
          "Bounds a wait for a full queue and a flush" +
              std::string(transactional ? ", with checkpoints also every transactional call "
                                          "(init, flush, commit, abort)"
                                        : "") +
              "; > 0."),
  };
}

ConfigSection SourceSection() {
  return {
      "source",
      "Where impressions and clicks come from (src/io/file_source.h, src/io/kafka_source.h).",
      {
          Key<Config>("source.type", FIELD(source.type),
                      "`files`: two JSON-lines files, read in event-time order to their end; "
                      "`kafka`: two topics (`ctrjoin replay` needs `kafka`)."),
          Key<Config>("source.files.impressions", FIELD(source.files.impressions_path),
                      "The impressions file. Required for `files`."),
          Key<Config>("source.files.clicks", FIELD(source.files.clicks_path),
                      "The clicks file. Required for `files`."),
          Key<Config>("source.kafka.brokers", FIELD(source.kafka.brokers),
                      "Bootstrap servers, e.g. `kafka-1:9092`. Required for `kafka`."),
          Key<Config>("source.kafka.impressions_topic", FIELD(source.kafka.impressions_topic),
                      "The impressions topic."),
          Key<Config>("source.kafka.clicks_topic", FIELD(source.kafka.clicks_topic),
                      "The clicks topic; must differ from `impressions_topic`."),
          Key<Config>("source.kafka.group_id", FIELD(source.kafka.group_id),
                      "Consumer group; its committed offsets are where a run continues."),
          Key<Config>("source.kafka.mode", FIELD(source.kafka.mode),
                      "`assign`: every partition of both topics; `group`: the consumer group "
                      "shares them out among the job's processes, one task per partition "
                      "number; both topics must be co-partitioned (checked at start). With "
                      "checkpoints, `group` needs a Kafka sink; each task's state moves through "
                      "the changelog topic `<group_id>-changelog`."),
          Key<Config>("source.kafka.start", FIELD(source.kafka.start),
                      "Where a partition without a committed offset starts."),
          Key<Config>("source.kafka.stop_at_end", FIELD(source.kafka.stop_at_end),
                      "Stop at the end offsets seen at start-up (a bounded run: every window "
                      "closes); only with mode `assign`."),
          Key<Config>("source.kafka.poll_timeout_ms", FIELD(source.kafka.poll_timeout_ms),
                      "Longest wait for one source batch; 1 .. 10000."),
          Key<Config>("source.kafka.max_read_ahead_ms", FIELD(source.kafka.max_read_ahead_ms),
                      "A partition whose records (by Kafka timestamp) run more than this ahead "
                      "of the slowest partition with records left is paused until that one "
                      "catches up, so that on a backlog clicks do not race ahead of their "
                      "impressions (and wait in state); only the order of reading changes. 0 = "
                      "off (the default, for now: see src/README.md); at most a day."),
          Key<Config>("source.kafka.properties", FIELD(source.kafka.properties),
                      "Extra librdkafka settings, e.g. `{fetch.wait.max.ms: \"50\"}`, applied "
                      "after ctrjoin's own (so they can override them); one librdkafka does not "
                      "know is refused at start-up."),
      },
      [](const Config& c) {
        return c.source.type == SourceType::kKafka ? c.source.kafka.Validate()
                                                   : c.source.files.Validate();
      },
  };
}

ConfigSection SchemaSection() {
  const std::string not_empty = " Not empty.";
  return {
      "schema",
      "The fields of the JSON records and the limits beyond which a record is dead-lettered "
      "(src/pipeline/event_parser.h).",
      {
          Key<Config>("schema.impression_id_field", FIELD(schema.impression_id_field),
                      "Impression field: the impression id." + not_empty),
          Key<Config>("schema.user_id_field", FIELD(schema.user_id_field),
                      "Impression field: the user id." + not_empty),
          Key<Config>("schema.item_id_field", FIELD(schema.item_id_field),
                      "Impression field: the item id." + not_empty),
          Key<Config>("schema.ts_field", FIELD(schema.ts_field),
                      "Impression field: the event time." + not_empty),
          Key<Config>("schema.features_field", FIELD(schema.features_field),
                      "Impression field: the features (optional in a record)." + not_empty),
          Key<Config>("schema.click_impression_id_field", FIELD(schema.click_impression_id_field),
                      "Click field: the clicked impression's id." + not_empty),
          Key<Config>("schema.click_ts_field", FIELD(schema.click_ts_field),
                      "Click field: the event time." + not_empty),
          Key<Config>("schema.max_id_bytes", FIELD(schema.max_id_bytes),
                      "Longer ids are dead-lettered; 1 .. 65536."),
          Key<Config>("schema.max_features", FIELD(schema.max_features),
                      "Impressions with more features are dead-lettered; >= 1."),
          Key<Config>("schema.max_future_ms", FIELD(schema.max_future_ms),
                      "A ts further ahead of the wall clock is dead-lettered (default: 1 day).",
                      Duration()),
          Key<Config>("schema.max_record_bytes", FIELD(schema.max_record_bytes),
                      "Longer records are dead-lettered; >= 64."),
          Key<Config>("schema.features", FIELD(schema.features),
                      "Declared impression features: name -> '<type>' or '<type>=<default>', "
                      "type int64, float, string, int64_list or float_list (src/README.md, "
                      "\"Feature types\"). A value not of its type, or one its type cannot hold, "
                      "is dead-lettered; an absent feature takes its default, if any."),
          Key<Config>("schema.strict_features", FIELD(schema.strict_features),
                      "Dead-letter impressions with a feature schema.features does not declare "
                      "(off: its type is inferred)."),
      },
      // With the lookups' names: a declared feature may not shadow their columns.
      [](const Config& c) { return c.ParserSchema().Validate(); },
  };
}

ConfigSection WatermarkSection() {
  return {
      "watermark",
      "Event-time progress (src/pipeline/watermark.h).",
      {
          Key<Config>("watermark.out_of_orderness_ms", FIELD(watermark.out_of_orderness_ms),
                      "L: bounded out-of-orderness; the watermark trails the largest event "
                      "time seen by this much.",
                      Duration()),
          Key<Config>("watermark.idle_timeout_ms", FIELD(watermark.idle_timeout_ms),
                      "A partition silent this long stops holding the watermark back; 0 = never.",
                      Duration()),
      },
      nullptr,
  };
}

ConfigSection JoinSection() {
  constexpr auto kLateClicks =
      std::to_array<NamedValue<bool>>({{false, "drop"}, {true, "correct"}});
  return {
      "join",
      "The label join (joins/label_join.h).",
      {
          Key<Config>("join.window_ms", FIELD(join.window_ms),
                      "W: the attribution window; > 0 and at most a year."),
          Key<Config>("join.allowed_lateness_ms", FIELD(join.allowed_lateness_ms),
                      "Keys are remembered this long after their window closed (at most a "
                      "year)."),
          Choice<Config>("join.late_clicks", FIELD(join.emit_corrections), kLateClicks,
                         "A click after its impression's negative went out: `drop` it, or "
                         "`correct` (emit a correction record)."),
          Key<Config>("join.max_held_clicks", FIELD(join.max_held_clicks),
                      "Clicks held per key while their impression is missing; further ones "
                      "count as duplicates. >= 1."),
      },
      [](const Config& c) { return c.join.Validate(); },
  };
}

ConfigSection LookupsSection() {
  return {
      "lookups",
      "Feature lookups (joins/lookup_service.h): each enriches every impression with the "
      "features of one row of a feature-store table.",
      {
          List<Config>("lookups", FIELD(lookups), LookupKeys(),
                       "None: samples carry the impression's own features only."),
      },
      [](const Config& c) {
        std::set<std::string> names;
        for (size_t i = 0; i < c.lookups.size(); ++i) {
          const std::string prefix = "lookups[" + std::to_string(i) + "]";
          CTRJOIN_RETURN_IF_ERROR(c.lookups[i].Validate(prefix));
          if (!names.insert(c.lookups[i].name).second) {
            return Status::InvalidArgument(prefix + ".name: '" + c.lookups[i].name +
                                           "' is used twice");
          }
        }
        return Status::Ok();
      },
  };
}

ConfigSection LookupSection() {
  return {
      "lookup",
      "How lookups run (joins/lookup_service.h); checked only when lookups are configured.",
      {
          Key<Config>("lookup.io_threads", FIELD(lookup.io_threads),
                      "Concurrent store calls; 1 .. 256."),
          Key<Config>("lookup.max_batch", FIELD(lookup.max_batch),
                      "Rows per store call (HBase getMultiple); 1 .. 10000."),
          Key<Config>("lookup.max_batch_delay_us", FIELD(lookup.max_batch_delay_us),
                      "Longest wait for a batch to fill; >= 0."),
          Key<Config>("lookup.deadline_ms", FIELD(lookup.deadline_ms),
                      "With `emit_partial`: a lookup is given up after this; > 0."),
          Key<Config>("lookup.retry_initial_ms", FIELD(lookup.retry_initial_ms),
                      "First retry backoff; it doubles from here, with +-50% jitter. > 0 and "
                      "<= `retry_max_ms`."),
          Key<Config>("lookup.retry_max_ms", FIELD(lookup.retry_max_ms), "Largest retry backoff."),
          Key<Config>("lookup.emit_partial", FIELD(lookup.emit_partial),
                      "`false`: wait for the store however long it takes; `true`: emit without "
                      "the features after `deadline_ms`."),
          Key<Config>("lookup.breaker_failures", FIELD(lookup.breaker_failures),
                      "Consecutive failed store calls that open the circuit breaker: then one "
                      "call per backoff (`retry_initial_ms` doubling to `retry_max_ms`) probes "
                      "the store for all rows; 1 .. 1000."),
          Key<Config>("lookup.live_horizon_ms", FIELD(lookup.live_horizon_ms),
                      "Impressions younger than this may be answered past a cached row's fetch "
                      "with its newest versions (seen at most `expire_after_write_ms` late); "
                      "older ones (replays) always as of their ts. >= 0."),
      },
      [](const Config& c) { return c.lookups.empty() ? Status::Ok() : c.lookup.Validate(); },
  };
}

ConfigSection FeatureStoreSection() {
  return {
      "feature_store",
      "Where lookups read features (joins/embedded_feature_store.h, joins/hbase_client.h); "
      "checked only when lookups are configured.",
      {
          Key<Config>("feature_store.type", FIELD(feature_store.type),
                      "`embedded`: a local RocksDB; `hbase`: an HBase Thrift2 server."),
          Key<Config>("feature_store.embedded.path", FIELD(feature_store.embedded.path),
                      "The RocksDB directory (created if missing)."),
          Key<Config>("feature_store.embedded.load", FIELD(feature_store.embedded.load),
                      "A JSON-lines file of feature rows loaded at start-up; optional."),
          Key<Config>("feature_store.embedded.cache_mb", FIELD(feature_store.embedded.cache_mb),
                      "RocksDB block cache; > 0."),
          Key<Config>("feature_store.hbase.host", FIELD(feature_store.hbase.host),
                      "The Thrift2 server's host. Not empty."),
          Key<Config>("feature_store.hbase.port", FIELD(feature_store.hbase.port),
                      "The Thrift2 server's port (HBase's default); 1 .. 65535."),
          Key<Config>("feature_store.hbase.protocol", FIELD(feature_store.hbase.protocol),
                      "Thrift protocol; must match the server (HBase's default: `binary`)."),
          Key<Config>("feature_store.hbase.transport", FIELD(feature_store.hbase.transport),
                      "Thrift transport; must match the server (HBase's default: "
                      "`buffered`)."),
          Key<Config>("feature_store.hbase.connect_timeout_ms",
                      FIELD(feature_store.hbase.connect_timeout_ms), "Bounds connecting; > 0."),
          Key<Config>("feature_store.hbase.request_timeout_ms",
                      FIELD(feature_store.hbase.request_timeout_ms),
                      "Bounds each socket send or receive of a call; > 0."),
          Key<Config>("feature_store.hbase.pool_size", FIELD(feature_store.hbase.pool_size),
                      "Most connections open at once; > 0."),
          Key<Config>("feature_store.versions_check", FIELD(feature_store.versions_check),
                      "A lookup's family that keeps fewer versions than its `max_versions` "
                      "(HBase's VERSIONS, default 1, read from the table descriptor at start): "
                      "`warn` and read with the family's count (older impressions then cost a "
                      "store read each, but none misses a version the store has), or `refuse` "
                      "to start."),
      },
      [](const Config& c) {
        if (c.lookups.empty()) return Status::Ok();
        return c.feature_store.type == FeatureStoreType::kHBase
                   ? c.feature_store.hbase.Validate("feature_store.hbase")
                   : c.feature_store.embedded.Validate();
      },
  };
}

ConfigSection StateSection() {
  return {
      "state",
      "The join state (src/state/spill_store.h).",
      {
          Key<Config>("state.dir", FIELD(state.dir),
                      "Working state in `<dir>/live` (wiped at start) and, by default, the "
                      "checkpoints.",
                      NotEmpty()),
          Key<Config>("state.memory_budget_mb", FIELD(state.memory_budget_mb),
                      "Join state budget: hot in-memory state plus RocksDB's block cache and "
                      "memtables (a quarter, at least 16 MiB, goes to RocksDB).",
                      AtLeast(64)),
      },
      nullptr,
  };
}

ConfigSection SinkSection() {
  return {
      "sink",
      "Where samples go (sinks/).",
      Concat({
          {
              Key<Config>("sink.type", FIELD(sink.type), "Standard output, a file, or a topic."),
              Key<Config>("sink.format", FIELD(sink.format),
                          "`json`: JSON lines (values); `tf_example`: TFRecord files of "
                          "tf.Example, bare tf.Example Kafka values. `stdout` takes only "
                          "`json`."),
              Key<Config>("sink.path", FIELD(sink.path),
                          "For `file` (required): a file; a directory of parts "
                          "(`part-<20 digits>.<ext>`) with `checkpoint.enabled`, a roll bound or "
                          "compression."),
              Key<Config>("sink.roll_bytes", FIELD(sink.roll_bytes),
                          "For `file`: a part closes once it holds this many bytes (with "
                          "checkpoints: at the end of that epoch); 0 = no size bound."),
              Key<Config>("sink.roll_ms", FIELD(sink.roll_ms),
                          "For `file`: a part closes once it is this old (with checkpoints: at "
                          "the end of that epoch); 0 = no age bound. With checkpoints and both "
                          "bounds 0, every epoch is a part.",
                          Duration()),
              Key<Config>("sink.compression", FIELD(sink.compression),
                          "For `file`: `gzip` compresses each part (TFRecord readers: "
                          "compression_type='GZIP'); `none`."),
          },
          KafkaSinkKeys("sink.kafka", FIELD(sink.kafka), /*transactional=*/true),
          {
              Key<Config>("sink.kafka.transactional_id_prefix", FIELD(sink.transactional_id_prefix),
                          "With `checkpoint.enabled` (required): transactional ids "
                          "`<prefix>-0` .. `<prefix>-<pool_size-1>`; unique per job."),
              Key<Config>("sink.kafka.pool_size", FIELD(sink.pool_size),
                          "Transactional ids in the pool; 1 .. 16."),
              Key<Config>("sink.kafka.transaction_timeout_ms", FIELD(sink.transaction_timeout_ms),
                          "With checkpoints: >= 3 x `checkpoint.interval_ms` + 10 s and <= "
                          "900000 (the brokers' usual transaction.max.timeout.ms)."),
          },
      }),
      [](const Config& c) {
        switch (c.sink.type) {
          case SinkType::kStdout:
            if (c.sink.format != SampleFormat::kJson) {
              return Status::InvalidArgument("sink.format: stdout takes only 'json'");
            }
            if (c.sink.Rolled()) {
              return Status::InvalidArgument(
                  "sink.roll_bytes, sink.roll_ms, sink.compression: only for sink.type 'file'");
            }
            return Status::Ok();
          case SinkType::kFile:
            if (c.sink.path.empty()) {
              return Status::InvalidArgument("sink.path: required when sink.type is 'file'");
            }
            if (c.sink.roll_ms < 0) {
              return Status::InvalidArgument("sink.roll_ms: must not be negative, got " +
                                             std::to_string(c.sink.roll_ms));
            }
            return Status::Ok();
          case SinkType::kKafka:
            if (c.sink.Rolled()) {
              return Status::InvalidArgument(
                  "sink.roll_bytes, sink.roll_ms, sink.compression: only for sink.type 'file'");
            }
            return c.sink.kafka.Validate("sink.kafka");
        }
        return Status::Ok();
      },
  };
}

ConfigSection DeadLetterSection() {
  return {
      "dead_letter",
      "Where records that cannot be processed go, with the reason (sinks/file_sink.h, "
      "sinks/kafka_sink.h).",
      Concat({
          {
              Key<Config>("dead_letter.type", FIELD(dead_letter.type),
                          "A file (appended to), a topic, or standard error."),
              Key<Config>("dead_letter.path", FIELD(dead_letter.path), "For `file` (required)."),
          },
          KafkaSinkKeys("dead_letter.kafka", FIELD(dead_letter.kafka), /*transactional=*/false),
      }),
      [](const Config& c) {
        switch (c.dead_letter.type) {
          case DeadLetterType::kFile:
            if (c.dead_letter.path.empty()) {
              return Status::InvalidArgument(
                  "dead_letter.path: required when dead_letter.type is 'file'");
            }
            return Status::Ok();
          case DeadLetterType::kKafka: return c.dead_letter.kafka.Validate("dead_letter.kafka");
          case DeadLetterType::kStderr: return Status::Ok();
        }
        return Status::Ok();
      },
  };
}

// Exactly-once output needs a transactional sink, and a Kafka sink commits
// the input offsets in its transactions.
Status CheckExactlyOnce(const Config& c) {
  if (!c.checkpoint.enabled) return Status::Ok();
  CTRJOIN_RETURN_IF_ERROR(c.checkpoint.Validate());
  if (c.sink.type == SinkType::kStdout) {
    return Status::InvalidArgument(
        "checkpoint.enabled: exactly-once output needs sink.type 'file' or 'kafka', not 'stdout'");
  }
  if (c.source.type == SourceType::kKafka && c.source.kafka.mode == KafkaMode::kGroup &&
      c.sink.type != SinkType::kKafka) {
    return Status::InvalidArgument(fmt::format(
        "checkpoint.enabled: in source.kafka.mode 'group' exactly-once output needs sink.type "
        "'kafka', not '{}' (each task's state and input offsets commit in the output's Kafka "
        "transactions, whichever process holds the task)",
        NameOf(c.sink.type)));
  }
  if (c.sink.type != SinkType::kKafka) return Status::Ok();
  if (c.source.type != SourceType::kKafka) {
    return Status::InvalidArgument(
        "sink.type: exactly-once Kafka output needs a Kafka source (the input offsets commit "
        "in the output's transactions)");
  }
  return c.KafkaTxnSinkOptions().Validate();
}

ConfigSection CheckpointSection() {
  return {
      "checkpoint",
      "Exactly-once output (txn/README.md).",
      {
          Key<Config>("checkpoint.enabled", FIELD(checkpoint.enabled),
                      "Needs `sink.type` `file` or `kafka` (`kafka` with a source in mode "
                      "`group`); a Kafka sink also needs a Kafka source and "
                      "`sink.kafka.transactional_id_prefix`."),
          Key<Config>("checkpoint.interval_ms", FIELD(checkpoint.interval_ms),
                      "Epoch length and commit interval; 10 .. 3600000."),
          Key<Config>("checkpoint.retain", FIELD(checkpoint.retain),
                      "Complete checkpoints kept; 1 .. 100."),
          Key<Config>("checkpoint.dir", FIELD(checkpoint.dir),
                      "Where checkpoints (small metadata files) and the shards' changelogs "
                      "(`changelog/`) are kept.",
                      {}, "`<state.dir>/checkpoints`"),
          Key<Config>("checkpoint.changelog_segment_mb", FIELD(checkpoint.changelog_segment_mb),
                      "A shard's changelog starts a new segment file at the first barrier past "
                      "this size; a segment is deleted once the watermark of the oldest kept "
                      "checkpoint passed every horizon in it. 1 .. 1024."),
      },
      CheckExactlyOnce,
  };
}

ConfigSection HttpSection() {
  return {
      "http",
      "While the pipeline runs, `/metrics`, `/healthz` and `/ready` (src/ops/README.md).",
      {
          Key<Config>("http.enabled", FIELD(http.enabled),
                      "`false`: no HTTP server. A `Config` built in code (tests) has it off; the "
                      "demo turns it on."),
          Key<Config>("http.address", FIELD(http.server.address),
                      "`host:port`; host an IPv4 address, `[IPv6]` or `localhost` (no name "
                      "lookups): other than loopback serves other machines. Port 0 = any free "
                      "port."),
          Key<Config>("http.ready_max_checkpoint_age_ms", FIELD(http.ready_max_checkpoint_age_ms),
                      "`/ready` fails when the last checkpoint is older; 0 = max(3 x "
                      "`checkpoint.interval_ms`, 10 s). Only with checkpoints.",
                      Duration()),
          Key<Config>("http.ready_unreachable_grace_ms", FIELD(http.ready_unreachable_grace_ms),
                      "`/ready` fails when the Kafka brokers or the feature store have not "
                      "answered for longer. 0 = never for that reason.",
                      Duration()),
      },
      [](const Config& c) { return c.http.enabled ? c.http.server.Validate() : Status::Ok(); },
  };
}

ConfigSection ShutdownSection() {
  return {
      "shutdown",
      "Stopping on SIGINT/SIGTERM (src/app/shutdown_watchdog.h).",
      {
          Key<Config>("shutdown.timeout_ms", FIELD(shutdown.timeout_ms),
                      "A stop that takes longer ends the process with exit code 4: the open "
                      "epoch is abandoned (nothing committed is lost; it is re-processed on "
                      "restart). Below a supervisor's grace period (Kubernetes: 30 s). 0 = "
                      "unbounded.",
                      Duration()),
      },
      nullptr,
  };
}

ConfigSection StartupSection() {
  return {
      "startup",
      "Starting while a dependency is down (src/app/app.cc, OpenWithRetry).",
      {
          Key<Config>("startup.timeout_ms", FIELD(startup.timeout_ms),
                      "Kafka brokers or a feature store that do not answer at start-up are "
                      "retried (backoff 0.5 s doubling to 10 s) while `/healthz` says ok and "
                      "`/ready` says what start-up waits for; past this the run fails (exit 1). "
                      "0 = until stopped.",
                      Duration()),
      },
      nullptr,
  };
}

ConfigSection PipelineSection() {
  return {
      "pipeline",
      "The flow graph (src/pipeline/pipeline.h).",
      {
          Key<Config>("pipeline.batch_size", FIELD(pipeline.batch_size),
                      "Records per source batch; 1 .. 1000000."),
          Key<Config>("pipeline.max_inflight_batches", FIELD(pipeline.max_inflight_batches),
                      "Source batches in the graph at once (the backpressure bound); 1 .. 10000."),
          Key<Config>("pipeline.shards", FIELD(pipeline.shards),
                      "Keyed shards; 0 = one per hardware thread. 0 .. 1024, at most "
                      "`pipeline.key_groups`. May change between restarts."),
          Key<Config>("pipeline.key_groups", FIELD(pipeline.key_groups),
                      "Key groups (xxh3(impression_id) % key_groups), the unit of keyed state "
                      "a shard owns; fixed when a job is created: a job restored from a "
                      "checkpoint keeps its own. 1 .. 65536."),
      },
      [](const Config& c) { return c.pipeline.Validate(); },
  };
}

// origin names where the assignment came from, for errors: "--set k=v" or
// "environment variable CTRJOIN_K".
Status ApplyOverride(YAML::Node& root, const std::string& assignment, const std::string& origin) {
  const size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    return Status::InvalidArgument(origin + ": expected key=value");
  }
  std::vector<std::string> path;
  std::stringstream keys(assignment.substr(0, eq));
  for (std::string part; std::getline(keys, part, '.');) path.push_back(part);
  YAML::Node value;
  try {
    value = YAML::Load(assignment.substr(eq + 1));
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(origin + ": " + e.what());
  }
  // yaml-cpp nodes are handles: walk with copies, assigning through them.
  std::vector<YAML::Node> chain{root};
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    YAML::Node next = chain.back()[path[i]];
    if (!next.IsMap()) {
      chain.back()[path[i]] = YAML::Node(YAML::NodeType::Map);
      next = chain.back()[path[i]];
    }
    chain.push_back(next);
  }
  chain.back()[path.back()] = value;
  return Status::Ok();
}

}  // namespace

int64_t HttpConfig::ReadyMaxCheckpointAgeMs(int64_t checkpoint_interval_ms) const {
  if (ready_max_checkpoint_age_ms > 0) return ready_max_checkpoint_age_ms;
  return std::max<int64_t>(3 * checkpoint_interval_ms, 10'000);
}

size_t StateConfig::RocksDbBytes() const {
  const size_t total = memory_budget_mb << 20;
  return std::max<size_t>(16u << 20, total / 4);
}

size_t StateConfig::HotBytesPerShard(uint32_t shards) const {
  const size_t total = memory_budget_mb << 20;
  return (total - std::min(total, RocksDbBytes())) / std::max(1u, shards);
}

Status Config::Validate() const {
  for (const ConfigSection& section : ConfigSections()) {
    CTRJOIN_RETURN_IF_ERROR(CheckKeys(section.keys, *this, ""));
    if (section.validate) CTRJOIN_RETURN_IF_ERROR(section.validate(*this));
  }
  return Status::Ok();
}

OutputSchema Config::PublishedSchema() const {
  OutputSchema schema;
  schema.format = sink.format;
  schema.compression = sink.compression;
  // Validate() has refused declarations that do not parse.
  if (Result<FeatureDecls> decls = ParseFeatureDecls(this->schema.features, "schema.features");
      decls.ok()) {
    schema.features = std::move(*decls);
  }
  schema.strict_features = this->schema.strict_features;
  for (const LookupSpec& l : lookups) {
    Result<FeatureDecls> columns = l.ColumnDecls(l.name);
    schema.lookups.emplace_back(l.name, columns.ok() ? std::move(*columns) : FeatureDecls{});
  }
  return schema;
}

SchemaOptions Config::ParserSchema() const {
  SchemaOptions s = schema;
  for (const LookupSpec& l : lookups) s.lookup_names.push_back(l.name);
  return s;
}

KafkaTransactionalSinkOptions Config::KafkaTxnSinkOptions() const {
  KafkaTransactionalSinkOptions o;
  o.brokers = sink.kafka.brokers;
  o.topic = sink.kafka.topic;
  o.transactional_id_prefix = sink.transactional_id_prefix;
  o.pool_size = sink.pool_size;
  o.transaction_timeout_ms = sink.transaction_timeout_ms;
  o.commit_interval_ms = static_cast<int>(checkpoint.interval_ms);
  o.operation_timeout_ms = sink.kafka.flush_timeout_ms;
  o.properties = sink.kafka.properties;
  o.format = sink.format;
  o.schema_id = PublishedSchema().Id();
  return o;
}

Config FileDefaults() {
  Config c;
  c.http.enabled = true;  // see HttpConfig::enabled
  return c;
}

const std::vector<ConfigSection>& ConfigSections() {
  static const std::vector<ConfigSection> kSections = {
      SourceSection(),   SchemaSection(),     WatermarkSection(),    JoinSection(),
      LookupsSection(),  LookupSection(),     FeatureStoreSection(), StateSection(),
      SinkSection(),     DeadLetterSection(), CheckpointSection(),   HttpSection(),
      PipelineSection(), ShutdownSection(),   StartupSection(),
  };
  return kSections;
}

const std::vector<ConfigKey<LookupSpec>>& LookupKeys() {
  static const std::vector<ConfigKey<LookupSpec>> kKeys = {
      Key<LookupSpec>(
          "name", FIELD(name),
          "Names the lookup and prefixes its features: `user.age`. Required; unique; no `.`."),
      Key<LookupSpec>("table", FIELD(table), "The feature-store table. Required."),
      Key<LookupSpec>("columns", FIELD(columns),
                      "Declared columns: column -> '<type>' or '<type>=<default>' (as "
                      "`schema.features`). A cell not of its column's type is left out of the "
                      "sample and counted (ctrjoin_lookup_cells_rejected_total); a row without a "
                      "declared column gets its default, if any. Undeclared columns' types are "
                      "inferred from the cell text."),
      Key<LookupSpec>("family", FIELD(family), "The column family. Not empty."),
      Key<LookupSpec>("key_field", FIELD(key_field),
                      "The impression field whose value is the row."),
      Key<LookupSpec>("max_versions", FIELD(max_versions),
                      "Versions per column fetched and cached; 1 .. 100. At most the family's "
                      "VERSIONS: at start ctrjoin reads the table descriptor (when the server "
                      "offers it) and acts on a family that keeps fewer as "
                      "`feature_store.versions_check` says."),
      Key<LookupSpec>("as_of_offset_ms", FIELD(as_of_offset_ms),
                      "Features as of ts minus this, for feature pipelines that land their "
                      "values late (a value stamped t is used from t + offset); 0 .. 1 year.",
                      Duration()),
      Key<LookupSpec>("cache.max_entries", FIELD(cache.max_entries),
                      "Cache bound: the least recently hit rows are evicted past it (CLOCK); > 0."),
      Key<LookupSpec>(
          "cache.max_mb", FIELD(cache.max_mb),
          "Cache bound in MiB: the least recently hit rows are evicted past it (CLOCK); > 0."),
      Key<LookupSpec>("cache.expire_after_write_ms", FIELD(cache.expire_after_write_ms),
                      "Staleness bound for live lookups; > 0."),
      Key<LookupSpec>("cache.negative_ttl_ms", FIELD(cache.negative_ttl_ms),
                      "How long a row with no features is remembered; > 0."),
  };
  return kKeys;
}

#undef FIELD

std::string ConfigReference() {
  const Config defaults = FileDefaults();
  std::string text;
  for (const ConfigSection& section : ConfigSections()) {
    text += "### `" + section.name + "`\n\n" + section.doc + "\n\n" +
            MarkdownTable(ReferenceRows(section.keys, defaults, "")) + "\n";
  }
  text.pop_back();
  return text;
}

std::vector<EnvOverride> EnvOverrides(char** env) {
  constexpr std::string_view kPrefix = "CTRJOIN_";
  std::vector<EnvOverride> out;
  for (char** e = env; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    const size_t eq = entry.find('=');
    if (!entry.starts_with(kPrefix) || eq == std::string_view::npos) continue;
    std::string_view name = entry.substr(kPrefix.size(), eq - kPrefix.size());
    if (name.find("__") == std::string_view::npos) continue;  // not a config key
    std::string key;
    for (size_t i = 0; i < name.size(); ++i) {
      if (name.compare(i, 2, "__") == 0) {
        key += '.';
        ++i;
      } else {
        key += static_cast<char>(std::tolower(static_cast<unsigned char>(name[i])));
      }
    }
    out.push_back(
        {std::string(entry.substr(0, eq)), key + "=" + std::string(entry.substr(eq + 1))});
  }
  return out;
}

namespace {

// Where each overridden key was set last, to name it in errors.
using Origins = std::map<std::string, std::string>;

Result<Config> Read(const std::string& yaml_text, const std::vector<std::string>& overrides,
                    const std::vector<EnvOverride>& env, Origins& origins) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(std::string("config is not valid YAML: ") + e.what());
  }
  if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  if (!root.IsMap()) return Status::InvalidArgument("config: the top level must be a mapping");
  auto key_of = [](const std::string& assignment) {
    return assignment.substr(0, assignment.find('='));
  };
  for (const EnvOverride& e : env) {
    const std::string origin = "environment variable " + e.variable;
    CTRJOIN_RETURN_IF_ERROR(ApplyOverride(root, e.assignment, origin));
    origins[key_of(e.assignment)] = origin;
  }
  for (const std::string& o : overrides) {
    CTRJOIN_RETURN_IF_ERROR(ApplyOverride(root, o, "--set " + o));
    origins[key_of(o)] = "--set " + o;
  }
  static const std::vector<ConfigKey<Config>> kAllKeys = [] {
    std::vector<ConfigKey<Config>> all;
    for (const ConfigSection& s : ConfigSections())
      all.insert(all.end(), s.keys.begin(), s.keys.end());
    return all;
  }();
  Config config = FileDefaults();
  CTRJOIN_RETURN_IF_ERROR(ReadKeys(root, "", kAllKeys, config));
  if (config.checkpoint.dir.empty()) config.checkpoint.dir = config.state.dir + "/checkpoints";
  return config;
}

// Errors name the key ("join.window_ms: ..."); adds where it was set.
Status WithOrigin(const Status& st, const Origins& origins) {
  for (const auto& [key, origin] : origins) {
    if (st.message().starts_with(key + ":")) return st.WithContext(origin);
  }
  return st;
}

// Read, then (validate) Validate(); errors say where their key was set.
Result<Config> Parse(const std::string& yaml_text, const std::vector<std::string>& overrides,
                     const std::vector<EnvOverride>& env, bool validate) {
  Origins origins;
  Result<Config> config = Read(yaml_text, overrides, env, origins);
  const Status st = !config.ok() ? config.status() : validate ? config->Validate() : Status::Ok();
  if (!st.ok()) return WithOrigin(st, origins);
  return config;
}

}  // namespace

Result<Config> ReadConfig(const std::string& yaml_text, const std::vector<std::string>& overrides,
                          const std::vector<EnvOverride>& env) {
  return Parse(yaml_text, overrides, env, /*validate=*/false);
}

Result<Config> ParseConfig(const std::string& yaml_text, const std::vector<std::string>& overrides,
                           const std::vector<EnvOverride>& env) {
  return Parse(yaml_text, overrides, env, /*validate=*/true);
}

Result<Config> LoadConfigFile(const std::string& path, const std::vector<std::string>& overrides,
                              const std::vector<EnvOverride>& env) {
  std::ifstream in(path);
  if (!in) return Status::InvalidArgument("cannot read config file " + path);
  std::stringstream text;
  text << in.rdbuf();
  Result<Config> c = ParseConfig(text.str(), overrides, env);
  if (!c.ok()) return c.status().WithContext(path);
  return c;
}

}  // namespace ctrjoin
