#include "tests/support/kafka_broker/group_coordinator.h"

#include <algorithm>
#include <limits>
#include <utility>

namespace ctrjoin::testbroker {
std::vector<std::pair<std::string, std::string>> GroupCoordinator::List() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [id, group] : groups_) out.emplace_back(id, group.protocol_type);
  return out;
}

GroupDescription GroupCoordinator::Describe(const std::string& group_id) const {
  GroupDescription d{group_id, "Dead", "", "", {}};
  auto it = groups_.find(group_id);
  if (it == groups_.end()) return d;
  const Group& group = it->second;
  d.state = StateName(group.state);
  d.protocol_type = group.protocol_type;
  d.protocol_name = group.protocol_name;
  for (const std::string& member_id : group.join_order) {
    auto m = group.members.find(member_id);
    if (m == group.members.end()) continue;
    GroupDescription::Member out{m->second.id, m->second.client_id, "", ""};
    for (const GroupProtocol& p : m->second.protocols) {
      if (p.name == group.protocol_name) out.metadata = p.metadata;
    }
    if (group.state == State::kStable) out.assignment = m->second.assignment;
    d.members.push_back(std::move(out));
  }
  return d;
}

const char* GroupCoordinator::StateName(State state) {
  switch (state) {
    case State::kEmpty: return "Empty";
    case State::kPreparingRebalance: return "PreparingRebalance";
    case State::kCompletingRebalance: return "CompletingRebalance";
    case State::kStable: return "Stable";
  }
  return "?";
}

namespace {

JoinGroupResult JoinError(KafkaError error) {
  JoinGroupResult result;
  result.error = error;
  return result;
}

}  // namespace

std::string GroupCoordinator::NewMemberId(const std::string& client_id) {
  return (client_id.empty() ? std::string("member") : client_id) + "-" +
         std::to_string(next_member_++);
}

bool GroupCoordinator::SupportsProtocols(const Group& group,
                                         const JoinGroupRequest& request) const {
  // Some protocol must be shared by the newcomer and every current member.
  for (const GroupProtocol& p : request.protocols) {
    bool everyone = std::all_of(group.members.begin(), group.members.end(), [&](const auto& kv) {
      return kv.first == request.member_id ||
             std::any_of(kv.second.protocols.begin(), kv.second.protocols.end(),
                         [&](const GroupProtocol& q) { return q.name == p.name; });
    });
    if (everyone) return true;
  }
  return false;
}

std::optional<std::string> GroupCoordinator::SelectProtocol(const Group& group) const {
  // Kafka's vote: among protocols every member supports, each member votes
  // for its most preferred one; the most votes wins (ties: first seen).
  std::vector<std::string> candidates;
  for (const GroupProtocol& p : group.members.begin()->second.protocols) {
    bool everyone = std::all_of(group.members.begin(), group.members.end(), [&](const auto& kv) {
      return std::any_of(kv.second.protocols.begin(), kv.second.protocols.end(),
                         [&](const GroupProtocol& q) { return q.name == p.name; });
    });
    if (everyone) candidates.push_back(p.name);
  }
  if (candidates.empty()) return std::nullopt;
  std::map<std::string, int> votes;
  for (const auto& [id, member] : group.members) {
    for (const GroupProtocol& p : member.protocols) {
      if (std::find(candidates.begin(), candidates.end(), p.name) != candidates.end()) {
        ++votes[p.name];
        break;
      }
    }
  }
  std::string best = candidates.front();
  for (const std::string& c : candidates) {
    if (votes[c] > votes[best]) best = c;
  }
  return best;
}

void GroupCoordinator::Join(JoinGroupRequest request, std::int64_t now, JoinCallback done) {
  if (request.group_id.empty()) {
    done(JoinError(KafkaError::kInvalidGroupId));
    return;
  }
  if (request.session_timeout_ms < options_.group_min_session_timeout_ms ||
      request.session_timeout_ms > options_.group_max_session_timeout_ms) {
    done(JoinError(KafkaError::kInvalidSessionTimeout));
    return;
  }
  Group& group = groups_[request.group_id];
  group.id = request.group_id;
  if (request.protocols.empty() ||
      (!group.members.empty() &&
       (request.protocol_type != group.protocol_type || !SupportsProtocols(group, request)))) {
    done(JoinError(KafkaError::kInconsistentGroupProtocol));
    return;
  }
  const bool is_new = request.member_id.empty();
  std::string member_id = is_new ? NewMemberId(request.client_id) : request.member_id;
  if (!is_new && !group.members.contains(member_id)) {
    JoinGroupResult unknown;
    unknown.error = KafkaError::kUnknownMemberId;
    unknown.member_id = member_id;
    done(unknown);
    return;
  }
  if (group.members.empty()) group.protocol_type = request.protocol_type;
  Member& member = group.members[member_id];
  if (is_new) group.join_order.push_back(member_id);
  if (member.pending_join) {
    // The same member joined again (e.g. from a new connection): the older
    // request can only be told to retry.
    JoinCallback old = std::exchange(member.pending_join, nullptr);
    old(JoinError(KafkaError::kRebalanceInProgress));
  }
  member.id = member_id;
  member.group_instance_id = std::move(request.group_instance_id);
  member.client_id = std::move(request.client_id);
  member.session_timeout_ms = request.session_timeout_ms;
  member.rebalance_timeout_ms =
      request.rebalance_timeout_ms > 0 ? request.rebalance_timeout_ms : request.session_timeout_ms;
  member.protocols = std::move(request.protocols);
  member.session_deadline = now + member.session_timeout_ms;
  member.pending_join = std::move(done);
  logger_->Info("group {}: member {} joins ({} members, state {})", group.id, member_id,
                group.members.size(), StateName(group.state));

  if (group.state == State::kPreparingRebalance) {
    if (is_new && group.initial_delay_until > now) {
      group.initial_delay_until =
          std::min(now + options_.group_initial_rebalance_delay_ms, group.rebalance_deadline);
    }
  } else {
    PrepareRebalance(group, now, "member joined");
  }
  MaybeCompleteJoin(group, now);
}

void GroupCoordinator::PrepareRebalance(Group& group, std::int64_t now, const char* reason) {
  // Members waiting for an assignment of the old generation must rejoin.
  std::vector<SyncCallback> to_fail;
  for (auto& [id, member] : group.members) {
    if (member.pending_sync) to_fail.push_back(std::exchange(member.pending_sync, nullptr));
  }
  const bool initial = group.state == State::kEmpty;
  std::int32_t timeout = 0;
  for (const auto& [id, member] : group.members) {
    timeout = std::max(timeout, member.rebalance_timeout_ms);
  }
  group.state = State::kPreparingRebalance;
  group.rebalance_deadline = now + timeout;
  group.initial_delay_until =
      initial ? std::min(now + options_.group_initial_rebalance_delay_ms, group.rebalance_deadline)
              : 0;
  logger_->Info("group {}: rebalancing (generation {}): {}", group.id, group.generation, reason);
  for (SyncCallback& cb : to_fail) cb({KafkaError::kRebalanceInProgress, {}});
}

void GroupCoordinator::MaybeCompleteJoin(Group& group, std::int64_t now) {
  if (group.state != State::kPreparingRebalance) return;
  bool all_joined = std::all_of(group.members.begin(), group.members.end(),
                                [](const auto& kv) { return kv.second.pending_join != nullptr; });
  if ((all_joined && now >= group.initial_delay_until) || now >= group.rebalance_deadline) {
    CompleteJoin(group, now);
  }
}

void GroupCoordinator::CompleteJoin(Group& group, std::int64_t now) {
  // Members that did not rejoin in time are out.
  std::vector<std::string> stale;
  for (const auto& [id, member] : group.members) {
    if (!member.pending_join) stale.push_back(id);
  }
  for (const std::string& id : stale) {
    logger_->Info("group {}: member {} did not rejoin in time", group.id, id);
    group.members.erase(id);
  }
  std::erase_if(group.join_order,
                [&](const std::string& id) { return !group.members.contains(id); });
  ++group.generation;
  if (group.members.empty()) {
    group.state = State::kEmpty;
    group.protocol_name.clear();
    group.leader.clear();
    return;
  }
  std::optional<std::string> protocol = SelectProtocol(group);
  if (!group.members.contains(group.leader)) group.leader = group.join_order.front();
  std::vector<std::pair<JoinCallback, JoinGroupResult>> replies;
  if (!protocol) {
    for (auto& [id, member] : group.members) {
      replies.emplace_back(std::exchange(member.pending_join, nullptr),
                           JoinError(KafkaError::kInconsistentGroupProtocol));
    }
    group.members.clear();
    group.join_order.clear();
    group.state = State::kEmpty;
  } else {
    group.protocol_name = *protocol;
    group.state = State::kCompletingRebalance;
    for (auto& [id, member] : group.members) {
      JoinGroupResult result;
      result.generation = group.generation;
      result.protocol_name = group.protocol_name;
      result.leader = group.leader;
      result.member_id = id;
      if (id == group.leader) {
        for (const std::string& mid : group.join_order) {
          const Member& m = group.members.at(mid);
          auto p = std::find_if(m.protocols.begin(), m.protocols.end(),
                                [&](const GroupProtocol& gp) { return gp.name == *protocol; });
          result.members.push_back({mid, m.group_instance_id, p->metadata});
        }
      }
      member.session_deadline = now + member.session_timeout_ms;
      replies.emplace_back(std::exchange(member.pending_join, nullptr), std::move(result));
    }
    logger_->Info("group {}: generation {} with {} members, leader {}, protocol {}", group.id,
                  group.generation, group.members.size(), group.leader, group.protocol_name);
  }
  for (auto& [cb, result] : replies) cb(result);
}

void GroupCoordinator::Sync(const std::string& group_id, std::int32_t generation,
                            const std::string& member_id,
                            const std::vector<std::pair<std::string, std::string>>& assignments,
                            std::int64_t now, SyncCallback done) {
  auto g = groups_.find(group_id);
  if (g == groups_.end() || !g->second.members.contains(member_id)) {
    done({KafkaError::kUnknownMemberId, {}});
    return;
  }
  Group& group = g->second;
  Member& member = group.members.at(member_id);
  if (generation != group.generation) {
    done({KafkaError::kIllegalGeneration, {}});
    return;
  }
  switch (group.state) {
    case State::kEmpty: done({KafkaError::kUnknownMemberId, {}}); return;
    case State::kPreparingRebalance: done({KafkaError::kRebalanceInProgress, {}}); return;
    case State::kStable: done({KafkaError::kNone, member.assignment}); return;
    case State::kCompletingRebalance: break;
  }
  member.session_deadline = now + member.session_timeout_ms;
  if (member.pending_sync) {
    SyncCallback old = std::exchange(member.pending_sync, nullptr);
    old({KafkaError::kRebalanceInProgress, {}});
  }
  member.pending_sync = std::move(done);
  if (member_id != group.leader) return;

  for (auto& [id, m] : group.members) m.assignment.clear();
  for (const auto& [id, assignment] : assignments) {
    auto it = group.members.find(id);
    if (it != group.members.end()) it->second.assignment = assignment;
  }
  group.state = State::kStable;
  logger_->Info("group {}: generation {} stable", group.id, group.generation);
  std::vector<std::pair<SyncCallback, SyncGroupResult>> replies;
  for (auto& [id, m] : group.members) {
    if (!m.pending_sync) continue;
    m.session_deadline = now + m.session_timeout_ms;
    replies.emplace_back(std::exchange(m.pending_sync, nullptr),
                         SyncGroupResult{KafkaError::kNone, m.assignment});
  }
  for (auto& [cb, result] : replies) cb(result);
}

KafkaError GroupCoordinator::Heartbeat(const std::string& group_id, std::int32_t generation,
                                       const std::string& member_id, std::int64_t now) {
  auto g = groups_.find(group_id);
  if (g == groups_.end() || !g->second.members.contains(member_id)) {
    return KafkaError::kUnknownMemberId;
  }
  Group& group = g->second;
  Member& member = group.members.at(member_id);
  member.session_deadline = now + member.session_timeout_ms;
  if (group.state == State::kPreparingRebalance) return KafkaError::kRebalanceInProgress;
  if (generation != group.generation) return KafkaError::kIllegalGeneration;
  return KafkaError::kNone;
}

KafkaError GroupCoordinator::Leave(const std::string& group_id, const std::string& member_id,
                                   std::int64_t now) {
  auto g = groups_.find(group_id);
  if (g == groups_.end() || !g->second.members.contains(member_id)) {
    return KafkaError::kUnknownMemberId;
  }
  RemoveMember(g->second, member_id, now, "member left");
  return KafkaError::kNone;
}

void GroupCoordinator::RemoveMember(Group& group, const std::string& member_id, std::int64_t now,
                                    const char* reason) {
  Member& member = group.members.at(member_id);
  JoinCallback join = std::exchange(member.pending_join, nullptr);
  SyncCallback sync = std::exchange(member.pending_sync, nullptr);
  group.members.erase(member_id);
  std::erase(group.join_order, member_id);
  logger_->Info("group {}: member {} removed: {}", group.id, member_id, reason);
  if (group.state == State::kStable || group.state == State::kCompletingRebalance) {
    PrepareRebalance(group, now, reason);
  }
  MaybeCompleteJoin(group, now);
  if (join) join(JoinError(KafkaError::kUnknownMemberId));
  if (sync) sync({KafkaError::kUnknownMemberId, {}});
}

KafkaError GroupCoordinator::CheckOffsetCommit(const std::string& group_id, std::int32_t generation,
                                               const std::string& member_id) const {
  auto g = groups_.find(group_id);
  if (g == groups_.end() || g->second.members.empty()) {
    if (generation < 0 && member_id.empty()) return KafkaError::kNone;
    return g == groups_.end() ? KafkaError::kIllegalGeneration : KafkaError::kUnknownMemberId;
  }
  const Group& group = g->second;
  if (!group.members.contains(member_id)) return KafkaError::kUnknownMemberId;
  if (generation != group.generation) return KafkaError::kIllegalGeneration;
  // Between JoinGroup and the leader's SyncGroup the member has no
  // assignment yet; commits made during PreparingRebalance (e.g. on revoke)
  // still carry the current generation and are accepted.
  if (group.state == State::kCompletingRebalance) return KafkaError::kRebalanceInProgress;
  return KafkaError::kNone;
}

KafkaError GroupCoordinator::CheckTxnOffsetCommit(const std::string& group_id,
                                                  std::int32_t generation,
                                                  const std::string& member_id) const {
  auto g = groups_.find(group_id);
  const bool known = g != groups_.end() && g->second.members.contains(member_id);
  if (!member_id.empty() && !known) return KafkaError::kUnknownMemberId;
  const std::int32_t current = g != groups_.end() ? g->second.generation : 0;
  if (generation >= 0 && generation != current) return KafkaError::kIllegalGeneration;
  return KafkaError::kNone;
}

void GroupCoordinator::Poll(std::int64_t now) {
  for (auto& [name, group] : groups_) {
    std::vector<std::string> expired;
    for (const auto& [id, member] : group.members) {
      if (!member.pending_join && !member.pending_sync && member.session_deadline <= now) {
        expired.push_back(id);
      }
    }
    for (const std::string& id : expired) RemoveMember(group, id, now, "session timeout");
    MaybeCompleteJoin(group, now);
  }
}

std::int64_t GroupCoordinator::NextDeadlineMs() const {
  std::int64_t next = std::numeric_limits<std::int64_t>::max();
  for (const auto& [name, group] : groups_) {
    if (group.state == State::kPreparingRebalance) {
      bool all_joined = std::all_of(group.members.begin(), group.members.end(), [](const auto& kv) {
        return kv.second.pending_join != nullptr;
      });
      next = std::min(next, all_joined ? group.initial_delay_until : group.rebalance_deadline);
    }
    for (const auto& [id, member] : group.members) {
      if (!member.pending_join && !member.pending_sync) {
        next = std::min(next, member.session_deadline);
      }
    }
  }
  return next;
}

}  // namespace ctrjoin::testbroker
