#pragma once
// KafkaTransactionalSink: samples to a Kafka topic under two-phase commit,
// one Kafka transaction per epoch (librdkafka's transactional producer).
//
//   Begin(N)      begin a transaction on producer N % pool_size
//   Write         produce, key = impression id (murmur2 partitioning)
//   WriteDeadLetter  produce to dead_letter_topic (no key), same transaction
//   WriteChangelog   produce a task's changelog chunk to partition `task` of
//                 changelog_topic (mode group), same transaction
//   PreCommit(N)  flush: every message of N delivered, still invisible
//   SendOffsets   add the input offsets of N to the same transaction
//   Commit(N)     commit the transaction: output and offsets become visible
//   Abort(N)      abort it: read_committed consumers never see N
//
// Transactional ids: a fixed pool "<prefix>-0" .. "<prefix>-<pool_size-1>",
// epoch N on "<prefix>-<N % pool_size>", never a new id per epoch. A producer
// has at most one open transaction, so with two ids epoch N+1 is written while
// N waits to commit. A fixed pool is also what lets Open abort this job's
// lingering transactions: init_transactions on each id fences the previous
// instance's producer and aborts its open transaction. Ids outside the pool
// (after pool_size shrank) are left to the broker's transaction timeout.
//
// Epochs commit strictly in order (Commit refuses an epoch while an earlier
// one is pending): the input offsets sent with N+1 cover N's input too, so
// committing N+1 first would mark N's input consumed even if N then failed.
//
// Unlike files, a pre-committed transaction does not survive this process:
// librdkafka cannot resume another producer's transaction, so after a crash
// Open aborts it, and the input offsets committed with the last committed
// transaction say which state snapshot to restore (txn/README.md, "Recovery"). Recover has
// nothing to roll forward.
//
// Errors: a fatal producer error (fenced by a newer instance, or a
// transaction the broker timed out) is Effect::kFenced: this producer can
// never be used again and the only way on is to stop; a restart re-inits the
// ids. A commit that failed and was aborted is kNoEffect; a commit or abort
// still unfinished at operation_timeout_ms is kEffectUnknown, and calling it
// again resumes it. A transaction that lost messages leaves its producer
// spent once aborted: the next Begin on it fails (kNoEffect) and the run
// ends, because only init_transactions could make it usable again and that
// would fence a newer instance holding the id (see AbortOn). Nothing in a
// running process ever initializes an id a second time.
//
// Threads: two at once, each on the epochs it owns. The pipeline's sink
// thread calls Begin, Write and PreCommit, and Abort of the open epoch; the
// checkpoint coordinator's committer thread calls SendOffsets, Commit and
// Abort of a pre-committed epoch, concurrently with the sink thread working
// on the next epoch. So a producer has one user at a time: the sink thread
// from Begin(N) until PreCommit(N) returns, then the committer until
// Commit(N) or Abort(N) releases it; the caller guarantees that Begin(M)
// comes only after the epoch before it on producer M % pool_size was
// committed or aborted. mu_ guards the bookkeeping (open_, last_begun_,
// last_committed_, each producer's epoch and pre-committed flag) and is never
// held across a librdkafka call that can block (produce, flush,
// send-offsets, commit, abort, setting up a replacement producer), so a slow
// commit of N never stalls Write of N+1. Recover runs before either thread
// starts.
//
// Owns pool_size producer handles; their delivery reports run inside the
// poll, flush, commit and abort calls made by these methods, on the calling
// thread, which is the producer's current user.

#include <librdkafka/rdkafka.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "sinks/changelog_trimmer.h"
#include "sinks/kafka_sink.h"
#include "sinks/sample_format.h"
#include "txn/two_phase_commit.h"

namespace ctrjoin {

struct KafkaTransactionalSinkOptions {
  std::string brokers;  // required
  std::string topic;    // required
  // Where dead letters go, in the epoch's transaction; empty (default): this
  // sink takes no dead letters.
  std::string dead_letter_topic;
  // Mode group (set by the app, not a config key): where the tasks'
  // changelog chunks go, partition = task, in the epoch's transaction.
  std::string changelog_topic;
  // Mode group (borrowed, may be null): told of each committed epoch's
  // changelog records, deletes what no restore needs any more.
  ChangelogTrimmer* changelog_trimmer = nullptr;
  std::string transactional_id_prefix;  // required; unique per job and mode (run, replay)
  int pool_size = 2;                    // transactional ids in the pool, 1..16
  // Ids <prefix>-<pool_size> .. <prefix>-<fence_pool_size - 1> are fenced at
  // Open too (initialized, then closed): the job used them before its pool
  // shrank, and a zombie on one of them must not commit. 0: none beyond.
  int fence_pool_size = 0;
  // Must be >= 3 × commit_interval_ms + 10 s (an epoch's transaction stays
  // open while the next epoch runs and while it commits) and <= 900000 (the
  // brokers' default transaction.max.timeout.ms).
  int transaction_timeout_ms = 60'000;
  int commit_interval_ms = 1'000;     // the job's epoch length; only validated against
  int operation_timeout_ms = 30'000;  // bound for init, flush, send-offsets, commit, abort
  // Extra librdkafka settings; not transactional.id, transaction.timeout.ms or
  // enable.idempotence, which the sink sets.
  std::map<std::string, std::string> properties;
  SampleFormat format = SampleFormat::kJson;
  std::string schema_id;               // sent with every sample (SampleHeaders); empty: not sent
  ProducerMetrics* metrics = nullptr;  // where the producers count errors; null: nowhere

  Status Validate() const;  // "sink.kafka.<field>: ..."
};

class KafkaTransactionalSink : public TransactionalSink {
 public:
  // Creates the producers and initializes transactions on every id of the
  // pool (and the ids up to fence_pool_size), which fences and aborts what a
  // previous instance left open.
  static Result<std::unique_ptr<KafkaTransactionalSink>> Open(
      const KafkaTransactionalSinkOptions& options);
  ~KafkaTransactionalSink() override;

  Status Begin(EpochId epoch) override;
  Status Write(std::span<const Sample> samples) override;
  Status WriteDeadLetter(const DeadLetter& letter) override;
  Status WriteChangelog(const ChangelogChunk& chunk) override;
  Status PreCommit(EpochId epoch) override;
  Status Commit(EpochId epoch) override;
  Status Abort(EpochId epoch) override;
  Result<EpochId> Recover(EpochId last_checkpoint) override;
  std::string Describe() const override;
  size_t MaxEpochsInFlight() const override { return producers_.size(); }

  // Adds consumed input offsets (next offset to read, per partition) of
  // `group` to epoch's transaction (open or pre-committed), so they commit
  // or abort with its output. Called by the thread that owns the epoch: the
  // committer for a pre-committed one.
  Status SendOffsets(EpochId epoch, const rd_kafka_topic_partition_list_t* offsets,
                     const rd_kafka_consumer_group_metadata_t* group);

 private:
  class TxnProducer;  // one transactional id, in the .cc

  explicit KafkaTransactionalSink(KafkaTransactionalSinkOptions options);
  // The producer whose transaction belongs to epoch, or nullptr. Needs mu_.
  TxnProducer* Holding(EpochId epoch) const;
  // The open epoch and its producer, or an error outside an open epoch.
  Result<std::pair<EpochId, TxnProducer*>> OpenProducer();
  // Aborts producer's transaction, which belongs to epoch, replaces the
  // producer if the transaction lost messages, and releases it.
  Status AbortOn(TxnProducer& producer, EpochId epoch);

  const KafkaTransactionalSinkOptions options_;
  // [i] is "<prefix>-i"; the vector is fixed after Open, each producer's
  // bookkeeping is guarded by mu_.
  std::vector<std::unique_ptr<TxnProducer>> producers_;
  std::mutex mu_;  // guards open_, last_begun_, last_committed_ and each producer's epoch
  EpochId open_;   // 0 when no epoch is open
  EpochId last_begun_;
  EpochId last_committed_;
  std::string buffer_;            // reused encoding buffer; sink thread only (Write)
  const MessageHeaders headers_;  // every sample's (SampleHeaders)
};

}  // namespace ctrjoin
