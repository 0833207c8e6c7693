#include "sinks/changelog_trimmer.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <string>
#include <string_view>

namespace ctrjoin {

namespace {

// How often a confirmed deletion is logged (each commit may delete some).
constexpr std::chrono::minutes kLogInterval{1};
constexpr int kRequestTimeoutMs = 30'000;

std::string Offsets(const std::map<int32_t, int64_t>& offsets) {
  std::string out;
  for (const auto& [task, offset] : offsets) {
    out += fmt::format("{}task {} below {}", out.empty() ? "" : ", ", task, offset);
  }
  return out;
}

}  // namespace

void ChangelogTrimPlan::Restored(int32_t task, int64_t end_offset, int64_t max_horizon) {
  Task& t = tasks_[task] = Task{};
  // Everything below end_offset as one record: it may go once its latest
  // deadline is passed. Its offset, 0, deletes nothing while it is kept.
  if (end_offset > 0) t.kept.push_back(Record{0, max_horizon, std::nullopt});
}

std::optional<int64_t> ChangelogTrimPlan::Committed(int32_t task, std::span<const Record> records) {
  Task& t = tasks_[task];
  for (const Record& r : records) {
    t.kept.push_back(r);
    if (r.watermark) t.watermark = std::max(t.watermark, *r.watermark);
  }
  // The last marker stays: a restore takes its watermark from it.
  auto last_marker = std::find_if(t.kept.rbegin(), t.kept.rend(),
                                  [](const Record& r) { return r.watermark.has_value(); });
  if (last_marker == t.kept.rend()) return std::nullopt;
  size_t deletable = t.kept.size() - 1 - static_cast<size_t>(last_marker - t.kept.rbegin());
  size_t dead = 0;
  while (dead < deletable && t.kept[dead].max_horizon < t.watermark) ++dead;
  t.kept.erase(t.kept.begin(), t.kept.begin() + static_cast<std::ptrdiff_t>(dead));
  const int64_t below = t.kept.front().offset;
  if (below <= t.trimmed) return std::nullopt;
  t.trimmed = below;
  return below;
}

Result<std::unique_ptr<ChangelogTrimmer>> ChangelogTrimmer::Open(
    const std::string& brokers, const std::map<std::string, std::string>& properties,
    std::string topic) {
  std::map<std::string, std::string> all = properties;
  all["bootstrap.servers"] = brokers;
  Result<KafkaConf> conf = MakeKafkaConf(all);
  if (!conf.ok()) return conf.status().WithContext("changelog trimmer");
  // A producer handle is librdkafka's lightest client; it produces nothing.
  Result<KafkaHandle> admin = MakeKafkaHandle(RD_KAFKA_PRODUCER, std::move(conf).value());
  if (!admin.ok()) return admin.status().WithContext("changelog trimmer");
  return std::unique_ptr<ChangelogTrimmer>(
      new ChangelogTrimmer(std::move(topic), std::move(admin).value()));
}

ChangelogTrimmer::ChangelogTrimmer(std::string topic, KafkaHandle admin)
    : topic_(std::move(topic)),
      admin_(std::move(admin)),
      answers_(rd_kafka_queue_new(admin_.get())) {}

ChangelogTrimmer::~ChangelogTrimmer() = default;

void ChangelogTrimmer::Restored(int32_t task, int64_t end_offset, int64_t max_horizon) {
  std::lock_guard lock(mu_);
  plan_.Restored(task, end_offset, max_horizon);
}

void ChangelogTrimmer::Committed(
    std::span<const std::pair<int32_t, ChangelogTrimPlan::Record>> records) {
  std::map<int32_t, std::vector<ChangelogTrimPlan::Record>> by_task;
  for (const auto& [task, record] : records) by_task[task].push_back(record);
  std::lock_guard lock(mu_);
  for (const auto& [task, kept] : by_task) {
    if (std::optional<int64_t> below = plan_.Committed(task, kept)) due_[task] = *below;
  }
  Pump();
}

std::map<int32_t, int64_t> ChangelogTrimmer::Deleted() {
  std::lock_guard lock(mu_);
  Pump();
  return deleted_;
}

void ChangelogTrimmer::Pump() {
  ReadAnswers();
  if (!in_flight_ && !due_.empty()) Ask();
}

void ChangelogTrimmer::Ask() {
  KafkaPartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(due_.size())));
  for (const auto& [task, below] : due_) {
    rd_kafka_topic_partition_list_add(list.get(), topic_.c_str(), task)->offset = below;
  }
  rd_kafka_DeleteRecords_t* request = rd_kafka_DeleteRecords_new(list.get());
  rd_kafka_AdminOptions_t* options =
      rd_kafka_AdminOptions_new(admin_.get(), RD_KAFKA_ADMIN_OP_DELETERECORDS);
  char error[256];
  rd_kafka_AdminOptions_set_request_timeout(options, kRequestTimeoutMs, error, sizeof error);
  rd_kafka_AdminOptions_set_operation_timeout(options, kRequestTimeoutMs, error, sizeof error);
  rd_kafka_DeleteRecords(admin_.get(), &request, 1, options, answers_.get());
  rd_kafka_AdminOptions_destroy(options);
  rd_kafka_DeleteRecords_destroy(request);
  asked_ = std::exchange(due_, {});
  in_flight_ = true;
}

void ChangelogTrimmer::ReadAnswers() {
  while (rd_kafka_event_t* event = rd_kafka_queue_poll(answers_.get(), 0)) {
    in_flight_ = false;
    std::map<int32_t, int64_t> failed;
    std::string why;
    if (rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      failed = asked_;
      why = rd_kafka_event_error_string(event);
    } else if (const rd_kafka_DeleteRecords_result_t* result =
                   rd_kafka_event_DeleteRecords_result(event)) {
      const rd_kafka_topic_partition_list_t* offsets =
          rd_kafka_DeleteRecords_result_offsets(result);
      for (int i = 0; offsets != nullptr && i < offsets->cnt; ++i) {
        const rd_kafka_topic_partition_t& p = offsets->elems[i];
        if (p.err == RD_KAFKA_RESP_ERR_NO_ERROR) {
          deleted_[p.partition] = std::max(deleted_[p.partition], p.offset);
        } else {
          failed[p.partition] = asked_[p.partition];
          why = rd_kafka_err2str(p.err);
        }
      }
    }
    rd_kafka_event_destroy(event);
    if (!failed.empty()) {
      spdlog::warn(
          "checkpoint: deleting the head of changelog topic {} failed ({}): {}; asked again "
          "after the next commit",
          topic_, why, Offsets(failed));
      // A newer target of the same task supersedes the failed one.
      for (const auto& [task, below] : failed) due_.try_emplace(task, below);
    }
    const auto now = std::chrono::steady_clock::now();
    if (failed.size() < asked_.size() && now - last_logged_ >= kLogInterval) {
      last_logged_ = now;
      spdlog::info(
          "checkpoint: changelog topic {}: records deleted up to {} (kept: what a "
          "restore needs)",
          topic_, Offsets(deleted_));
    }
    asked_.clear();
  }
}

}  // namespace ctrjoin
