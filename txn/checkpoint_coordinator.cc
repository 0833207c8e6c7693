#include "txn/checkpoint_coordinator.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "src/core/clock.h"
#include "src/core/crash_point.h"

namespace ctrjoin {

namespace {

using Clock = std::chrono::steady_clock;

// Flink's smallest checkpoint interval too: below it an epoch holds little
// more than its fsyncs and its commit's round trips.
constexpr int64_t kMinIntervalMs = 10;
constexpr int64_t kMaxIntervalMs = 3'600'000;
constexpr uint32_t kMaxRetain = 100;
// A commit whose outcome is unknown is retried (Commit is idempotent) this
// many times before the run fails.
constexpr int kCommitAttempts = 5;
constexpr std::chrono::seconds kProgressEvery{5};

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }
double MsSince(Clock::time_point t) { return Ms(Clock::now() - t); }

}  // namespace

Status CheckpointOptions::Validate() const {
  if (interval_ms < kMinIntervalMs || interval_ms > kMaxIntervalMs) {
    return Status::InvalidArgument(
        fmt::format("checkpoint.interval_ms: must be in [{}, {}], got {}", kMinIntervalMs,
                    kMaxIntervalMs, interval_ms));
  }
  if (retain < 1 || retain > kMaxRetain) {
    return Status::InvalidArgument(
        fmt::format("checkpoint.retain: must be in [1, {}], got {}", kMaxRetain, retain));
  }
  if (dir.empty()) return Status::InvalidArgument("checkpoint.dir: must not be empty");
  if (changelog_segment_mb < 1 || changelog_segment_mb > 1024) {
    return Status::InvalidArgument(fmt::format(
        "checkpoint.changelog_segment_mb: must be in [1, 1024], got {}", changelog_segment_mb));
  }
  return Status::Ok();
}

CheckpointCoordinator::CheckpointCoordinator(CheckpointOptions options, TransactionalSink* sink,
                                             CommitLog log, CheckpointMetrics* metrics,
                                             std::unique_ptr<CheckpointStore> store)
    : options_(std::move(options)),
      sink_(sink),
      log_(std::move(log)),
      metrics_(metrics),
      store_(std::move(store)) {}

Result<std::unique_ptr<CheckpointCoordinator>> CheckpointCoordinator::Open(
    CheckpointOptions options, TransactionalSink* sink, CommitLog log, CheckpointMetrics* metrics) {
  CTRJOIN_RETURN_IF_ERROR(options.Validate());
  auto store = CheckpointStore::Open(options.dir);
  if (!store.ok()) return store.status();
  return std::unique_ptr<CheckpointCoordinator>(new CheckpointCoordinator(
      std::move(options), sink, std::move(log), metrics, std::move(store).value()));
}

CheckpointCoordinator::~CheckpointCoordinator() {
  Status st = Close();
  if (!st.ok()) spdlog::error("checkpoint: {}", st.ToString());
}

Result<std::optional<CheckpointMeta>> CheckpointCoordinator::Recover(
    const RecoverOptions& options) {
  if (log_.state_in_output) return RecoverNumbering(options);
  Result<std::vector<uint64_t>> complete = store_->List();
  if (!complete.ok()) return complete.status();
  uint64_t committed = 0;
  if (log_.committed_epoch) {
    Result<uint64_t> c = log_.committed_epoch();
    if (!c.ok()) return c.status().WithContext("checkpoint: reading the committed epoch");
    committed = *c;
    // Complete checkpoints but no committed epoch: lost offsets, unless the
    // job never committed (stopped between its first checkpoint and its
    // first commit, or taken over then by an instance with a copy of them).
    const bool never_committed = committed == 0 && store_->NothingCommitted();
    if (committed == 0 && !complete->empty() && !never_committed) {
      Result<uint64_t> chosen = LostOffsets(*complete, options);
      if (!chosen.ok()) return chosen.status();
      committed = *chosen;
    } else if (options.reset_state || options.from_checkpoint != 0) {
      return Status::InvalidArgument(fmt::format(
          "--reset-state / --from-checkpoint: only for a job whose committed offsets are lost; "
          "{}, and the job goes on by itself",
          committed == 0 ? std::string("no epoch of it has committed yet")
                         : fmt::format("the output records epoch {} as committed", committed)));
    }
    if (never_committed && !complete->empty()) {
      spdlog::info(
          "checkpoint: discarding checkpoints up to epoch {}: no epoch of this job has committed "
          "yet",
          complete->back());
    }
    if (committed == 0) {
      CTRJOIN_RETURN_IF_ERROR(store_->RecordNothingCommitted());
    } else if (store_->NothingCommitted()) {
      CTRJOIN_RETURN_IF_ERROR(store_->ClearNothingCommitted());
    }
    nothing_committed_ = committed == 0;
  } else if (!complete->empty()) {
    committed = complete->back();
  }
  Result<EpochId> sink_epoch = sink_->Recover(EpochId{committed});
  if (!sink_epoch.ok()) return sink_epoch.status().WithContext(sink_->Describe());
  CTRJOIN_RETURN_IF_ERROR(store_->DiscardAbove(committed));
  // New epochs go above everything the output has seen, even if the
  // checkpoints were deleted: a file sink must never reuse an epoch's name.
  next_barrier_epoch_ = std::max(committed, sink_epoch->value) + 1;
  if (committed == 0) {
    spdlog::info("checkpoint: no committed epoch; starting afresh at epoch {}",
                 next_barrier_epoch_);
    return std::optional<CheckpointMeta>();
  }
  Result<CheckpointMeta> meta = store_->Load(committed);
  // Another format: the message says what to do.
  if (!meta.ok() && meta.status().code() == StatusCode::kInvalidArgument) return meta.status();
  if (!meta.ok()) {
    return Status::NotFound(fmt::format(
        "checkpoint: the output committed epoch {}, but {} has no checkpoint for it ({}); the "
        "state directory was lost or belongs to another job. To start over, use a new output "
        "(or transactional-id prefix and consumer group) and an empty checkpoint.dir",
        committed, store_->dir().string(), meta.status().message()));
  }
  metrics_->restores.Add();
  metrics_->last_committed_epoch.Set(static_cast<int64_t>(committed));
  spdlog::info("checkpoint: restoring epoch {} ({} partitions, watermark {})", committed,
               meta->positions.size(), meta->watermark.ms);
  return std::optional<CheckpointMeta>(std::move(meta).value());
}

Result<std::optional<CheckpointMeta>> CheckpointCoordinator::RecoverNumbering(
    const RecoverOptions& options) {
  if (options.reset_state || options.from_checkpoint != 0) {
    return Status::InvalidArgument(
        "--reset-state / --from-checkpoint: not in mode group, where each task's state and "
        "offsets are in Kafka (the changelog topic and the group's committed offsets)");
  }
  Result<uint64_t> committed = log_.committed_epoch();
  if (!committed.ok()) {
    return committed.status().WithContext("checkpoint: reading the committed epochs");
  }
  Result<EpochId> sink_epoch = sink_->Recover(EpochId{*committed});
  if (!sink_epoch.ok()) return sink_epoch.status().WithContext(sink_->Describe());
  // Local checkpoints only record this process's epochs; nothing restores
  // from them.
  CTRJOIN_RETURN_IF_ERROR(store_->DiscardAbove(0));
  next_barrier_epoch_ = std::max(*committed, sink_epoch->value) + 1;
  spdlog::info(
      "checkpoint: tasks restore from the changelog topic as they are assigned; this run's "
      "epochs start at {}",
      next_barrier_epoch_);
  return std::optional<CheckpointMeta>();
}

Status CheckpointCoordinator::Start() {
  if (next_barrier_epoch_ == 0) next_barrier_epoch_ = 1;  // Recover was not called
  open_ = EpochId{next_barrier_epoch_};
  CTRJOIN_RETURN_IF_ERROR(sink_->Begin(open_));
  next_due_ = Clock::now() + std::chrono::milliseconds(options_.interval_ms);
  committer_ = std::thread([this] { CommitLoop(); });
  return Status::Ok();
}

Result<std::shared_ptr<Barrier>> CheckpointCoordinator::NextBarrier(bool final) {
  if (final_sent_) return std::shared_ptr<Barrier>();
  const Clock::time_point now = Clock::now();
  if (!final && (now < next_due_ || barrier_in_flight_.load(std::memory_order_acquire))) {
    return std::shared_ptr<Barrier>();
  }
  return NewBarrier(final, now);
}

Result<std::shared_ptr<Barrier>> CheckpointCoordinator::BarrierNow() {
  if (final_sent_ || barrier_in_flight_.load(std::memory_order_acquire)) {
    return std::shared_ptr<Barrier>();
  }
  return NewBarrier(/*final=*/false, Clock::now());
}

std::shared_ptr<Barrier> CheckpointCoordinator::NewBarrier(bool final, Clock::time_point now) {
  auto barrier = std::make_shared<Barrier>();
  barrier->epoch = next_barrier_epoch_;
  barrier->final = final;
  barrier->injected = now;
  ++next_barrier_epoch_;
  next_due_ = now + std::chrono::milliseconds(options_.interval_ms);
  final_sent_ = final;
  barrier_in_flight_.store(true, std::memory_order_release);
  return barrier;
}

Status CheckpointCoordinator::OnBarrier(Barrier& barrier) {
  CrashPoint("barrier");
  const Clock::time_point at_sink = Clock::now();
  barrier_in_flight_.store(false, std::memory_order_release);
  CTRJOIN_RETURN_IF_ERROR(CommitError());
  const EpochId epoch{barrier.epoch};
  if (epoch != open_) {
    return Status::Internal(fmt::format("checkpoint: barrier of epoch {} while epoch {} is open",
                                        epoch.value, open_.value),
                            Effect::kNoEffect);
  }
  CrashPoint("precommit");
  if (barrier.final) sink_->EndOfOutput();
  CTRJOIN_RETURN_IF_ERROR(sink_->PreCommit(epoch));
  open_ = EpochId{};
  CrashPoint("after_precommit");
  barrier.meta.epoch = epoch.value;
  barrier.meta.changelog_generation = changelog_generation_;
  barrier.meta.shard_logs.clear();
  for (const ShardMark& m : barrier.marks) barrier.meta.shard_logs.push_back({m.segment, m.offset});
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(PendingCommit{epoch, barrier.meta, barrier.injected, at_sink, Clock::now(),
                                   barrier.final, std::move(barrier.batch_reads),
                                   std::move(barrier.marks)});
  }
  cv_.notify_all();
  if (barrier.final) return WaitForCommits(0);
  // The next epoch may need a resource (a transactional id) of an earlier
  // one: that one must have committed. With k in flight, k - 1 epochs (this
  // one included) may still wait; with one, every commit finishes first.
  CTRJOIN_RETURN_IF_ERROR(WaitForCommits(std::max<size_t>(1, sink_->MaxEpochsInFlight()) - 1));
  CTRJOIN_RETURN_IF_ERROR(sink_->Begin(EpochId{epoch.value + 1}));
  open_ = EpochId{epoch.value + 1};
  return Status::Ok();
}

Status CheckpointCoordinator::WritableEpoch() {
  if (failed_.load(std::memory_order_acquire)) return CommitError();
  if (open_.value == 0) {
    return Status::Internal("checkpoint: output after the final checkpoint", Effect::kNoEffect);
  }
  CrashPoint("write");
  return Status::Ok();
}

Status CheckpointCoordinator::Write(std::span<const Sample> samples) {
  CTRJOIN_RETURN_IF_ERROR(WritableEpoch());
  return sink_->Write(samples);
}

Status CheckpointCoordinator::Write(const DeadLetter& letter) {
  CTRJOIN_RETURN_IF_ERROR(WritableEpoch());
  return sink_->WriteDeadLetter(letter);
}

Status CheckpointCoordinator::WriteChangelog(const ChangelogChunk& chunk) {
  CTRJOIN_RETURN_IF_ERROR(WritableEpoch());
  return sink_->WriteChangelog(chunk);
}

Status CheckpointCoordinator::Flush() { return CommitError(); }

std::string CheckpointCoordinator::Describe() const {
  return fmt::format("{}, exactly once every {} ms", sink_->Describe(), options_.interval_ms);
}

Status CheckpointCoordinator::CommitError() {
  if (!failed_.load(std::memory_order_acquire)) return Status::Ok();
  std::lock_guard<std::mutex> lock(mu_);
  return commit_error_;
}

Result<bool> CheckpointCoordinator::WaitCommitted(uint64_t epoch, std::chrono::milliseconds wait) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, wait, [&] { return committed_epoch_ >= epoch || failed_.load(); });
  if (failed_.load()) return commit_error_;
  return committed_epoch_ >= epoch;
}

Status CheckpointCoordinator::WaitForCommits(size_t pending) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return queue_.size() <= pending || failed_.load(); });
  return commit_error_;
}

void CheckpointCoordinator::CommitLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return !queue_.empty() || stopping_; });
    if (queue_.empty()) return;  // stopping, nothing left
    // By reference (its per-batch read times can be long): only this thread
    // pops, and push_back elsewhere leaves references to elements valid.
    const PendingCommit& pending = queue_.front();
    const EpochId epoch = pending.epoch;
    const bool give_up = failed_.load();
    lock.unlock();
    Status st;
    if (give_up) {
      // An earlier epoch failed: later ones must not become visible.
      st = sink_->Abort(epoch);
      metrics_->aborted_epochs.Add();
      if (!st.ok()) spdlog::error("checkpoint: {}", st.ToString());
    } else {
      st = CommitOne(pending);
    }
    lock.lock();
    queue_.pop_front();  // `pending` dangles from here on
    if (st.ok() && !give_up) committed_epoch_ = epoch.value;
    if (!st.ok() && !give_up) {
      commit_error_ = st.WithContext(fmt::format("committing epoch {}", epoch.value));
      failed_.store(true);
      metrics_->aborted_epochs.Add();
    }
    cv_.notify_all();
  }
}

Status CheckpointCoordinator::CompleteCheckpoint(const PendingCommit& pending,
                                                 Clock::time_point& durable) {
  // The shards' markers first: the metadata promises the state up to them.
  for (const ShardMark& mark : pending.marks) {
    if (!mark.wait_durable) {
      return Status::Internal(
          fmt::format("checkpoint {}: a shard did not mark it", pending.epoch.value),
          Effect::kNoEffect);
    }
    CTRJOIN_RETURN_IF_ERROR(mark.wait_durable().WithContext("changelog"));
  }
  durable = Clock::now();
  CheckpointMeta meta = pending.meta;
  meta.created_ms = WallClockMs();
  CTRJOIN_RETURN_IF_ERROR(store_->Complete(meta));
  CrashPoint("checkpoint_complete");
  metrics_->completed.Add();
  metrics_->last_completed_ms.Set(meta.created_ms);
  metrics_->last_bytes.Set(static_cast<int64_t>(meta.state_bytes));
  metrics_->bytes_total.Add(meta.state_bytes);
  if (!pending.final) metrics_->duration.Record(MsSince(pending.injected));
  spdlog::debug("checkpoint: epoch {} complete {:.1f} ms after its barrier, {} changelog bytes",
                pending.epoch.value, MsSince(pending.injected), meta.state_bytes);
  return Status::Ok();
}

Status CheckpointCoordinator::CommitOne(const PendingCommit& pending) {
  const Clock::time_point taken = Clock::now();
  Clock::time_point durable = taken;
  if (Status st = CompleteCheckpoint(pending, durable); !st.ok()) {
    // Renamed but not synced: it may be complete after a restart, which then
    // publishes the epoch (files): it must stay staged, not be aborted.
    if (!store_->Exists(pending.epoch.value)) {
      Status aborted = sink_->Abort(pending.epoch);
      if (!aborted.ok()) spdlog::error("checkpoint: {}", aborted.ToString());
    }
    return st;
  }
  const Clock::time_point complete = Clock::now();
  if (log_.before_commit) {
    Status st = log_.before_commit(pending.epoch, pending.meta);
    if (!st.ok()) {
      // Never committed: abort it rather than leave it to the broker's timeout.
      Status aborted = sink_->Abort(pending.epoch);
      if (!aborted.ok()) spdlog::error("checkpoint: {}", aborted.ToString());
      return st;
    }
  }
  CrashPoint("commit");
  Status st;
  for (int attempt = 1; attempt <= kCommitAttempts; ++attempt) {
    st = sink_->Commit(pending.epoch);
    if (st.ok() || st.effect() != Effect::kEffectUnknown) break;
    spdlog::warn("checkpoint: commit of epoch {} unfinished (attempt {}): {}", pending.epoch.value,
                 attempt, st.ToString());
  }
  if (!st.ok()) return st;
  if (nothing_committed_) {
    CTRJOIN_RETURN_IF_ERROR(store_->ClearNothingCommitted());
    nothing_committed_ = false;
  }
  CrashPoint("after_commit");
  metrics_->committed.Add();
  const Clock::time_point now = Clock::now();
  const double lag_ms = Ms(now - pending.injected);
  const Clock::duration phases[CheckpointMetrics::kPhases] = {
      pending.at_sink - pending.injected,
      pending.pre_committed - pending.at_sink,
      taken - pending.pre_committed,
      durable - taken,
      complete - durable,
      now - complete};
  // The run's final epoch says nothing of the steady state: at a bounded
  // input's end it carries the negatives of every open window at once.
  if (!pending.final) {
    metrics_->commit_lag.Record(lag_ms);
    for (size_t p = 0; p < CheckpointMetrics::kPhases; ++p) metrics_->phase[p].Record(phases[p]);
  }
  for (Clock::time_point read : pending.batch_reads) metrics_->read_to_commit.Record(now - read);
  metrics_->last_committed_epoch.Set(static_cast<int64_t>(pending.epoch.value));
  spdlog::debug(
      "checkpoint: epoch {} committed {:.1f} ms after its barrier (align {:.1f}, pre_commit "
      "{:.1f}, queued {:.1f}, durable {:.1f}, metadata {:.1f}, commit {:.1f} ms)",
      pending.epoch.value, lag_ms, Ms(phases[0]), Ms(phases[1]), Ms(phases[2]), Ms(phases[3]),
      Ms(phases[4]), Ms(phases[5]));
  ++committed_since_progress_;
  if (now >= next_progress_) {
    spdlog::info(
        "checkpoint: epoch {} committed ({} epochs since the last line; checkpoint {} bytes, "
        "visible {:.0f} ms after its barrier)",
        pending.epoch.value, committed_since_progress_, pending.meta.state_bytes, lag_ms);
    committed_since_progress_ = 0;
    next_progress_ = now + kProgressEvery;
  }
  Result<uint64_t> oldest = store_->Retain(pending.epoch.value, options_.retain);
  if (!oldest.ok()) {
    spdlog::warn("checkpoint: {}", oldest.status().ToString());
  } else if (released_ && *oldest != 0) {
    Status released = released_(*oldest);
    if (!released.ok()) spdlog::warn("checkpoint: {}", released.ToString());
  }
  return Status::Ok();
}

Result<uint64_t> CheckpointCoordinator::LostOffsets(const std::vector<uint64_t>& complete,
                                                    const RecoverOptions& options) {
  if (options.reset_state) {
    spdlog::warn(
        "checkpoint: --reset-state: discarding {} checkpoints (newest epoch {}) and starting "
        "afresh from the configured start position",
        complete.size(), complete.back());
    CTRJOIN_RETURN_IF_ERROR(store_->DiscardAbove(0));
    return uint64_t{0};
  }
  if (options.from_checkpoint != 0) {
    if (std::find(complete.begin(), complete.end(), options.from_checkpoint) == complete.end()) {
      return Status::InvalidArgument(fmt::format(
          "--from-checkpoint: no complete checkpoint of epoch {} in {} (there are "
          "epochs {} .. {}; see ctrjoin checkpoints list)",
          options.from_checkpoint, store_->dir().string(), complete.front(), complete.back()));
    }
    spdlog::warn(
        "checkpoint: --from-checkpoint {}: taking that checkpoint as committed; samples of "
        "epochs the output committed after it are written again, those it never committed "
        "before it are not",
        options.from_checkpoint);
    return options.from_checkpoint;
  }
  return Status::InvalidArgument(fmt::format(
      "checkpoint: {} holds complete checkpoints up to epoch {}, but the output records no "
      "committed epoch: the consumer group's committed offsets are gone (expired offset "
      "retention, a group reset, or a changed group_id). Starting afresh would write samples "
      "again (start: earliest) or skip records (start: latest). Say what to do: --reset-state "
      "discards the checkpoints and starts afresh; --from-checkpoint=N goes on from complete "
      "checkpoint N (ctrjoin checkpoints list shows them)",
      store_->dir().string(), complete.back()));
}

Status CheckpointCoordinator::Close() {
  if (committer_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    committer_.join();
  }
  if (open_.value != 0) {
    Status st = sink_->Abort(open_);
    metrics_->aborted_epochs.Add();
    if (!st.ok()) spdlog::error("checkpoint: aborting epoch {}: {}", open_.value, st.ToString());
    open_ = EpochId{};
  }
  std::lock_guard<std::mutex> lock(mu_);
  return commit_error_;
}

}  // namespace ctrjoin
