#include "providers/policy.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>

namespace tern::providers {

namespace {

// With failures weighted 0.3, one failure among successes (0.3) is not enough; two close
// together (0.51), or one attempt in two (0.41-0.59), are.
constexpr double kFailedRate = 0.35;
// A latency key after every measured one, for a provider whose first attempt is still
// running: it is being measured, and calls wait for the answer instead of piling onto it.
constexpr double kAwaitingKey = 1e300;
// The smallest latency a weight is computed from: a 0 ms mean (a sub-millisecond
// provider) gets a large finite weight, not an infinite one.
constexpr double kMinWeightedMs = 1e-3;

using Views = std::vector<const ProviderView*>;

// A latency as a sort key: a provider without samples sorts before every measured one, and
// a value that is not a finite number after every one.
double latencyKey(const ProviderView& v, double ms) {
  if (v.samples == 0) return v.inFlight == 0 ? -1 : kAwaitingKey;
  return std::isfinite(ms) && ms >= 0 ? ms : std::numeric_limits<double>::infinity();
}

void byLatency(Views& vs) {
  std::stable_sort(vs.begin(), vs.end(), [](const ProviderView* a, const ProviderView* b) {
    return latencyKey(*a, a->ewmaMs) < latencyKey(*b, b->ewmaMs);
  });
}

void rotate(Views& vs, uint64_t turn) {
  if (vs.empty()) return;
  std::rotate(vs.begin(), vs.begin() + static_cast<ptrdiff_t>(turn % vs.size()), vs.end());
}

// One provider drawn with probability proportional to 1/ewmaMs (an unmeasured provider
// first, as the fastest), in front of the others by latency.
void weighted(Views& vs, double random01) {
  if (vs.empty()) return;
  size_t chosen = vs.size();
  for (size_t i = 0; i < vs.size() && chosen == vs.size(); ++i) {
    if (vs[i]->samples == 0 && vs[i]->inFlight == 0) chosen = i;
  }
  if (chosen == vs.size()) {
    std::vector<double> weights;
    double total = 0;
    for (const ProviderView* v : vs) {
      double ms = latencyKey(*v, v->ewmaMs);
      double w = std::isinf(ms) || ms >= kAwaitingKey ? 0.0 : 1.0 / std::max(ms, kMinWeightedMs);
      weights.push_back(w);
      total += w;
    }
    double r = std::isfinite(random01) ? std::clamp(random01, 0.0, 1.0) : 0.0;
    double target = r * total;
    double cumulative = 0;
    chosen = 0;
    for (size_t i = 0; i < vs.size(); ++i) {
      if (weights[i] <= 0) continue;
      chosen = i;  // the last with a weight, should rounding leave the target past the end
      cumulative += weights[i];
      if (target < cumulative) break;
    }
  }
  const ProviderView* first = vs[chosen];
  vs.erase(vs.begin() + static_cast<ptrdiff_t>(chosen));
  byLatency(vs);
  vs.insert(vs.begin(), first);
}

// Those meeting the bound (unmeasured ones do) by price then latency, then the rest by p95.
void cheapestWithin(Views& vs, double boundMs) {
  auto within = [boundMs](const ProviderView* v) {
    return v->samples == 0 ? v->inFlight == 0 : v->p95Ms <= boundMs;
  };
  auto price = [](const ProviderView* v) {
    return std::isfinite(v->pricePerCall) ? v->pricePerCall : std::numeric_limits<double>::infinity();
  };
  std::stable_sort(vs.begin(), vs.end(), [&](const ProviderView* a, const ProviderView* b) {
    bool aIn = within(a), bIn = within(b);
    if (aIn != bIn) return aIn;
    if (aIn) {
      return std::make_tuple(price(a), latencyKey(*a, a->ewmaMs)) <
             std::make_tuple(price(b), latencyKey(*b, b->ewmaMs));
    }
    return latencyKey(*a, a->p95Ms) < latencyKey(*b, b->p95Ms);
  });
}

void order(const PolicySpec& policy, Views& vs, uint64_t turn, double random01) {
  using K = PolicySpec::Kind;
  switch (policy.kind) {
    case K::kRoundRobin: rotate(vs, turn); return;
    case K::kWeighted: weighted(vs, random01); return;
    case K::kCheapestWithin: cheapestWithin(vs, policy.boundMs); return;
    case K::kSingle: return;
    case K::kLowestLatency:
    case K::kWasm: byLatency(vs); return;
  }
}

}  // namespace

std::vector<std::string> rank(const PolicySpec& policy, const CallInfo& /*call*/,
                              const std::vector<ProviderView>& views, PolicyState& state,
                              double random01) {
  // Each group is ordered by the policy on its own, so round-robin rotates among the
  // healthy providers and weighted draws only among them.
  Views healthy, failed;
  for (const ProviderView& v : views) (v.failureRate >= kFailedRate ? failed : healthy).push_back(&v);
  uint64_t turn = 0;
  if (policy.kind == PolicySpec::Kind::kRoundRobin) turn = state.turn++;
  order(policy, healthy, turn, random01);
  PolicySpec failedPolicy = policy;
  if (policy.kind == PolicySpec::Kind::kWeighted) failedPolicy.kind = PolicySpec::Kind::kLowestLatency;
  order(failedPolicy, failed, turn, random01);
  std::vector<std::string> out;
  out.reserve(views.size());
  for (const ProviderView* v : healthy) out.push_back(v->name);
  for (const ProviderView* v : failed) out.push_back(v->name);
  return out;
}

}  // namespace tern::providers
