#pragma once
// The cluster's decisions, as pure functions of a view (no I/O, no clock), so they are
// tested from tables: whether a function's placement admits a node, and which peers a
// call should go to, best first.

#include <string>
#include <vector>

#include "cluster/membership.h"
#include "store/registry.h"
#include "util/error.h"

namespace tern::cluster {

// Whether a node with `identity` serves functions deployed with `placement`: its site is
// one of placement.sites (any when empty), its tier is placement.tier (any when empty),
// and it carries every label of placement.labels.
bool placementMatches(const store::FunctionSettings::Placement& placement,
                      const NodeIdentity& identity);

// Whether the chosen peer must have spare capacity (spill) or may queue the call
// (the function is not served here at all).
enum class CapacityNeed { kAny, kSpare };

struct RouteQuery {
  std::string function;
  std::string selfId;
  std::string selfSite;
  CapacityNeed need = CapacityNeed::kAny;
  std::vector<std::string> exclude;  // peers already tried
};

// Peers that serve `q.function`, best first: same site, then other edge sites, then the
// cloud tier; within a group the most spare capacity first, then the shortest queue, then
// by id. Suspect members (silent for a while) come after every alive one. With
// CapacityNeed::kSpare only peers with spare capacity qualify.
std::vector<std::string> rankPeers(const std::vector<Member>& members, const RouteQuery& q);

}  // namespace tern::cluster
