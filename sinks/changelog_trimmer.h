#pragma once
// ChangelogTrimmer: deletes the head of each task's partition of the
// changelog topic once no restore needs it (DeleteRecords), so that a
// restore reads about one attribution window of history rather than the
// job's whole life (txn/README.md, "Several processes on one job").
//
// The rule (ChangelogTrimPlan, no I/O): a restore loads, for every key, its
// last put, and only if its deadline is not below the watermark of the
// partition's last marker (ReplayJoinChangelog). Watermarks only rise, so a
// head of records all of whose puts have deadlines below the watermark of a
// committed marker changes nothing a restore loads, now or later. The head
// ends before the task's last committed marker, which a restore reads its
// watermark from.

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "src/core/status.h"
#include "src/io/kafka_client.h"

namespace ctrjoin {

// Which head of each task's changelog partition may go. Called under its
// owner's lock (ChangelogTrimmer); owns the bookkeeping of the records kept.
class ChangelogTrimPlan {
 public:
  // One record (chunk) of a task's partition.
  struct Record {
    int64_t offset = -1;                                        // -1: its delivery was not reported
    int64_t max_horizon = std::numeric_limits<int64_t>::min();  // latest deadline of its puts
    std::optional<int64_t> watermark;                           // its marker's, if it ends at one
  };

  // A restore read task's partition below end_offset and loaded entries
  // whose deadlines are at most max_horizon. Replaces what was known of the
  // task (it may have been elsewhere since).
  void Restored(int32_t task, int64_t end_offset, int64_t max_horizon);
  // task's records in a committed epoch, in offset order. Returns the offset
  // below which every record of the task may be deleted, if it moved up.
  std::optional<int64_t> Committed(int32_t task, std::span<const Record> records);

 private:
  struct Task {
    std::deque<Record> kept;                                  // oldest first
    int64_t watermark = std::numeric_limits<int64_t>::min();  // of the last committed marker
    int64_t trimmed = 0;  // the offset a deletion was last asked below
  };
  std::map<int32_t, Task> tasks_;
};

// Applies ChangelogTrimPlan to one changelog topic with an admin client of
// its own. Committed is called by the transactional sink's committer thread
// after each commit, Restored by the shard threads that restore tasks; a
// mutex guards everything. It never waits for the brokers: a request's
// answer is read at a later commit, and a failed deletion is logged and
// asked again then. Owns the client handle and the queue answers come on.
class ChangelogTrimmer {
 public:
  // properties: librdkafka settings for the client (security, ...).
  static Result<std::unique_ptr<ChangelogTrimmer>> Open(
      const std::string& brokers, const std::map<std::string, std::string>& properties,
      std::string topic);
  ~ChangelogTrimmer();
  ChangelogTrimmer(const ChangelogTrimmer&) = delete;
  ChangelogTrimmer& operator=(const ChangelogTrimmer&) = delete;

  void Restored(int32_t task, int64_t end_offset, int64_t max_horizon);
  // An epoch committed with these changelog records (task, record), in the
  // order they were produced.
  void Committed(std::span<const std::pair<int32_t, ChangelogTrimPlan::Record>> records);
  // Per task, the offset below which the brokers confirmed deletion (and
  // asks for what is due).
  std::map<int32_t, int64_t> Deleted();

 private:
  ChangelogTrimmer(std::string topic, KafkaHandle admin);
  // Reads the answers that came, then asks for what is due if no request
  // is in flight. Needs mu_.
  void Pump();
  void ReadAnswers();  // needs mu_
  void Ask();          // needs mu_

  const std::string topic_;
  std::mutex mu_;
  ChangelogTrimPlan plan_;
  std::map<int32_t, int64_t> due_;      // to ask below, once no request is in flight
  std::map<int32_t, int64_t> asked_;    // the request in flight
  std::map<int32_t, int64_t> deleted_;  // confirmed
  bool in_flight_ = false;
  std::chrono::steady_clock::time_point last_logged_{};
  KafkaHandle admin_;
  KafkaQueue answers_;  // destroyed before admin_
};

}  // namespace ctrjoin
