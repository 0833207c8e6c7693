#pragma once
// LabelJoin: the impression ⋈ click label join of one shard (joins/README.md,
// "Label join semantics"), on event time:
//
//  - The first click with ts in [impression.ts, impression.ts + W] makes a
//    positive sample at once; later clicks for it are duplicates (counted).
//  - Once the watermark is > impression.ts + W without such a click, a
//    negative sample is emitted.
//  - A click before its impression is held until the impression arrives, or
//    until the watermark passes the click's ts: then it is an orphan (counted).
//  - After the window closes, the key is remembered for allowed_lateness_ms
//    more, so that late clicks (dropped and counted, or emitted as correction
//    records) and duplicate impressions are still recognised. Then it is gone.
//  - An impression whose window closed before it arrived is late (counted).
//  - Duplicate impression ids: the first wins, the rest are counted.
//
// Called only from its shard node (ShardProcessor contract). Owns its
// JoinState; borrows the metrics.

#include <cstdint>
#include <string>
#include <vector>

#include "joins/join_metrics.h"
#include "joins/join_state.h"
#include "src/pipeline/shard.h"

namespace ctrjoin {

struct LabelJoinOptions {
  int64_t window_ms = 600'000;           // W: attribution window
  int64_t allowed_lateness_ms = 60'000;  // how long closed keys are remembered
  bool emit_corrections = false;         // late clicks: drop (false) or correct (true)
  size_t max_held_clicks = 16;           // per key; further ones count as duplicates

  Status Validate() const;  // names the bad field: "join.window_ms: ..."
};

class LabelJoin : public ShardProcessor {
 public:
  LabelJoin(LabelJoinOptions options, JoinState state, JoinMetrics* metrics);

  Status Process(ShardBatch& batch, std::vector<Sample>& out) override;
  Status Checkpoint(Barrier& barrier, uint32_t shard, uint64_t& new_bytes) override;
  // Continues from a checkpoint: the state was loaded from it (Put of each
  // entry ReplayJoinChangelog returned) and watermark is the one it was
  // taken at.
  Status Restore(EventTime watermark);

  const JoinState& state() const { return state_; }
  uint64_t state_entries() const override {
    return state_.entries_in_memory() + state_.entries_spilled();
  }

 private:
  Status OnImpression(uint64_t key, Impression& imp, std::vector<Sample>& out);
  Status OnClick(uint64_t key, const Click& click, std::vector<Sample>& out);
  Status AdvanceTo(EventTime watermark, std::vector<Sample>& out);
  Status EmitFromPayload(uint64_t key, const JoinEntry& e, int label, bool correction,
                         EventTime click_ts, std::vector<Sample>& out);
  bool InWindow(int64_t impression_ts, int64_t click_ts) const {
    return click_ts >= impression_ts && click_ts <= WindowEnd(impression_ts);
  }
  int64_t WindowEnd(int64_t impression_ts) const {
    return SaturatingAdd(impression_ts, options_.window_ms);
  }
  int64_t ForgetAt(int64_t impression_ts) const {
    return SaturatingAdd(WindowEnd(impression_ts), options_.allowed_lateness_ms);
  }

  const LabelJoinOptions options_;
  JoinState state_;
  JoinMetrics* const metrics_;
  EventTime watermark_ = EventTime::Min();
  std::string scratch_;           // an impression being encoded; reused, so it grows only rarely
  uint64_t changelog_bytes_ = 0;  // at the previous barrier
};

}  // namespace ctrjoin
