#pragma once
// Changelog: one shard's keyed state as an append-only log (src/README.md,
// "State and checkpoints").
//
// Every change to the shard's in-memory state is appended as it happens: a
// put carries the key, the already-encoded entry and its horizon (the latest
// event time at which this record or the one it replaced can still matter).
// A barrier appends a marker (epoch, the shard's watermark) and returns at
// once; a background I/O thread writes the bytes to segment files in order
// and fdatasyncs at every marker. Restoring epoch E replays the log up to
// E's marker: the last put of each key wins, and an entry whose deadline the
// marker's watermark has passed was expired by then. Only the end of the
// last segment may be torn (a kill during a write); damage elsewhere is
// Corruption.
//
//   <dir>/<segment, 12 digits>.log     records: u32 length, u32 crc32c,
//                                      u8 type, body (little endian)
//     put    'p': u64 key, i64 horizon, encoded entry
//     marker 'm': u64 epoch, i64 watermark
//
// Segments end at markers. A closed segment is deleted (Release) once no
// retained checkpoint needs it: its last marker is older than the oldest
// retained epoch and that epoch's watermark has passed every horizon in it.
// No compaction: the log's size is bounded by what is pending.
//
// In mode group (src/README.md, "Scaling out") a task's changelog is not
// written to files: OpenOutbox makes a writer whose chunks (the same framed
// records, at most kOutboxChunkBytes each, one ending at every marker) wait
// in an outbox that the owner empties with TakeOutbox and produces to the
// task's changelog partition in the epoch's transaction. Such a writer has
// no I/O thread; its markers are durable when the epoch commits.
//
// Threads: Put, Mark and TakeOutbox from the owning shard's thread only;
// WaitDurable and Release from any thread (the checkpoint committer); the
// internal I/O thread writes. Owns the I/O thread, the open segment's
// descriptor and the files under dir.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "src/core/status.h"

namespace ctrjoin {

struct ChangelogOptions {
  std::string dir;                          // created (with parents); must hold no segments
  uint64_t segment_bytes = 16ull << 20;     // a segment is closed at the first marker past this
  uint64_t max_queued_bytes = 64ull << 20;  // Put waits while the I/O thread is this far behind
};

// Where a marker was written: its segment and the offset just past it.
struct ChangelogPosition {
  uint64_t segment = 0;
  uint64_t offset = 0;
};

// An outbox chunk's most bytes (a Kafka record stays under the usual 1 MB
// message.max.bytes), unless one record alone is larger.
inline constexpr size_t kOutboxChunkBytes = 512 << 10;

class ChangelogWriter {
 public:
  static Result<std::unique_ptr<ChangelogWriter>> Open(ChangelogOptions options);
  // A writer without files: chunks go to the outbox (TakeOutbox).
  static std::unique_ptr<ChangelogWriter> OpenOutbox();
  ~ChangelogWriter();  // writes out what is queued, then stops the I/O thread

  // Appends a put whose entry is head followed by tail (so that a caller
  // need not join them first). Shard thread.
  void Put(uint64_t key, int64_t horizon, std::string_view head, std::string_view tail = {});
  // Appends epoch's marker and hands everything before it to the I/O thread.
  // O(1) for the caller; fails only if the I/O thread already failed.
  Result<ChangelogPosition> Mark(uint64_t epoch, int64_t watermark);
  // Blocks until epoch's marker (and all before it) is on disk.
  Status WaitDurable(uint64_t epoch);
  // No checkpoint older than `epoch` will be restored: deletes the closed
  // segments only older ones needed.
  Status Release(uint64_t epoch);

  uint64_t bytes_appended() const { return appended_; }  // shard thread

  // A piece of an outbox writer's log: whole records.
  struct OutboxChunk {
    std::string bytes;
    int64_t max_horizon = std::numeric_limits<int64_t>::min();  // of its puts; min if none
    std::optional<int64_t> watermark;                           // its marker's, if it ends at one
  };
  // An outbox writer's chunks since the last call, in order. Shard thread.
  std::vector<OutboxChunk> TakeOutbox() { return std::exchange(outbox_, {}); }

 private:
  struct Chunk {
    std::string bytes;
    uint64_t sync_epoch = 0;  // fdatasync after writing, then durable up to it
    bool roll = false;        // then close the segment and open the next
  };
  struct Closed {
    uint64_t segment = 0;
    uint64_t last_epoch = 0;  // the marker that closed it
    int64_t max_horizon = 0;
  };
  struct Marker {
    uint64_t epoch = 0;
    int64_t watermark = 0;
  };

  explicit ChangelogWriter(ChangelogOptions options, bool outbox = false)
      : options_(std::move(options)), outbox_mode_(outbox) {}
  size_t BeginRecord(char type);  // appends the header's space and the type
  void EndRecord(size_t at);      // fills in the header of the record at `at`
  std::string TakeBuffer();       // the buffer, for the I/O thread; a fresh one stays
  void HandOff(Chunk chunk);
  void IoLoop();
  Status WriteChunk(const Chunk& chunk);
  Status OpenSegment(uint64_t segment);
  std::string SegmentPath(uint64_t segment) const;

  const ChangelogOptions options_;

  // Shard thread.
  std::string buffer_;
  uint64_t segment_ = 0;       // the segment buffer_ goes to
  uint64_t segment_size_ = 0;  // its bytes, buffer_ included
  int64_t segment_horizon_ = INT64_MIN;
  uint64_t appended_ = 0;
  const bool outbox_mode_ = false;
  std::vector<OutboxChunk> outbox_;
  int64_t outbox_horizon_ = std::numeric_limits<int64_t>::min();  // of buffer_'s puts

  // Shared with the I/O thread and Release.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Chunk> queue_;
  uint64_t queued_bytes_ = 0;
  uint64_t durable_epoch_ = 0;
  Status error_;
  bool stopping_ = false;
  std::deque<Closed> closed_;   // oldest first
  std::deque<Marker> markers_;  // since the oldest kept segment

  // I/O thread.
  int fd_ = -1;
  uint64_t writing_ = 0;  // the open segment
  std::thread io_;
};

// One record of a changelog, as ReadChangelog hands it over.
// Where a put's entry is in its log, to read it again (ReadChangelogEntries).
struct ChangelogLocation {
  uint64_t segment = 0;
  uint64_t offset = 0;  // of the entry's first byte in the segment file
  uint32_t size = 0;
};

struct ChangelogRecord {
  char type = 0;  // 'p' or 'm'
  uint64_t key_or_epoch = 0;
  int64_t horizon_or_watermark = 0;
  std::string_view entry;  // puts only; valid during the callback
  ChangelogLocation at;    // puts only
};

// ReadChangelog's epoch for "every record, to the end of the log".
inline constexpr uint64_t kChangelogEnd = UINT64_MAX;

// Replays dir's segments in order up to and including epoch's marker, one
// segment in memory at a time (kChangelogEnd: to the end, which must then be
// whole). NotFound if the log ends before that marker;
// Corruption if a record is torn or damaged anywhere but at the end of the
// last segment (a kill tears only what follows the last durable marker).
Status ReadChangelog(const std::string& dir, uint64_t epoch,
                     const std::function<Status(const ChangelogRecord&)>& on_record);

// Reads the entries at `locations` (sorted by segment, then offset), one
// segment in memory at a time, and hands each to on_entry with its index.
Status ReadChangelogEntries(
    const std::string& dir, const std::vector<ChangelogLocation>& locations,
    const std::function<Status(size_t index, std::string_view entry)>& on_entry);

// The bytes of every segment under dir (0 if it does not exist).
uint64_t ChangelogDiskBytes(const std::string& dir);

// The changelogs of a job's shards, one generation per run:
//   <root>/gen-<g>/shard-<i>/
// A run writes a new generation; one that restores reads the previous one
// (ReadDir) and Puts what it restores into the new one, so the shard count
// may change and a log is never appended to by two runs. The restored
// generation is deleted once no kept checkpoint needs it.
//
// Opened and read from the thread that starts the run; shard(i) belongs to
// shard i's thread from then on; Release from the checkpoint committer.
// Owns the writers.
class ShardChangelogs {
 public:
  // Removes every generation that no complete checkpoint names (`kept`:
  // each complete checkpoint's epoch and generation; a fresh start has
  // none), then opens a generation above all of them for `shards` shards
  // (restored: the generation of the checkpoint restored, 0 for none).
  static Result<std::unique_ptr<ShardChangelogs>> Open(const std::string& root, uint32_t shards,
                                                       uint64_t restored,
                                                       const std::map<uint64_t, uint64_t>& kept,
                                                       const ChangelogOptions& options);

  uint64_t generation() const { return generation_; }
  ChangelogWriter* shard(uint32_t i) { return writers_[i].get(); }
  // The log shard `shard` of generation `generation` wrote.
  std::string ReadDir(uint64_t generation, uint32_t shard) const;
  // After a commit: oldest_kept is the oldest checkpoint that may still be
  // restored. A generation goes once no kept checkpoint names it. Tries
  // every shard; returns the first error.
  Status Release(uint64_t oldest_kept);
  // The current generation's segments on disk (a directory scan).
  uint64_t disk_bytes() const;

 private:
  ShardChangelogs() = default;

  std::string root_;
  uint64_t generation_ = 0;
  // Checkpoints of earlier runs still kept: epoch -> the generation it names.
  std::map<uint64_t, uint64_t> kept_;
  std::vector<std::unique_ptr<ChangelogWriter>> writers_;
};

}  // namespace ctrjoin
