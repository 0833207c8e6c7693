// The checkpoint coordinator's commit failure paths, against an in-memory
// participant: an epoch whose checkpoint completed is a promise, so a failed
// commit of an earlier epoch must leave it staged for the restart to publish
// (roll forward), never abort it.
#include "txn/checkpoint_coordinator.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "tests/support/temp_dir.h"

namespace ctrjoin {
namespace {

using std::chrono::milliseconds;

// Staged epochs survive a "restart" (the object outlives the coordinator), as
// a file sink's staged files do. Commit of `fail_epoch` fails after `delay`.
class StagingSink : public TransactionalSink {
 public:
  Status Begin(EpochId epoch) override {
    std::lock_guard lock(mu_);
    journal_.push_back("begin " + std::to_string(epoch.value));
    staged_[epoch.value];
    return Status::Ok();
  }
  Status Write(std::span<const Sample> samples) override {
    std::lock_guard lock(mu_);
    staged_.rbegin()->second += samples.size();
    return Status::Ok();
  }
  Status PreCommit(EpochId) override { return Status::Ok(); }
  Status Commit(EpochId epoch) override {
    if (epoch.value == fail_epoch) {
      std::this_thread::sleep_for(delay);
      return Status::IoError("rename: No space left on device", Effect::kNoEffect);
    }
    std::this_thread::sleep_for(commit_time);
    std::lock_guard lock(mu_);
    journal_.push_back("commit " + std::to_string(epoch.value));
    Publish(epoch.value);
    return Status::Ok();
  }
  Status Abort(EpochId epoch) override {
    std::lock_guard lock(mu_);
    staged_.erase(epoch.value);
    return Status::Ok();
  }
  Result<EpochId> Recover(EpochId last_checkpoint) override {
    std::lock_guard lock(mu_);
    while (!staged_.empty()) {
      const uint64_t e = staged_.begin()->first;
      if (e <= last_checkpoint.value) {
        Publish(e);
      } else {
        staged_.erase(e);
      }
    }
    return published_.empty() ? EpochId{} : EpochId{published_.rbegin()->first};
  }
  std::string Describe() const override { return "staging sink"; }
  size_t MaxEpochsInFlight() const override { return in_flight; }

  std::vector<std::string> journal() const {
    std::lock_guard lock(mu_);
    return journal_;
  }

  std::map<uint64_t, size_t> published() const {
    std::lock_guard lock(mu_);
    return published_;
  }

  uint64_t fail_epoch = 0;
  milliseconds delay{0};
  milliseconds commit_time{0};
  size_t in_flight = 2;

 private:
  void Publish(uint64_t e) {
    auto it = staged_.find(e);
    if (it == staged_.end()) return;
    published_[e] = it->second;
    staged_.erase(it);
  }

  mutable std::mutex mu_;  // the committer and the test thread both call
  std::map<uint64_t, size_t> staged_;
  std::map<uint64_t, size_t> published_;
  std::vector<std::string> journal_;
};

class CheckpointCoordinatorTest : public ::testing::Test {
 protected:
  // log: where the output records its committed epoch; default: nowhere
  // (a complete checkpoint counts as committed, as for files).
  std::unique_ptr<CheckpointCoordinator> Open(CommitLog log = {}) {
    CheckpointOptions o;
    o.enabled = true;
    o.interval_ms = 50;
    o.dir = (dir_.path() / "checkpoints").string();
    auto c = CheckpointCoordinator::Open(o, &sink_, std::move(log), &metrics_);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return std::move(c).value();
  }

  // Waits out the interval and passes the next barrier through.
  static Status Barrier(CheckpointCoordinator& c) {
    std::this_thread::sleep_for(milliseconds(60));
    Result<std::shared_ptr<ctrjoin::Barrier>> b = c.NextBarrier(false);
    if (!b.ok()) return b.status();
    EXPECT_NE(*b, nullptr);
    return c.OnBarrier(**b);
  }

  static std::vector<Sample> Samples(size_t n) { return std::vector<Sample>(n); }

  test_support::TempDir dir_;
  StagingSink sink_;
  CheckpointMetrics metrics_;
};

TEST_F(CheckpointCoordinatorTest, AFailedCommitLeavesLaterCompleteCheckpointsToRollForward) {
  sink_.fail_epoch = 1;
  sink_.delay = milliseconds(300);  // slower than an epoch: checkpoint 2 completes first
  {
    auto c = Open();
    ASSERT_TRUE(c->Recover().ok());
    ASSERT_TRUE(c->Start().ok());
    ASSERT_TRUE(c->Write(Samples(3)).ok());
    ASSERT_TRUE(Barrier(*c).ok());  // epoch 1 to the committer, which will fail it
    ASSERT_TRUE(c->Write(Samples(5)).ok());
    const Status second = Barrier(*c);  // checkpoint 2 completes, then 1's commit fails
    EXPECT_FALSE(second.ok());
    EXPECT_NE(second.message().find("No space left on device"), std::string::npos)
        << second.ToString();
    EXPECT_FALSE(c->Close().ok());
  }
  EXPECT_TRUE(sink_.published().empty());

  // The restart: checkpoint 2 is the newest complete one, so 1 and 2 are
  // published, and nothing that checkpoint promised is lost.
  sink_.fail_epoch = 0;
  auto c = Open();
  Result<std::optional<CheckpointMeta>> resume = c->Recover();
  ASSERT_TRUE(resume.ok()) << resume.status().ToString();
  ASSERT_TRUE(resume->has_value());
  EXPECT_EQ((*resume)->epoch, 2u);
  EXPECT_EQ(sink_.published(), (std::map<uint64_t, size_t>{{1, 3}, {2, 5}}));
  EXPECT_TRUE(c->Close().ok());
}

// One epoch in flight (a pool of one transactional id): the next epoch
// begins only after the previous one committed, and the run goes on.
TEST_F(CheckpointCoordinatorTest, OneEpochInFlightCommitsBeforeTheNextBegins) {
  sink_.in_flight = 1;
  sink_.commit_time = milliseconds(100);  // longer than an epoch
  auto c = Open();
  ASSERT_TRUE(c->Recover().ok());
  ASSERT_TRUE(c->Start().ok());
  for (int e = 0; e < 3; ++e) {
    ASSERT_TRUE(c->Write(Samples(1)).ok());
    ASSERT_TRUE(Barrier(*c).ok());
  }
  Result<std::shared_ptr<ctrjoin::Barrier>> last = c->NextBarrier(true);
  ASSERT_TRUE(last.ok());
  ASSERT_TRUE(c->OnBarrier(**last).ok());
  ASSERT_TRUE(c->Close().ok());
  EXPECT_EQ(sink_.journal(),
            (std::vector<std::string>{"begin 1", "commit 1", "begin 2", "commit 2", "begin 3",
                                      "commit 3", "begin 4", "commit 4"}));
}

// The output (Kafka's group offsets) records no committed epoch while the
// job has checkpoints: refused until the operator says what to do.
TEST_F(CheckpointCoordinatorTest, LostOffsetsAreRefusedUntilTheOperatorSaysWhatToDo) {
  uint64_t recorded = 0;  // what the output records as committed
  CommitLog log;
  log.committed_epoch = [&]() -> Result<uint64_t> { return recorded; };
  {
    auto c = Open(log);
    ASSERT_TRUE(c->Recover().ok());
    ASSERT_TRUE(c->Start().ok());
    for (int e = 0; e < 3; ++e) {
      ASSERT_TRUE(c->Write(Samples(1)).ok());
      ASSERT_TRUE(Barrier(*c).ok());
    }
    ASSERT_TRUE(c->Close().ok());
  }
  // Checkpoints 1..3 exist now, and the output records nothing.
  Result<std::optional<CheckpointMeta>> refused = Open(log)->Recover();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  const std::string& msg = refused.status().message();
  EXPECT_NE(msg.find("complete checkpoints up to epoch 3, but the output records no committed "
                     "epoch"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("--reset-state"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--from-checkpoint=N"), std::string::npos) << msg;

  RecoverOptions from;
  from.from_checkpoint = 7;
  EXPECT_NE(Open(log)->Recover(from).status().message().find("no complete checkpoint of epoch 7"),
            std::string::npos);
  from.from_checkpoint = 2;
  Result<std::optional<CheckpointMeta>> resumed = Open(log)->Recover(from);
  ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
  ASSERT_TRUE(resumed->has_value());
  EXPECT_EQ((*resumed)->epoch, 2u);

  RecoverOptions reset;
  reset.reset_state = true;
  Result<std::optional<CheckpointMeta>> afresh = Open(log)->Recover(reset);
  ASSERT_TRUE(afresh.ok()) << afresh.status().ToString();
  EXPECT_FALSE(afresh->has_value());
  EXPECT_TRUE(Open(log)->Recover().ok()) << "no checkpoints left: a fresh job";

  // With a committed epoch recorded, the overrides are refused: the job
  // resumes by itself.
  recorded = 1;
  EXPECT_FALSE(Open(log)->Recover(reset).ok());
}

// A job stopped between its first checkpoint and its first commit (killed,
// or taken over then by an instance with a copy of its checkpoints) has
// complete checkpoints and no committed epoch in its output, but lost
// nothing: it starts afresh. Once an epoch has committed, the same picture
// is lost offsets again.
TEST_F(CheckpointCoordinatorTest, AJobStoppedBeforeItsFirstCommitStartsAfresh) {
  CommitLog log;
  log.committed_epoch = []() -> Result<uint64_t> { return uint64_t{0}; };
  auto run_one_epoch = [&] {
    auto c = Open(log);
    Result<std::optional<CheckpointMeta>> resume = c->Recover();
    EXPECT_TRUE(resume.ok()) << resume.status().ToString();
    EXPECT_TRUE(resume.ok() && !resume->has_value());
    EXPECT_TRUE(c->Start().ok());
    EXPECT_TRUE(c->Write(Samples(1)).ok());
    // A failed commit shows at the barrier or at Close, whichever comes
    // after the commit thread ran.
    Status barrier = Barrier(*c);
    Status closed = c->Close();
    return barrier.ok() ? closed : barrier;
  };
  sink_.fail_epoch = 1;
  EXPECT_FALSE(run_one_epoch().ok()) << "epoch 1's checkpoint completed, its commit failed";
  ASSERT_TRUE(std::filesystem::exists(dir_.path() / "checkpoints/chk-00000000000000000001"));

  sink_.fail_epoch = 0;
  EXPECT_TRUE(run_one_epoch().ok()) << "no epoch committed: not lost offsets";

  Result<std::optional<CheckpointMeta>> refused = Open(log)->Recover();
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument) << "epoch 1 committed";
}

TEST_F(CheckpointCoordinatorTest, SaysWhatItCommitsWithoutPollingMetrics) {
  std::ostringstream log;
  auto previous = spdlog::default_logger();
  auto capture = std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  capture->set_level(spdlog::level::debug);
  spdlog::set_default_logger(capture);
  {
    auto c = Open();
    ASSERT_TRUE(c->Recover().ok());
    ASSERT_TRUE(c->Start().ok());
    ASSERT_TRUE(c->Write(Samples(2)).ok());
    ASSERT_TRUE(Barrier(*c).ok());
    ASSERT_TRUE(c->Write(Samples(1)).ok());
    Result<std::shared_ptr<ctrjoin::Barrier>> last = c->NextBarrier(true);
    ASSERT_TRUE(last.ok());
    ASSERT_TRUE(c->OnBarrier(**last).ok());
    ASSERT_TRUE(c->Close().ok());
  }
  spdlog::set_default_logger(previous);
  const std::string text = log.str();
  EXPECT_NE(text.find("checkpoint: epoch 1 complete in"), std::string::npos) << text;
  EXPECT_NE(text.find("checkpoint: epoch 2 committed"), std::string::npos) << text;
  // One info line for the first commit; the second is within 5 s: debug only.
  EXPECT_NE(text.find("checkpoint: epoch 1 committed (1 epochs since the last line"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("epoch 2 committed (", 0), std::string::npos) << text;
  EXPECT_EQ(sink_.published(), (std::map<uint64_t, size_t>{{1, 2}, {2, 1}}));
}

}  // namespace
}  // namespace ctrjoin
