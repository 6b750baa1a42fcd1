#pragma once
// The built-in provider choice (docs/design/providers.md): pure functions from the call and
// the providers' statistics to a ranking (best first). The router tries providers in that
// order until one answers. Table-driven tests in tests/unit/providers/.

#include <cstdint>
#include <string>
#include <vector>

#include "providers/provider.h"
#include "providers/stats.h"

namespace tern::providers {

struct CallInfo {
  std::string function;
  size_t size = 0;       // request body bytes
};

// State a policy keeps between calls of one route (round-robin's position).
struct PolicyState {
  uint64_t turn = 0;
};

// Ranks `views` (one per provider of the route, in the route's order) for a call. Every
// provider appears once. `random01` is uniform in [0, 1) (weighted). Rules:
// - providers that failed recently (failureRate >= 0.35: two failures close together, or
//   one attempt in two) go after the others, whatever the policy, so that failover reaches
//   the healthy ones first;
// - a provider with no samples and no attempt in flight counts as the fastest for
//   lowest-latency and weighted (it is measured by being used), and as meeting the bound
//   for cheapest-within; while its first attempt runs it goes after the measured ones
//   (calls wait for that answer instead of piling onto it);
// - round-robin: the route's order rotated by state.turn (incremented);
// - lowest-latency: by ewmaMs; weighted: one provider drawn with weight 1/ewmaMs first,
//   the rest by ewmaMs; cheapest-within: those with p95Ms <= boundMs by price (then
//   latency), then the rest by p95; single: the route's order.
// kWasm is ranked by the router with the function's answer (wasm_policy.h); given here, it
// ranks as lowest-latency (the fall-back).
std::vector<std::string> rank(const PolicySpec& policy, const CallInfo& call,
                              const std::vector<ProviderView>& views, PolicyState& state,
                              double random01);

}  // namespace tern::providers
