#include "cluster/policy.h"

#include <fmt/format.h>

#include <algorithm>
#include <tuple>

#include "cluster/envelope.h"

namespace tern::cluster {

bool placementMatches(const store::FunctionSettings::Placement& p, const NodeIdentity& node) {
  if (!p.sites.empty() &&
      std::find(p.sites.begin(), p.sites.end(), node.site) == p.sites.end()) {
    return false;
  }
  if (!p.tier.empty() && p.tier != tierName(node.tier)) return false;
  for (const auto& label : p.labels) {
    if (std::find(node.labels.begin(), node.labels.end(), label) == node.labels.end()) {
      return false;
    }
  }
  return true;
}

std::vector<std::string> rankPeers(const std::vector<Member>& members, const RouteQuery& q) {
  struct Candidate {
    int suspect;
    int group;
    int64_t spare;
    uint32_t queued;
    std::string id;
  };
  std::vector<Candidate> cs;
  for (const auto& m : members) {
    const NodeInfo& n = m.info;
    if (m.state == MemberState::kSelf || n.id == q.selfId) continue;
    if (std::find(q.exclude.begin(), q.exclude.end(), n.id) != q.exclude.end()) continue;
    if (!n.functions.contains(q.function)) continue;
    if (q.need == CapacityNeed::kSpare && n.load.spare() <= 0) continue;
    int group = n.identity.site == q.selfSite ? 0 : n.identity.tier == Tier::kEdge ? 1 : 2;
    cs.push_back({m.state == MemberState::kSuspect ? 1 : 0, group, n.load.spare(), n.load.queued,
                  n.id});
  }
  std::sort(cs.begin(), cs.end(), [](const Candidate& a, const Candidate& b) {
    return std::tie(a.suspect, a.group, b.spare, a.queued, a.id) <
           std::tie(b.suspect, b.group, a.spare, b.queued, b.id);
  });
  std::vector<std::string> out;
  for (auto& c : cs) out.push_back(std::move(c.id));
  return out;
}

}  // namespace tern::cluster
