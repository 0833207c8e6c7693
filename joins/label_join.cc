#include "joins/label_join.h"

#include <fmt/format.h>

#include <algorithm>

#include "src/core/state_codec.h"

namespace ctrjoin {

namespace {

void AppendClickTs(Payload& payload, int64_t ts) {
  std::string bytes(payload.view());
  PutFixed64(bytes, static_cast<uint64_t>(ts));
  payload = Payload(bytes);
}

std::vector<int64_t> ReadClickTs(std::string_view payload) {
  std::vector<int64_t> out;
  uint64_t v = 0;
  while (GetFixed64(payload, v)) out.push_back(static_cast<int64_t>(v));
  return out;
}

}  // namespace

Status LabelJoinOptions::Validate() const {
  constexpr int64_t kYearMs = 366LL * 86'400'000;
  if (window_ms <= 0 || window_ms > kYearMs) {
    return Status::InvalidArgument("join.window_ms: must be > 0 and at most a year");
  }
  if (allowed_lateness_ms < 0 || allowed_lateness_ms > kYearMs) {
    return Status::InvalidArgument("join.allowed_lateness_ms: must be >= 0 and at most a year");
  }
  if (max_held_clicks == 0) return Status::InvalidArgument("join.max_held_clicks: must be >= 1");
  return Status::Ok();
}

LabelJoin::LabelJoin(LabelJoinOptions options, JoinState state, JoinMetrics* metrics)
    : options_(options), state_(std::move(state)), metrics_(metrics) {}

Status LabelJoin::Process(ShardBatch& batch, std::vector<Sample>& out) {
  // Each event's slot is prefetched this many events ahead, so that the
  // cache misses of a batch overlap instead of following one another.
  constexpr size_t kAhead = 16, kPayloadAhead = 4;
  std::vector<KeyedEvent>& events = batch.events;
  for (size_t i = 0; i < events.size() && i < kAhead; ++i) state_.Prefetch(events[i].key);
  for (size_t i = 0; i < events.size(); ++i) {
    if (i + kAhead < events.size()) state_.Prefetch(events[i + kAhead].key);
    if (i + kPayloadAhead < events.size()) state_.PrefetchPayload(events[i + kPayloadAhead].key);
    KeyedEvent& ev = events[i];
    if (auto* imp = std::get_if<Impression>(&ev.event)) {
      CTRJOIN_RETURN_IF_ERROR(OnImpression(ev.key, *imp, out));
    } else {
      CTRJOIN_RETURN_IF_ERROR(OnClick(ev.key, std::get<Click>(ev.event), out));
    }
  }
  const EventTime wm = batch.end_of_input ? EventTime::Max() : batch.watermark;
  CTRJOIN_RETURN_IF_ERROR(AdvanceTo(wm, out));
  return state_.EnforceBudget();
}

Status LabelJoin::OnImpression(uint64_t key, Impression& imp, std::vector<Sample>& out) {
  Result<JoinEntry*> found = state_.Find(key);
  if (!found.ok()) return found.status();
  JoinEntry* e = *found;
  const int64_t ts = imp.ts.ms;
  if (e != nullptr && e->state != EntryState::kHeldClicks) {
    metrics_->duplicate_impressions.Add();
    return Status::Ok();
  }
  if (watermark_.ms > WindowEnd(ts)) {
    metrics_->late_impressions.Add();
    return Status::Ok();
  }

  // Match clicks that arrived before their impression: the earliest click in
  // the window wins, other in-window clicks are duplicates.
  EventTime first_click = EventTime::Max();
  if (e != nullptr) {
    for (int64_t click_ts : ReadClickTs(e->payload.view())) {
      if (watermark_.ms > click_ts) {
        // Held with a later click of the same key, but its own ts has passed.
        metrics_->orphan_clicks.Add();
      } else if (!InWindow(ts, click_ts)) {
        metrics_->clicks_outside_window.Add();
      } else {
        if (first_click != EventTime::Max()) metrics_->duplicate_clicks.Add();
        first_click = std::min(first_click, EventTime{click_ts});
      }
    }
  }

  JoinEntry entry;
  entry.impression_ts = ts;
  entry.deadline = WindowEnd(ts);
  if (first_click != EventTime::Max()) {
    entry.state = EntryState::kLabeled;
    Sample s;
    s.sample_id = key;
    s.label = 1;
    s.click_ts = first_click;
    s.impression = std::move(imp);
    out.push_back(std::move(s));
    metrics_->positives.Add();
  } else {
    entry.state = EntryState::kPending;
    scratch_.clear();
    EncodeImpression(imp, scratch_);
    entry.payload = Payload(scratch_);
  }
  state_.Put(key, std::move(entry));
  return Status::Ok();
}

Status LabelJoin::OnClick(uint64_t key, const Click& click, std::vector<Sample>& out) {
  Result<JoinEntry*> found = state_.Find(key);
  if (!found.ok()) return found.status();
  JoinEntry* e = *found;
  const int64_t ts = click.ts.ms;

  if (e == nullptr) {
    if (watermark_.ms > ts) {
      // Its impression could only arrive late now.
      metrics_->orphan_clicks.Add();
      return Status::Ok();
    }
    JoinEntry held;
    held.state = EntryState::kHeldClicks;
    held.deadline = ts;
    AppendClickTs(held.payload, ts);
    state_.Put(key, std::move(held));
    return Status::Ok();
  }

  switch (e->state) {
    case EntryState::kHeldClicks: {
      if (e->payload.size() / 8 >= options_.max_held_clicks) {
        metrics_->duplicate_clicks.Add();
        return Status::Ok();
      }
      JoinEntry next = *e;
      AppendClickTs(next.payload, ts);
      next.deadline = std::max(next.deadline, ts);
      state_.Put(key, std::move(next));
      return Status::Ok();
    }
    case EntryState::kPending: {
      if (!InWindow(e->impression_ts, ts)) {
        metrics_->clicks_outside_window.Add();
        return Status::Ok();
      }
      CTRJOIN_RETURN_IF_ERROR(EmitFromPayload(key, *e, 1, false, click.ts, out));
      metrics_->positives.Add();
      state_.Put(key, JoinEntry{EntryState::kLabeled, e->impression_ts, e->deadline, {}});
      return Status::Ok();
    }
    case EntryState::kLabeled:
    case EntryState::kClosedPositive:
      if (InWindow(e->impression_ts, ts)) {
        metrics_->duplicate_clicks.Add();
      } else {
        metrics_->clicks_outside_window.Add();
      }
      return Status::Ok();
    case EntryState::kClosedNegative: {
      if (!InWindow(e->impression_ts, ts)) {
        metrics_->clicks_outside_window.Add();
        return Status::Ok();
      }
      metrics_->late_clicks.Add();
      if (!options_.emit_corrections) return Status::Ok();
      CTRJOIN_RETURN_IF_ERROR(EmitFromPayload(key, *e, 1, true, click.ts, out));
      metrics_->corrections.Add();
      state_.Put(key, JoinEntry{EntryState::kClosedPositive, e->impression_ts, e->deadline, {}});
      return Status::Ok();
    }
  }
  return Status::Internal("unknown join state");
}

Status LabelJoin::Checkpoint(Barrier& barrier, uint32_t shard, uint64_t& new_bytes) {
  Result<ChangelogPosition> at = state_.Mark(barrier.epoch, watermark_);
  if (!at.ok()) return at.status();
  if (shard >= barrier.marks.size()) {
    return Status::Internal(
        fmt::format("checkpoint {}: no mark for shard {}", barrier.epoch, shard),
        Effect::kNoEffect);
  }
  ShardMark& mark = barrier.marks[shard];
  mark.segment = at->segment;
  mark.offset = at->offset;
  mark.watermark = watermark_;
  mark.wait_durable = state_.DurableWaiter(barrier.epoch);
  new_bytes = state_.changelog_bytes() - changelog_bytes_;
  changelog_bytes_ = state_.changelog_bytes();
  return Status::Ok();
}

Status LabelJoin::Restore(EventTime watermark) {
  watermark_ = std::max(watermark_, watermark);
  changelog_bytes_ = state_.changelog_bytes();
  return state_.EnforceBudget();
}

Status LabelJoin::AdvanceTo(EventTime watermark, std::vector<Sample>& out) {
  if (watermark <= watermark_) return Status::Ok();
  watermark_ = watermark;
  // Closing a window gives the entry a later deadline (ForgetAt), which the
  // same watermark may pass: Expire hands it back then, to be forgotten.
  return state_.Expire(watermark, [&](uint64_t key, JoinEntry& e) -> Result<bool> {
    switch (e.state) {
      case EntryState::kHeldClicks: metrics_->orphan_clicks.Add(e.payload.size() / 8); return false;
      case EntryState::kPending:
        CTRJOIN_RETURN_IF_ERROR(EmitFromPayload(key, e, 0, false, EventTime::Min(), out));
        metrics_->negatives.Add();
        if (!options_.emit_corrections) e.payload = Payload();  // frees it
        e.state = EntryState::kClosedNegative;
        e.deadline = ForgetAt(e.impression_ts);
        return true;
      case EntryState::kLabeled:
        e.state = EntryState::kClosedPositive;
        e.deadline = ForgetAt(e.impression_ts);
        return true;
      case EntryState::kClosedPositive:
      case EntryState::kClosedNegative: return false;  // forgotten
    }
    return Status::Internal("unknown join state", Effect::kEffectUnknown);
  });
}

Status LabelJoin::EmitFromPayload(uint64_t key, const JoinEntry& e, int label, bool correction,
                                  EventTime click_ts, std::vector<Sample>& out) {
  Sample s;
  s.sample_id = key;
  s.label = label;
  s.correction = correction;
  s.click_ts = click_ts;
  CTRJOIN_RETURN_IF_ERROR(DecodeImpression(e.payload.view(), s.impression));
  out.push_back(std::move(s));
  return Status::Ok();
}

}  // namespace ctrjoin
