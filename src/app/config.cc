#include "src/app/config.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string_view>

namespace ctrjoin {

namespace {

// Reads one YAML mapping, remembering which keys were used so that unknown
// ones can be reported by name.
class Section {
 public:
  Section(YAML::Node node, std::string path) : node_(std::move(node)), path_(std::move(path)) {}

  template <typename T>
  Status Get(const char* key, T& out) {
    used_.insert(key);
    const YAML::Node v = node_[key];
    if (!v) return Status::Ok();
    if (!v.IsScalar()) return Bad(key, v, "a scalar");
    T parsed;
    if (!YAML::convert<T>::decode(v, parsed)) return Bad(key, v, TypeName<T>());
    out = parsed;
    return Status::Ok();
  }

  Status GetMap(const char* key, std::map<std::string, std::string>& out) {
    used_.insert(key);
    const YAML::Node v = node_[key];
    if (!v) return Status::Ok();
    if (!v.IsMap()) return Bad(key, v, "a mapping of strings");
    for (const auto& kv : v) {
      if (!kv.second.IsScalar()) {
        return Status::InvalidArgument(Name(key) + "." + kv.first.as<std::string>() +
                                       ": expected a string");
      }
      out[kv.first.as<std::string>()] = kv.second.as<std::string>();
    }
    return Status::Ok();
  }

  // A sequence of mappings: fill(section, index) for each element.
  Status List(const char* key, const std::function<Status(Section&, size_t)>& fill) {
    used_.insert(key);
    const YAML::Node v = node_[key];
    if (!v || v.IsNull()) return Status::Ok();
    if (!v.IsSequence()) return Bad(key, v, "a list");
    for (size_t i = 0; i < v.size(); ++i) {
      const std::string name = Name(key) + "[" + std::to_string(i) + "]";
      if (!v[i].IsMap()) return Status::InvalidArgument(name + ": expected a mapping");
      Section element(v[i], name);
      CTRJOIN_RETURN_IF_ERROR(fill(element, i));
      CTRJOIN_RETURN_IF_ERROR(element.CheckUnknown());
    }
    return Status::Ok();
  }

  Status Sub(const char* key, const std::function<Status(Section&)>& fill) {
    used_.insert(key);
    const YAML::Node v = node_[key];
    if (!v || v.IsNull()) return Status::Ok();
    if (!v.IsMap()) return Bad(key, v, "a mapping");
    Section sub(v, Name(key));
    CTRJOIN_RETURN_IF_ERROR(fill(sub));
    return sub.CheckUnknown();
  }

  Status CheckUnknown() const {
    for (const auto& kv : node_) {
      const std::string k = kv.first.as<std::string>();
      if (!used_.count(k)) {
        return Status::InvalidArgument(Name(k.c_str()) +
                                       ": unknown key (see README, Configuration)");
      }
    }
    return Status::Ok();
  }

 private:
  std::string Name(const char* key) const { return path_.empty() ? key : path_ + "." + key; }

  Status Bad(const char* key, const YAML::Node& v, const std::string& expected) const {
    std::string got = v.IsScalar() ? "'" + v.Scalar() + "'" : "a non-scalar value";
    return Status::InvalidArgument(Name(key) + ": expected " + expected + ", got " + got);
  }

  template <typename T>
  static const char* TypeName() {
    if constexpr (std::is_same_v<T, bool>)
      return "true or false";
    else if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T>)
      return "a non-negative integer";
    else if constexpr (std::is_integral_v<T>)
      return "an integer";
    else
      return "a string";
  }

  YAML::Node node_;
  std::string path_;
  std::set<std::string> used_;
};

Status FillCache(Section& s, FeatureCacheOptions& o) {
  CTRJOIN_RETURN_IF_ERROR(s.Get("max_entries", o.max_entries));
  CTRJOIN_RETURN_IF_ERROR(s.Get("max_mb", o.max_mb));
  CTRJOIN_RETURN_IF_ERROR(s.Get("expire_after_write_ms", o.expire_after_write_ms));
  return s.Get("negative_ttl_ms", o.negative_ttl_ms);
}

Status FillKafkaSink(Section& s, KafkaSinkOptions& o) {
  CTRJOIN_RETURN_IF_ERROR(s.Get("brokers", o.brokers));
  CTRJOIN_RETURN_IF_ERROR(s.Get("topic", o.topic));
  CTRJOIN_RETURN_IF_ERROR(s.Get("flush_timeout_ms", o.flush_timeout_ms));
  return s.GetMap("properties", o.properties);
}

Status Fill(Section& root, Config& c) {
  CTRJOIN_RETURN_IF_ERROR(root.Sub("source", [&](Section& s) {
    CTRJOIN_RETURN_IF_ERROR(s.Get("type", c.source.type));
    CTRJOIN_RETURN_IF_ERROR(s.Sub("files", [&](Section& f) {
      CTRJOIN_RETURN_IF_ERROR(f.Get("impressions", c.source.files.impressions_path));
      return f.Get("clicks", c.source.files.clicks_path);
    }));
    return s.Sub("kafka", [&](Section& k) {
      KafkaSourceOptions& o = c.source.kafka;
      CTRJOIN_RETURN_IF_ERROR(k.Get("brokers", o.brokers));
      CTRJOIN_RETURN_IF_ERROR(k.Get("impressions_topic", o.impressions_topic));
      CTRJOIN_RETURN_IF_ERROR(k.Get("clicks_topic", o.clicks_topic));
      CTRJOIN_RETURN_IF_ERROR(k.Get("group_id", o.group_id));
      CTRJOIN_RETURN_IF_ERROR(k.Get("mode", o.mode));
      CTRJOIN_RETURN_IF_ERROR(k.Get("start", o.start));
      CTRJOIN_RETURN_IF_ERROR(k.Get("stop_at_end", o.stop_at_end));
      CTRJOIN_RETURN_IF_ERROR(k.Get("poll_timeout_ms", o.poll_timeout_ms));
      return k.GetMap("properties", o.properties);
    });
  }));
  CTRJOIN_RETURN_IF_ERROR(root.Sub("schema", [&](Section& s) {
    SchemaOptions& o = c.schema;
    CTRJOIN_RETURN_IF_ERROR(s.Get("impression_id_field", o.impression_id_field));
    CTRJOIN_RETURN_IF_ERROR(s.Get("user_id_field", o.user_id_field));
    CTRJOIN_RETURN_IF_ERROR(s.Get("item_id_field", o.item_id_field));
    CTRJOIN_RETURN_IF_ERROR(s.Get("ts_field", o.ts_field));
    CTRJOIN_RETURN_IF_ERROR(s.Get("features_field", o.features_field));
    CTRJOIN_RETURN_IF_ERROR(s.Get("click_impression_id_field", o.click_impression_id_field));
    CTRJOIN_RETURN_IF_ERROR(s.Get("click_ts_field", o.click_ts_field));
    CTRJOIN_RETURN_IF_ERROR(s.Get("max_id_bytes", o.max_id_bytes));
    CTRJOIN_RETURN_IF_ERROR(s.Get("max_features", o.max_features));
    CTRJOIN_RETURN_IF_ERROR(s.Get("max_future_ms", o.max_future_ms));
    return s.Get("max_record_bytes", o.max_record_bytes);
  }));
  CTRJOIN_RETURN_IF_ERROR(root.Sub("watermark", [&](Section& s) {
    CTRJOIN_RETURN_IF_ERROR(s.Get("out_of_orderness_ms", c.watermark.out_of_orderness_ms));
    return s.Get("idle_timeout_ms", c.watermark.idle_timeout_ms);
  }));
  CTRJOIN_RETURN_IF_ERROR(root.Sub("join", [&](Section& s) {
    CTRJOIN_RETURN_IF_ERROR(s.Get("window_ms", c.join.window_ms));
    CTRJOIN_RETURN_IF_ERROR(s.Get("allowed_lateness_ms", c.join.allowed_lateness_ms));
    CTRJOIN_RETURN_IF_ERROR(s.Get("max_held_clicks", c.join.max_held_clicks));
    std::string late = c.join.emit_corrections ? "correct" : "drop";
    CTRJOIN_RETURN_IF_ERROR(s.Get("late_clicks", late));
    if (late != "drop" && late != "correct") {
      return Status::InvalidArgument("join.late_clicks: must be 'drop' or 'correct', got '" + late +
                                     "'");
    }
    c.join.emit_corrections = late == "correct";
    return Status::Ok();
  }));
  CTRJOIN_RETURN_IF_ERROR(root.List("lookups", [&](Section& s, size_t) {
    LookupSpec spec;
    CTRJOIN_RETURN_IF_ERROR(s.Get("name", spec.name));
    CTRJOIN_RETURN_IF_ERROR(s.Get("table", spec.table));
    CTRJOIN_RETURN_IF_ERROR(s.Get("family", spec.family));
    CTRJOIN_RETURN_IF_ERROR(s.Get("key_field", spec.key_field));
    CTRJOIN_RETURN_IF_ERROR(s.Get("max_versions", spec.max_versions));
    CTRJOIN_RETURN_IF_ERROR(s.Sub("cache", [&](Section& c) { return FillCache(c, spec.cache); }));
    c.lookups.push_back(std::move(spec));
    return Status::Ok();
  }));
  CTRJOIN_RETURN_IF_ERROR(root.Sub("lookup", [&](Section& s) {
    LookupServiceOptions& o = c.lookup;
    CTRJOIN_RETURN_IF_ERROR(s.Get("io_threads", o.io_threads));
    CTRJOIN_RETURN_IF_ERROR(s.Get("max_batch", o.max_batch));
    CTRJOIN_RETURN_IF_ERROR(s.Get("max_batch_delay_us", o.max_batch_delay_us));
    CTRJOIN_RETURN_IF_ERROR(s.Get("deadline_ms", o.deadline_ms));
    CTRJOIN_RETURN_IF_ERROR(s.Get("retry_initial_ms", o.retry_initial_ms));
    CTRJOIN_RETURN_IF_ERROR(s.Get("retry_max_ms", o.retry_max_ms));
    CTRJOIN_RETURN_IF_ERROR(s.Get("emit_partial", o.emit_partial));
    return s.Get("live_horizon_ms", o.live_horizon_ms);
  }));
  CTRJOIN_RETURN_IF_ERROR(root.Sub("feature_store", [&](Section& s) {
    CTRJOIN_RETURN_IF_ERROR(s.Get("type", c.feature_store.type));
    CTRJOIN_RETURN_IF_ERROR(s.Sub("embedded", [&](Section& e) {
      EmbeddedFeatureStoreOptions& o = c.feature_store.embedded;
      CTRJOIN_RETURN_IF_ERROR(e.Get("path", o.path));
      CTRJOIN_RETURN_IF_ERROR(e.Get("load", o.load));
      return e.Get("cache_mb", o.cache_mb);
    }));
    return s.Sub("hbase", [&](Section& h) {
      HBaseClientOptions& o = c.feature_store.hbase;
      CTRJOIN_RETURN_IF_ERROR(h.Get("host", o.host));
      CTRJOIN_RETURN_IF_ERROR(h.Get("port", o.port));
      CTRJOIN_RETURN_IF_ERROR(h.Get("protocol", o.protocol));
      CTRJOIN_RETURN_IF_ERROR(h.Get("transport", o.transport));
      CTRJOIN_RETURN_IF_ERROR(h.Get("connect_timeout_ms", o.connect_timeout_ms));
      CTRJOIN_RETURN_IF_ERROR(h.Get("request_timeout_ms", o.request_timeout_ms));
      return h.Get("pool_size", o.pool_size);
    });
  }));
  CTRJOIN_RETURN_IF_ERROR(root.Sub("state", [&](Section& s) {
    CTRJOIN_RETURN_IF_ERROR(s.Get("dir", c.state.dir));
    return s.Get("memory_budget_mb", c.state.memory_budget_mb);
  }));
  CTRJOIN_RETURN_IF_ERROR(root.Sub("sink", [&](Section& s) {
    CTRJOIN_RETURN_IF_ERROR(s.Get("type", c.sink.type));
    CTRJOIN_RETURN_IF_ERROR(s.Get("format", c.sink.format));
    CTRJOIN_RETURN_IF_ERROR(s.Get("path", c.sink.path));
    return s.Sub("kafka", [&](Section& k) {
      CTRJOIN_RETURN_IF_ERROR(k.Get("transactional_id_prefix", c.sink.transactional_id_prefix));
      CTRJOIN_RETURN_IF_ERROR(k.Get("pool_size", c.sink.pool_size));
      CTRJOIN_RETURN_IF_ERROR(k.Get("transaction_timeout_ms", c.sink.transaction_timeout_ms));
      return FillKafkaSink(k, c.sink.kafka);
    });
  }));
  CTRJOIN_RETURN_IF_ERROR(root.Sub("dead_letter", [&](Section& s) {
    CTRJOIN_RETURN_IF_ERROR(s.Get("type", c.dead_letter.type));
    CTRJOIN_RETURN_IF_ERROR(s.Get("path", c.dead_letter.path));
    return s.Sub("kafka", [&](Section& k) { return FillKafkaSink(k, c.dead_letter.kafka); });
  }));
  CTRJOIN_RETURN_IF_ERROR(root.Sub("checkpoint", [&](Section& s) {
    CTRJOIN_RETURN_IF_ERROR(s.Get("enabled", c.checkpoint.enabled));
    CTRJOIN_RETURN_IF_ERROR(s.Get("interval_ms", c.checkpoint.interval_ms));
    CTRJOIN_RETURN_IF_ERROR(s.Get("retain", c.checkpoint.retain));
    return s.Get("dir", c.checkpoint.dir);
  }));
  CTRJOIN_RETURN_IF_ERROR(root.Sub("http", [&](Section& s) {
    CTRJOIN_RETURN_IF_ERROR(s.Get("enabled", c.http.enabled));
    CTRJOIN_RETURN_IF_ERROR(s.Get("address", c.http.server.address));
    return s.Get("ready_max_checkpoint_age_ms", c.http.ready_max_checkpoint_age_ms);
  }));
  CTRJOIN_RETURN_IF_ERROR(root.Sub("pipeline", [&](Section& s) {
    CTRJOIN_RETURN_IF_ERROR(s.Get("batch_size", c.pipeline.batch_size));
    CTRJOIN_RETURN_IF_ERROR(s.Get("max_inflight_batches", c.pipeline.max_inflight_batches));
    return s.Get("shards", c.pipeline.shards);
  }));
  return root.CheckUnknown();
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

// A duration in ms: >= 0 and at most a year (larger values overflow the
// event-time and clock arithmetic; use 0 to disable idleness instead).
Status Duration(const char* key, int64_t v) {
  constexpr int64_t kYearMs = 366LL * 86'400'000;
  if (v < 0 || v > kYearMs) {
    return Status::InvalidArgument(std::string(key) + ": must be >= 0 and at most a year (" +
                                   std::to_string(kYearMs) + " ms), got " + std::to_string(v));
  }
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
  if (source.type == "files") {
    CTRJOIN_RETURN_IF_ERROR(source.files.Validate());
  } else if (source.type == "kafka") {
    CTRJOIN_RETURN_IF_ERROR(source.kafka.Validate());
  } else {
    return Status::InvalidArgument("source.type: must be 'files' or 'kafka', got '" + source.type +
                                   "'");
  }
  CTRJOIN_RETURN_IF_ERROR(schema.Validate());
  CTRJOIN_RETURN_IF_ERROR(Duration("watermark.out_of_orderness_ms", watermark.out_of_orderness_ms));
  CTRJOIN_RETURN_IF_ERROR(Duration("watermark.idle_timeout_ms", watermark.idle_timeout_ms));
  CTRJOIN_RETURN_IF_ERROR(Duration("schema.max_future_ms", schema.max_future_ms));
  CTRJOIN_RETURN_IF_ERROR(join.Validate());
  std::set<std::string> lookup_names;
  for (size_t i = 0; i < lookups.size(); ++i) {
    const std::string prefix = "lookups[" + std::to_string(i) + "]";
    CTRJOIN_RETURN_IF_ERROR(lookups[i].Validate(prefix));
    if (!lookup_names.insert(lookups[i].name).second) {
      return Status::InvalidArgument(prefix + ".name: '" + lookups[i].name + "' is used twice");
    }
  }
  if (!lookups.empty()) {
    CTRJOIN_RETURN_IF_ERROR(lookup.Validate());
    if (feature_store.type == "embedded") {
      CTRJOIN_RETURN_IF_ERROR(feature_store.embedded.Validate());
    } else if (feature_store.type == "hbase") {
      CTRJOIN_RETURN_IF_ERROR(feature_store.hbase.Validate("feature_store.hbase"));
    } else {
      return Status::InvalidArgument("feature_store.type: must be 'embedded' or 'hbase', got '" +
                                     feature_store.type + "'");
    }
  }
  if (state.dir.empty()) return Status::InvalidArgument("state.dir: must not be empty");
  if (state.memory_budget_mb < 64) {
    return Status::InvalidArgument("state.memory_budget_mb: must be >= 64, got " +
                                   std::to_string(state.memory_budget_mb));
  }
  Result<SampleFormat> format = ParseSampleFormat(sink.format, "sink.format");
  if (!format.ok()) return format.status();
  if (sink.type == "stdout" && *format != SampleFormat::kJson) {
    return Status::InvalidArgument("sink.format: stdout takes only 'json'");
  }
  if (sink.type == "file") {
    if (sink.path.empty())
      return Status::InvalidArgument("sink.path: required when sink.type is 'file'");
  } else if (sink.type == "kafka") {
    CTRJOIN_RETURN_IF_ERROR(sink.kafka.Validate("sink.kafka"));
  } else if (sink.type != "stdout") {
    return Status::InvalidArgument("sink.type: must be 'stdout', 'file' or 'kafka', got '" +
                                   sink.type + "'");
  }
  if (dead_letter.type == "file") {
    if (dead_letter.path.empty()) {
      return Status::InvalidArgument("dead_letter.path: required when dead_letter.type is 'file'");
    }
  } else if (dead_letter.type == "kafka") {
    CTRJOIN_RETURN_IF_ERROR(dead_letter.kafka.Validate("dead_letter.kafka"));
  } else if (dead_letter.type != "stderr") {
    return Status::InvalidArgument("dead_letter.type: must be 'file', 'kafka' or 'stderr', got '" +
                                   dead_letter.type + "'");
  }
  CTRJOIN_RETURN_IF_ERROR(pipeline.Validate());
  CTRJOIN_RETURN_IF_ERROR(
      Duration("http.ready_max_checkpoint_age_ms", http.ready_max_checkpoint_age_ms));
  if (http.enabled) CTRJOIN_RETURN_IF_ERROR(http.server.Validate());
  if (!checkpoint.enabled) return Status::Ok();
  CTRJOIN_RETURN_IF_ERROR(checkpoint.Validate());
  if (sink.type == "stdout") {
    return Status::InvalidArgument(
        "checkpoint.enabled: exactly-once output needs sink.type 'file' or 'kafka', not 'stdout'");
  }
  if (source.type == "kafka" && source.kafka.mode != "assign") {
    return Status::InvalidArgument(
        "source.kafka.mode: checkpoints need mode 'assign' (a checkpoint holds the offsets of "
        "every partition)");
  }
  if (sink.type == "kafka") {
    if (source.type != "kafka") {
      return Status::InvalidArgument(
          "sink.type: exactly-once Kafka output needs a Kafka source (the input offsets commit "
          "in the output's transactions)");
    }
    CTRJOIN_RETURN_IF_ERROR(KafkaTxnSinkOptions().Validate());
  }
  return Status::Ok();
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
  Result<SampleFormat> format = ParseSampleFormat(sink.format, "sink.format");
  if (format.ok()) o.format = *format;
  return o;
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

Result<Config> ParseConfig(const std::string& yaml_text, const std::vector<std::string>& overrides,
                           const std::vector<EnvOverride>& env) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(std::string("config is not valid YAML: ") + e.what());
  }
  if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  if (!root.IsMap()) return Status::InvalidArgument("config: the top level must be a mapping");
  // Where each overridden key was set last, to name it in errors.
  std::map<std::string, std::string> origins;
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
  // Errors name the key ("join.window_ms: ..."); add where it was set.
  auto with_origin = [&](const Status& st) {
    for (const auto& [key, origin] : origins) {
      if (st.message().starts_with(key + ":")) return st.WithContext(origin);
    }
    return st;
  };
  Config config;
  config.http.enabled = true;  // see HttpConfig::enabled
  Section section(root, "");
  if (Status st = Fill(section, config); !st.ok()) return with_origin(st);
  if (config.checkpoint.dir.empty()) config.checkpoint.dir = config.state.dir + "/checkpoints";
  if (Status st = config.Validate(); !st.ok()) return with_origin(st);
  return config;
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
