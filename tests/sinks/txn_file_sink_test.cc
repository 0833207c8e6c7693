// The transactional file sink: nothing is visible before Commit, commits are
// atomic and idempotent, aborts leave nothing, a committer thread can end one
// epoch while the next is written, and recovery after a crash at any point
// commits exactly the pre-committed epochs up to the checkpoint. Dead letters
// are staged and published with their epoch.
#include "sinks/txn_file_sink.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "tests/support/temp_dir.h"

namespace ctrjoin {
namespace {

namespace fs = std::filesystem;

class TxnFileSinkTest : public ::testing::Test {
 protected:
  void SetUp() override { sink_ = Open(); }

  std::unique_ptr<TransactionalFileSink> Open() {
    auto s = TransactionalFileSink::Open({dir_.string(), SampleFormat::kJson});
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return std::move(s).value();
  }

  static std::vector<Sample> Samples(const std::string& prefix, int n) {
    std::vector<Sample> out(n);
    for (int i = 0; i < n; ++i) out[i].impression.impression_id = prefix + std::to_string(i);
    return out;
  }

  // Lines in every committed file, and the count of committed files.
  std::pair<size_t, size_t> Visible() const {
    size_t files = 0, lines = 0;
    for (const auto& e : fs::directory_iterator(dir_.path())) {
      if (!e.is_regular_file()) continue;
      ++files;
      std::ifstream in(e.path());
      for (std::string l; std::getline(in, l);) ++lines;
    }
    return {files, lines};
  }

  static DeadLetter Letter(int64_t offset) {
    return DeadLetter{
        {StreamKind::kClick, 1, Offset{offset}}, "ts: missing", "{}", RejectCode::kMissingField};
  }

  // The lines of the committed dead-letter files, in epoch order.
  std::vector<std::string> VisibleDeadLetters() const {
    std::vector<std::string> lines;
    if (!fs::exists(dir_ / "dead-letters")) return lines;
    std::set<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir_ / "dead-letters")) files.insert(e.path());
    for (const fs::path& f : files) {
      std::ifstream in(f);
      for (std::string l; std::getline(in, l);) lines.push_back(l);
    }
    return lines;
  }

  // Names in _staging.
  std::set<std::string> StagedEntries() const {
    std::set<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_ / "_staging")) {
      names.insert(e.path().filename().string());
    }
    return names;
  }

  test_support::TempDir dir_;
  std::unique_ptr<TransactionalFileSink> sink_;
};

TEST_F(TxnFileSinkTest, VisibleOnlyAfterCommit) {
  ASSERT_TRUE(sink_->Begin({1}).ok());
  ASSERT_TRUE(sink_->Write(Samples("a", 3)).ok());
  EXPECT_EQ(Visible(), std::make_pair(size_t{0}, size_t{0}));
  ASSERT_TRUE(sink_->PreCommit({1}).ok());
  ASSERT_TRUE(sink_->Begin({2}).ok());  // the next epoch runs while 1 commits
  ASSERT_TRUE(sink_->Write(Samples("b", 2)).ok());
  EXPECT_EQ(Visible().second, 0u);
  ASSERT_TRUE(sink_->Commit({1}).ok());
  EXPECT_EQ(Visible(), std::make_pair(size_t{1}, size_t{3}));
  EXPECT_TRUE(fs::exists(sink_->CommittedPath({1})));
  ASSERT_TRUE(sink_->Commit({1}).ok()) << "idempotent";
  ASSERT_TRUE(sink_->PreCommit({2}).ok());
  ASSERT_TRUE(sink_->Commit({2}).ok());
  EXPECT_EQ(Visible(), std::make_pair(size_t{2}, size_t{5}));
}

// As the checkpoint coordinator runs it: its committer thread commits (odd
// epochs) or aborts (even ones) pre-committed epoch N while the sink thread
// writes N+1. Each epoch is published whole or not at all, and the open one
// never shows.
TEST_F(TxnFileSinkTest, CommitterThreadEndsAnEpochWhileTheNextIsWritten) {
  constexpr uint64_t kEpochs = 7;
  constexpr int kMinBatches = 20;  // written while the committer runs, and more until it is done
  constexpr int kMaxBatches = 100'000;
  ASSERT_TRUE(sink_->Begin({1}).ok());
  ASSERT_TRUE(sink_->Write(Samples("e1-", 3)).ok());
  ASSERT_TRUE(sink_->PreCommit({1}).ok());
  size_t precommitted_lines = 3;
  std::pair<size_t, size_t> expected{0, 0};  // files, lines
  for (uint64_t e = 1; e < kEpochs; ++e) {
    const bool commit = e % 2 == 1;
    std::atomic<bool> ended{false};
    Status ended_status;
    size_t open_lines = 0;
    {
      std::jthread committer([&] {
        ended_status = commit ? sink_->Commit({e}) : sink_->Abort({e});
        ended = true;
      });
      ASSERT_TRUE(sink_->Begin({e + 1}).ok());
      for (int batch = 0; (batch < kMinBatches || !ended) && batch < kMaxBatches; ++batch) {
        const std::string prefix = "e" + std::to_string(e + 1) + "-" + std::to_string(batch) + "-";
        ASSERT_TRUE(sink_->Write(Samples(prefix, 2)).ok());
        open_lines += 2;
      }
    }  // joins the committer
    ASSERT_TRUE(ended_status.ok()) << "epoch " << e << ": " << ended_status.ToString();
    if (commit) {
      ++expected.first;
      expected.second += precommitted_lines;
    }
    EXPECT_EQ(fs::exists(sink_->CommittedPath({e})), commit) << "epoch " << e;
    EXPECT_EQ(Visible(), expected) << "after ending epoch " << e << "; " << e + 1 << " is open";
    ASSERT_TRUE(sink_->PreCommit({e + 1}).ok());
    EXPECT_EQ(Visible(), expected) << "epoch " << e + 1 << " is pre-committed, not committed";
    precommitted_lines = open_lines;
  }
  ASSERT_TRUE(sink_->Commit({kEpochs}).ok());
  ++expected.first;
  expected.second += precommitted_lines;
  EXPECT_EQ(Visible(), expected);
  EXPECT_EQ(StagedEntries(), (std::set<std::string>{"LOCK", "OWNER"})) << "no staged epoch left";
}

TEST_F(TxnFileSinkTest, AbortLeavesNothing) {
  ASSERT_TRUE(sink_->Begin({1}).ok());
  ASSERT_TRUE(sink_->Write(Samples("a", 3)).ok());
  ASSERT_TRUE(sink_->PreCommit({1}).ok());
  ASSERT_TRUE(sink_->Abort({1}).ok());
  ASSERT_TRUE(sink_->Begin({2}).ok());
  ASSERT_TRUE(sink_->Write(Samples("b", 1)).ok());
  ASSERT_TRUE(sink_->Abort({2}).ok());
  ASSERT_TRUE(sink_->Abort({2}).ok()) << "idempotent";
  EXPECT_EQ(Visible().first, 0u);
  EXPECT_EQ(StagedEntries(), (std::set<std::string>{"LOCK", "OWNER"})) << "no staged epoch left";
}

TEST_F(TxnFileSinkTest, EmptyEpochPublishesNothing) {
  ASSERT_TRUE(sink_->Begin({1}).ok());
  ASSERT_TRUE(sink_->PreCommit({1}).ok());
  ASSERT_TRUE(sink_->Commit({1}).ok());
  EXPECT_EQ(Visible().first, 0u);
}

TEST_F(TxnFileSinkTest, RecoveryCommitsPreCommittedUpToTheCheckpointAndDropsTheRest) {
  // Epoch 1 committed; 2 and 3 pre-committed; 4 open when the process dies.
  for (uint64_t e = 1; e <= 4; ++e) {
    ASSERT_TRUE(sink_->Begin({e}).ok());
    ASSERT_TRUE(sink_->Write(Samples("e" + std::to_string(e) + "-", 2)).ok());
    if (e == 4) break;
    ASSERT_TRUE(sink_->PreCommit({e}).ok());
    if (e == 1) {
      ASSERT_TRUE(sink_->Commit({e}).ok());
    }
  }
  sink_.reset();  // the crash: nothing else runs
  auto recovered = Open();
  // The checkpoint of epoch 2 completed; 3's did not.
  Result<EpochId> highest = recovered->Recover({2});
  ASSERT_TRUE(highest.ok()) << highest.status().ToString();
  EXPECT_EQ(highest->value, 2u);
  EXPECT_EQ(Visible(), std::make_pair(size_t{2}, size_t{4}));
  EXPECT_TRUE(fs::exists(recovered->CommittedPath({2})));
  EXPECT_FALSE(fs::exists(recovered->CommittedPath({3})));
  EXPECT_EQ(StagedEntries(), (std::set<std::string>{"LOCK", "OWNER"})) << "no staged epoch left";
  // And it goes on from there.
  ASSERT_TRUE(recovered->Begin({3}).ok());
  ASSERT_TRUE(recovered->Write(Samples("again", 1)).ok());
  ASSERT_TRUE(recovered->PreCommit({3}).ok());
  ASSERT_TRUE(recovered->Commit({3}).ok());
  EXPECT_EQ(Visible(), std::make_pair(size_t{3}, size_t{5}));
}

TEST_F(TxnFileSinkTest, DeadLettersArePublishedWithTheirEpochOnly) {
  ASSERT_TRUE(sink_->Begin({1}).ok());
  ASSERT_TRUE(sink_->Write(Samples("a", 1)).ok());
  ASSERT_TRUE(sink_->WriteDeadLetter(Letter(7)).ok());
  ASSERT_TRUE(sink_->WriteDeadLetter(Letter(9)).ok());
  ASSERT_TRUE(sink_->PreCommit({1}).ok());
  ASSERT_TRUE(sink_->Begin({2}).ok());
  ASSERT_TRUE(sink_->WriteDeadLetter(Letter(11)).ok());
  EXPECT_TRUE(VisibleDeadLetters().empty());
  ASSERT_TRUE(sink_->Commit({1}).ok());
  ASSERT_TRUE(sink_->Commit({1}).ok()) << "idempotent";
  EXPECT_EQ(
      VisibleDeadLetters(),
      (std::vector<std::string>{
          R"({"reason":"ts: missing","reason_code":"missing_field","stream":"clicks","partition":1,"offset":7,"payload":"{}"})",
          R"({"reason":"ts: missing","reason_code":"missing_field","stream":"clicks","partition":1,"offset":9,"payload":"{}"})"}));
  EXPECT_TRUE(fs::exists(sink_->CommittedDeadLettersPath({1})));
  EXPECT_EQ(sink_->CommittedDeadLettersPath({1}),
            dir_ / "dead-letters" / "epoch-00000000000000000001.jsonl");
  // Aborted: its dead letters are never visible.
  ASSERT_TRUE(sink_->Abort({2}).ok());
  EXPECT_EQ(VisibleDeadLetters().size(), 2u);
  // An epoch with dead letters only publishes them alone.
  ASSERT_TRUE(sink_->Begin({3}).ok());
  ASSERT_TRUE(sink_->WriteDeadLetter(Letter(12)).ok());
  ASSERT_TRUE(sink_->PreCommit({3}).ok());
  ASSERT_TRUE(sink_->Commit({3}).ok());
  EXPECT_EQ(VisibleDeadLetters().size(), 3u);
  EXPECT_FALSE(fs::exists(sink_->CommittedPath({3})));
  EXPECT_EQ(StagedEntries(), (std::set<std::string>{"LOCK", "OWNER"}));
}

TEST_F(TxnFileSinkTest, RecoveryPublishesAPreCommittedEpochsDeadLettersAndDropsTheOpenOnes) {
  ASSERT_TRUE(sink_->Begin({1}).ok());
  ASSERT_TRUE(sink_->WriteDeadLetter(Letter(1)).ok());
  ASSERT_TRUE(sink_->PreCommit({1}).ok());
  ASSERT_TRUE(sink_->Begin({2}).ok());
  ASSERT_TRUE(sink_->WriteDeadLetter(Letter(2)).ok());
  sink_.reset();  // the crash: 1 pre-committed and checkpointed, 2 open
  auto recovered = Open();
  Result<EpochId> highest = recovered->Recover({1});
  ASSERT_TRUE(highest.ok()) << highest.status().ToString();
  EXPECT_EQ(highest->value, 1u) << "an epoch that published dead letters only counts";
  ASSERT_EQ(VisibleDeadLetters().size(), 1u);
  EXPECT_NE(VisibleDeadLetters()[0].find(R"("offset":1,)"), std::string::npos);
  EXPECT_EQ(StagedEntries(), (std::set<std::string>{"LOCK", "OWNER"}));
}

TEST_F(TxnFileSinkTest, ASecondSinkOnTheDirectoryIsRefused) {
  auto second = TransactionalFileSink::Open({dir_.string(), SampleFormat::kJson});
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("is in use by another ctrjoin process (pid " +
                                           std::to_string(::getpid()) + ")"),
            std::string::npos)
      << second.status().message();
  sink_.reset();
  EXPECT_TRUE(TransactionalFileSink::Open({dir_.string(), SampleFormat::kJson}).ok());
}

// A newer owner on another host (where this host's lock cannot reach) takes
// the next generation in OWNER: the old sink then touches nothing.
TEST_F(TxnFileSinkTest, ANewerOwnerFencesTheOldOneWhichTouchesNothing) {
  ASSERT_TRUE(sink_->Begin({1}).ok());
  ASSERT_TRUE(sink_->Write(Samples("a", 3)).ok());
  ASSERT_TRUE(sink_->PreCommit({1}).ok());
  ASSERT_TRUE(sink_->Begin({2}).ok());
  ASSERT_TRUE(sink_->Write(Samples("b", 1)).ok());
  std::ofstream(dir_ / "_staging" / "OWNER", std::ios::trunc) << "2\n";

  const Status commit = sink_->Commit({1});
  EXPECT_EQ(commit.effect(), Effect::kFenced) << commit.ToString();
  EXPECT_NE(commit.message().find("belongs to a newer instance (owner generation 2, this one 1)"),
            std::string::npos)
      << commit.message();
  EXPECT_EQ(sink_->PreCommit({2}).effect(), Effect::kFenced);
  EXPECT_EQ(sink_->Abort({1}).effect(), Effect::kFenced);
  EXPECT_EQ(Visible(), std::make_pair(size_t{0}, size_t{0})) << "nothing published";
  EXPECT_TRUE(StagedEntries().contains("00000000000000000001")) << "nor removed";

  // The newer owner recovers what the checkpoint of epoch 1 promised.
  sink_.reset();
  auto newer = Open();
  ASSERT_TRUE(newer->Recover({1}).ok());
  EXPECT_EQ(Visible(), std::make_pair(size_t{1}, size_t{3}));
}

TEST_F(TxnFileSinkTest, MisuseIsRejected) {
  EXPECT_FALSE(sink_->Write(Samples("x", 1)).ok());
  EXPECT_FALSE(sink_->PreCommit({1}).ok());
  ASSERT_TRUE(sink_->Begin({1}).ok());
  EXPECT_FALSE(sink_->Begin({2}).ok());
  EXPECT_FALSE(sink_->Commit({1}).ok()) << "epoch 1 is open";
  ASSERT_TRUE(sink_->Write(Samples("y", 1)).ok()) << "and still is";
  ASSERT_TRUE(sink_->PreCommit({1}).ok());
  ASSERT_TRUE(sink_->Commit({1}).ok());
  EXPECT_EQ(Visible(), std::make_pair(size_t{1}, size_t{1}));
  EXPECT_FALSE(TransactionalFileSink::Open({"", SampleFormat::kJson}).ok());
}

// Rolled parts: a part spans epochs and becomes visible whole, at the commit
// of the epoch that closed it; recovery keeps exactly the committed epochs
// of a part that was still open.
class RolledTxnFileSinkTest : public TxnFileSinkTest {
 protected:
  std::unique_ptr<TransactionalFileSink> OpenRolled(uint64_t roll_bytes,
                                                    FileCompression compression) {
    TransactionalFileSinkOptions o{dir_.string(), SampleFormat::kJson};
    o.roll_bytes = roll_bytes;
    o.compression = compression;
    auto s = TransactionalFileSink::Open(o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return std::move(s).value();
  }

  // Writes epoch e with n samples "e<e>-<i>"; pre-commits it unless open.
  static void Epoch(TransactionalFileSink& sink, uint64_t e, int n, bool pre_commit = true) {
    ASSERT_TRUE(sink.Begin({e}).ok());
    ASSERT_TRUE(sink.Write(Samples("e" + std::to_string(e) + "-", n)).ok());
    if (pre_commit) {
      ASSERT_TRUE(sink.PreCommit({e}).ok());
    }
  }

  // The run's last epoch e, with n samples "<prefix><i>": closes the open
  // part and commits it.
  static void LastEpoch(TransactionalFileSink& sink, uint64_t e, const std::string& prefix, int n) {
    ASSERT_TRUE(sink.Begin({e}).ok());
    if (n > 0) {
      ASSERT_TRUE(sink.Write(Samples(prefix, n)).ok());
    }
    sink.EndOfOutput();
    ASSERT_TRUE(sink.PreCommit({e}).ok());
    ASSERT_TRUE(sink.Commit({e}).ok());
  }

  // The impression ids in the published parts, in part order.
  std::vector<std::string> PublishedIds() const {
    std::set<fs::path> parts;
    for (const auto& e : fs::directory_iterator(dir_.path())) {
      if (e.path().filename().string().starts_with("part-")) parts.insert(e.path());
    }
    std::vector<std::string> ids;
    for (const fs::path& part : parts) {
      std::ifstream in(part);
      for (std::string l; std::getline(in, l);) {
        const size_t at = l.find("\"impression_id\":\"") + 17;
        ids.push_back(l.substr(at, l.find('"', at) - at));
      }
    }
    return ids;
  }
};

TEST_F(RolledTxnFileSinkTest, APartSpansEpochsAndIsVisibleWholeOnceTheEpochClosingItCommits) {
  sink_.reset();
  auto sink = OpenRolled(/*roll_bytes=*/1000, FileCompression::kNone);
  Epoch(*sink, 1, 2);
  ASSERT_TRUE(sink->Commit({1}).ok());
  EXPECT_EQ(Visible().first, 0u) << "the part is still open";
  Epoch(*sink, 2, 20);  // past 1000 bytes: closes with epoch 2
  Epoch(*sink, 3, 1);   // a new part, open while 2 commits
  ASSERT_TRUE(sink->Commit({2}).ok());
  EXPECT_EQ(Visible(), std::make_pair(size_t{1}, size_t{22}));
  EXPECT_TRUE(fs::exists(sink->CommittedPath({2})));
  EXPECT_EQ(sink->CommittedPath({2}).filename(), "part-00000000000000000002.jsonl");
  ASSERT_TRUE(sink->Commit({3}).ok());
  EXPECT_EQ(Visible().first, 1u);
  // The run's last epoch closes the open part.
  LastEpoch(*sink, 4, "", 0);
  EXPECT_EQ(Visible(), std::make_pair(size_t{2}, size_t{23}));
  EXPECT_EQ(StagedEntries(), (std::set<std::string>{"LOCK", "OWNER"}));
}

TEST_F(RolledTxnFileSinkTest, RecoveryCutsTheOpenPartBackToTheCommittedEpochs) {
  sink_.reset();
  auto sink = OpenRolled(1 << 20, FileCompression::kNone);
  Epoch(*sink, 1, 2);
  ASSERT_TRUE(sink->Commit({1}).ok());
  Epoch(*sink, 2, 2);                        // pre-committed, in the checkpoint, not yet committed
  Epoch(*sink, 3, 2);                        // pre-committed, not in the checkpoint
  Epoch(*sink, 4, 2, /*pre_commit=*/false);  // open
  sink.reset();                              // the crash
  sink = OpenRolled(1 << 20, FileCompression::kNone);
  Result<EpochId> highest = sink->Recover({2});
  ASSERT_TRUE(highest.ok()) << highest.status().ToString();
  EXPECT_EQ(highest->value, 2u) << "epoch 2 committed, though nothing is published yet";
  EXPECT_EQ(Visible().first, 0u);
  LastEpoch(*sink, 3, "again-", 1);
  EXPECT_EQ(PublishedIds(), (std::vector<std::string>{"e1-0", "e1-1", "e2-0", "e2-1", "again-0"}));
}

TEST_F(RolledTxnFileSinkTest, APartClosedByAnEpochAboveTheCheckpointIsOpenAgain) {
  sink_.reset();
  auto sink = OpenRolled(/*roll_bytes=*/1000, FileCompression::kNone);
  Epoch(*sink, 1, 2);
  ASSERT_TRUE(sink->Commit({1}).ok());
  Epoch(*sink, 2, 1);
  ASSERT_TRUE(sink->Commit({2}).ok());
  Epoch(*sink, 3, 20);  // closes the part; its checkpoint never completes
  sink.reset();
  sink = OpenRolled(1000, FileCompression::kNone);
  ASSERT_TRUE(sink->Recover({2}).ok());
  EXPECT_EQ(Visible().first, 0u);
  Epoch(*sink, 3, 1);
  ASSERT_TRUE(sink->Commit({3}).ok());
  LastEpoch(*sink, 4, "", 0);
  EXPECT_EQ(PublishedIds(), (std::vector<std::string>{"e1-0", "e1-1", "e2-0", "e3-0"}));
}

TEST_F(RolledTxnFileSinkTest, AnAbortedOpenEpochLeavesTheEarlierEpochsOfItsPart) {
  sink_.reset();
  auto sink = OpenRolled(1 << 20, FileCompression::kNone);
  Epoch(*sink, 1, 2);
  ASSERT_TRUE(sink->Commit({1}).ok());
  Epoch(*sink, 2, 3, /*pre_commit=*/false);
  ASSERT_TRUE(sink->Abort({2}).ok());
  LastEpoch(*sink, 3, "e3-", 1);
  EXPECT_EQ(PublishedIds(), (std::vector<std::string>{"e1-0", "e1-1", "e3-0"}));
}

// Epochs of many MiB: the sink starts the part's write-back every few MiB
// while it writes; what a pre-commit promises is still there whole, and
// recovery still cuts the part back to it.
TEST_F(RolledTxnFileSinkTest, EpochsOfManyMegabytesStayWholeAndAreCutBackAfterACrash) {
  sink_.reset();
  auto sink = OpenRolled(/*roll_bytes=*/1 << 30, FileCompression::kNone);
  Epoch(*sink, 1, 100'000);                       // about 10 MiB of JSON lines
  Epoch(*sink, 2, 60'000, /*pre_commit=*/false);  // the crash comes while it is written
  const uint64_t written = fs::file_size(dir_ / "_staging/part-00000000000000000001.inprogress");
  EXPECT_GT(written, 15u << 20) << "the test needs epochs of several write-back steps";
  sink.reset();
  sink = OpenRolled(1 << 30, FileCompression::kNone);
  ASSERT_TRUE(sink->Recover({1}).ok());
  LastEpoch(*sink, 2, "again-", 1);
  const std::vector<std::string> ids = PublishedIds();
  ASSERT_EQ(ids.size(), 100'001u);
  EXPECT_EQ(ids.front(), "e1-0");
  EXPECT_EQ(ids[99'999], "e1-99999");
  EXPECT_EQ(ids.back(), "again-0");
}

TEST_F(RolledTxnFileSinkTest, GzipPartsAreOneGzipStream) {
  sink_.reset();
  auto sink = OpenRolled(0, FileCompression::kGzip);  // a part per epoch
  Epoch(*sink, 1, 5);
  ASSERT_TRUE(sink->Commit({1}).ok());
  const fs::path part = sink->CommittedPath({1});
  EXPECT_EQ(part.filename(), "part-00000000000000000001.jsonl.gz");
  gzFile gz = gzopen(part.c_str(), "rb");
  ASSERT_NE(gz, nullptr);
  std::string text;
  char buf[4096];
  for (int n; (n = gzread(gz, buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
  gzclose(gz);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 5);
  EXPECT_NE(text.find("\"impression_id\":\"e1-4\""), std::string::npos);
  EXPECT_EQ(StagedEntries(), (std::set<std::string>{"LOCK", "OWNER"}));
}

}  // namespace
}  // namespace ctrjoin
