#pragma once
// A benchmark's input held in memory: a synthetic workload (WorkloadGenerator)
// or recorded records (JSON-lines files, a Kafka range) in the order they
// were read, laid out over Kafka-style partitions, plus what the latency
// probe needs to tell, for a sample written by a sink, which input record
// made it.
//
// Layout (Placement): the n-th record of a stream goes to partition
// n % partitions at offset n / partitions, both in memory (MemorySource) and
// in the test broker (ProduceTrace into fresh topics), so a (stream,
// partition, offset) names the same record on every path.
//
// e2e_bench's parent process generates the trace and writes it to a file
// (Write); each configuration's child process reads it (Read), so that
// generating it shows in no child's peak RSS, and a child that reads from the
// broker keeps only the 17 bytes per record the probe needs. Not thread-safe:
// built by one thread, then only read (MemorySource moves payloads out).

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "src/core/event.h"
#include "src/core/status.h"
#include "src/io/workload.h"
#include "src/pipeline/event_parser.h"

namespace ctrjoin::bench {

struct TraceOptions {
  uint64_t min_events = 1'000'000;  // records generated before draining the generator
  int32_t partitions = 4;           // per stream (impressions, clicks)
  int64_t window_ms = 60'000;       // W, to tell which clicks can make a positive
  WorkloadOptions workload;         // seed and rates
};

// Hands out (partition, offset) to the records of a stream in order.
class Placement {
 public:
  explicit Placement(int32_t partitions) : partitions_(partitions) {}
  SourcePosition Next(StreamKind stream) {
    const uint64_t n = counts_[static_cast<size_t>(stream)]++;
    return SourcePosition{stream, static_cast<int32_t>(n % partitions_),
                          Offset{static_cast<int64_t>(n / partitions_)}};
  }

 private:
  const uint64_t partitions_;
  uint64_t counts_[2] = {0, 0};
};

// An impression that a valid click can turn positive: its own records and
// those of its in-window clicks (first copies and duplicates; kNone if absent).
struct ClickedImpression {
  uint64_t sample_id = 0;  // xxh3-64 of the impression id
  uint32_t impressions[2] = {kNone, kNone};
  uint32_t clicks[2] = {kNone, kNone};
  static constexpr uint32_t kNone = UINT32_MAX;
};

class Trace {
 public:
  friend class TraceBuilder;
  static constexpr int64_t kNoTs = INT64_MIN;  // a record the parser rejects

  static Trace Generate(const TraceOptions& options);
  // limit: read at most this many records (0 = all); payloads: keep them.
  static Result<Trace> Read(const std::string& path, uint64_t limit, bool payloads);
  Status Write(const std::string& path) const;

  size_t size() const { return ts_.size(); }
  StreamKind stream(size_t i) const { return stream_[i]; }
  int64_t ts(size_t i) const { return ts_[i]; }
  bool has_payloads() const { return payloads_.size() == ts_.size(); }
  // Only with payloads; empty once a MemorySource moved it out.
  std::string& payload(size_t i) { return payloads_[i]; }
  const std::string& payload(size_t i) const { return payloads_[i]; }

  int32_t partitions() const { return partitions_; }
  int64_t window_ms() const { return window_ms_; }
  // Distinct valid impression ids: the samples a run over the whole trace
  // makes, less the impressions it drops as late.
  uint64_t impressions() const { return impressions_; }
  // Impressions that an in-window click can turn positive.
  uint64_t clicked() const { return clicked_.size(); }
  // The sample id (xxh3-64) of every distinct valid impression, sorted.
  // Filled by TraceBuilder and Generate, not by Read.
  const std::vector<uint64_t>& impression_keys() const { return impression_keys_; }
  // The record at (stream, partition, offset), or ClickedImpression::kNone.
  uint32_t IndexOf(StreamKind stream, int32_t partition, int64_t offset) const;
  // The clicked impression with this sample id, or null.
  const ClickedImpression* FindClicked(uint64_t sample_id) const;

 private:
  void Index();  // fills by_stream_ from stream_

  int32_t partitions_ = 1;
  int64_t window_ms_ = 0;
  uint64_t impressions_ = 0;
  std::vector<StreamKind> stream_;
  std::vector<int64_t> ts_;
  std::vector<std::string> payloads_;
  std::vector<ClickedImpression> clicked_;  // sorted by sample_id
  std::vector<uint64_t> impression_keys_;   // sorted
  // n-th record of a stream -> index. (A std::array: clang-tidy 14 flags the
  // implicit move of a C array member as a reserved identifier, __i0.)
  std::array<std::vector<uint32_t>, 2> by_stream_;
};

// Builds a trace from records in the order they arrive: parses each with
// the job's schema (to know its ts and impression id), then indexes the
// clicked impressions. One thread.
class TraceBuilder {
 public:
  TraceBuilder(int32_t partitions, int64_t window_ms, const SchemaOptions& schema);
  void Add(StreamKind stream, std::string json);
  // The event time of a record, or INT64_MIN if the parser rejects it (Add
  // parses it again).
  int64_t EventTime(StreamKind stream, std::string_view json);
  size_t size() const { return trace_.size(); }
  uint64_t bytes() const { return bytes_; }
  Trace Finish();

 private:
  Trace trace_;
  EventParser parser_;
  const int64_t now_ms_;
  uint64_t bytes_ = 0;
  // Impression id -> its records; clicks with their ids, for Finish.
  std::unordered_map<std::string, std::vector<uint32_t>> impressions_;
  std::vector<std::pair<std::string, uint32_t>> clicks_;
};

// Records read from several source partitions, each kept in its own order,
// handed to a TraceBuilder interleaved by event time: at each step the
// partition whose next record is earliest (a record without a valid time
// goes at once). The memory source deals a stream's records round robin
// over its partitions, so fetch order (a long run of one Kafka partition,
// then another from the start of the range) would become disorder past the
// watermark's bound, and labels would depend on how the fetches fell.
// Used by the thread that loads the bench's input; owns the records until
// Into.
class PartitionMerge {
 public:
  void Add(StreamKind stream, int32_t partition, std::string json);
  uint64_t size() const { return size_; }
  uint64_t bytes() const { return bytes_; }
  // Moves every record into builder, merged; leaves this empty.
  void Into(TraceBuilder& builder);

 private:
  std::map<std::pair<StreamKind, int32_t>, std::deque<std::string>> partitions_;
  uint64_t size_ = 0;
  uint64_t bytes_ = 0;
};

// The samples a run wrote, held against the trace's impressions: the
// oracle that every impression becomes one sample.
struct SampleAccount {
  uint64_t impressions = 0;     // distinct valid impression ids in the trace
  uint64_t with_sample = 0;     // of them, with a sample written
  uint64_t without_sample = 0;  // of them, with none
  uint64_t written_twice = 0;   // further samples of an id already written (corrections apart)
  uint64_t unknown = 0;         // samples of no impression in the trace
};
// written: the sample ids written, corrections apart (LatencyProbe::written_ids).
SampleAccount AccountSamples(const Trace& trace, std::vector<uint64_t> written);

// Produces the trace into the impressions and clicks topics of the broker at
// `brokers` (each record to its own partition, so offsets match the layout)
// and waits until everything is delivered. Topics are created by the broker
// on first use, with its default partition count (which must be
// trace.partitions()).
Status ProduceTrace(const Trace& trace, const std::string& brokers);

}  // namespace ctrjoin::bench
