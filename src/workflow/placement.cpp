#include "workflow/placement.h"

#include <fmt/format.h>

#include <algorithm>

namespace tern::workflow {

const char* policyName(Policy p) {
  switch (p) {
    case Policy::kLocalFirst: return "local-first";
    case Policy::kSize: return "size";
    case Policy::kLatency: return "latency";
    case Policy::kRandom: return "random";
  }
  return "?";
}

Result<Policy> parsePolicy(std::string_view name) {
  for (Policy p : {Policy::kLocalFirst, Policy::kSize, Policy::kLatency, Policy::kRandom}) {
    if (name == policyName(p)) return p;
  }
  return Error(ErrorCode::kInvalidArgument,
               fmt::format("unknown placement policy \"{}\" (local-first, size, latency, random)", name));
}

namespace {

bool hasRoom(const ResourceView& r) { return r.capacity == 0 || r.inFlight < r.capacity; }

// The least busy resource with room among those `accept` admits: fewest tasks in flight
// relative to capacity, then most spare slots, then the first listed.
std::optional<size_t> leastBusy(const std::vector<ResourceView>& rs, auto accept) {
  std::optional<size_t> best;
  for (size_t i = 0; i < rs.size(); ++i) {
    if (!accept(rs[i]) || !hasRoom(rs[i])) continue;
    if (!best) {
      best = i;
      continue;
    }
    const auto& a = rs[i];
    const auto& b = rs[*best];
    if (a.inFlight < b.inFlight || (a.inFlight == b.inFlight && a.spare > b.spare)) best = i;
  }
  return best;
}

std::optional<size_t> local(const std::vector<ResourceView>& rs) {
  for (size_t i = 0; i < rs.size(); ++i) {
    if (rs[i].kind == ResourceView::Kind::kLocal) return i;
  }
  return std::nullopt;
}

}  // namespace

std::optional<size_t> placeTask(uint64_t inputBytes, const std::vector<ResourceView>& rs,
                                const PlacementParams& params, double random01) {
  if (rs.empty()) return std::nullopt;
  auto here = local(rs);
  auto notLocal = [](const ResourceView& r) { return r.kind != ResourceView::Kind::kLocal; };
  switch (params.policy) {
    case Policy::kLocalFirst:
      if (here && hasRoom(rs[*here])) return here;
      return leastBusy(rs, notLocal);
    case Policy::kSize:
      if (here && (inputBytes > params.sizeThresholdBytes ||
                   std::none_of(rs.begin(), rs.end(), notLocal))) {
        return hasRoom(rs[*here]) ? here : std::nullopt;
      }
      return leastBusy(rs, notLocal);
    case Policy::kLatency: {
      std::optional<size_t> best;
      double bestMs = 0;
      for (size_t i = 0; i < rs.size(); ++i) {
        const auto& r = rs[i];
        if (!hasRoom(r)) continue;
        // Untried resources first (0); otherwise the mean, stretched by the tasks already
        // running there and by a node's missing spare slots.
        double ms = r.expectedMs < 0 ? 0 : r.expectedMs * (1.0 + r.inFlight / double(std::max<uint32_t>(1, r.capacity)) +
                                                           (r.spare < 0 ? double(-r.spare) : 0.0));
        if (!best || ms < bestMs) {
          best = i;
          bestMs = ms;
        }
      }
      return best;
    }
    case Policy::kRandom: {
      std::vector<size_t> open;
      for (size_t i = 0; i < rs.size(); ++i) {
        if (hasRoom(rs[i])) open.push_back(i);
      }
      if (open.empty()) return std::nullopt;
      size_t pick = std::min(open.size() - 1, static_cast<size_t>(random01 * double(open.size())));
      return open[pick];
    }
  }
  return std::nullopt;
}

}  // namespace tern::workflow
