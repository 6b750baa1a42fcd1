#pragma once
// Cost-aware fusion and placement of a function chain (Costless, Elgamal et al., SEC'18;
// docs/design/costless.md). A configuration runs an edge prefix of the chain at the edge
// and splits the cloud suffix into fused groups of consecutive functions. Its price and
// latency follow the model in the design note; `solvePlan` finds the cheapest
// configuration whose latency meets a bound, as a constrained shortest path (LARAC, then a
// bounded search that closes the remaining gap, so the answer is exact). Pure functions:
// tested against brute-force enumeration from tables.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "util/error.h"

namespace tern::workflow {

struct Workflow;

struct FunctionProfile {
  double edgeMs = 0;
  double cloudMs = 0;
  double cloudMemoryMb = 0;
  double transferMs = 0;  // the input's trip to the cloud when this function is the first there
};

struct Prices {
  double gbSecond = 0;
  double request = 0;
  double transition = 0;
  double edgeFixed = 0;
};

struct Profile {
  std::map<std::string, FunctionProfile> functions;
  double cloudGroupDelayMs = 0;
  Prices prices;
};

// {"functions": {"NAME": {"edge_ms", "cloud_ms", "cloud_memory_mb", "transfer_ms"}},
//  "cloud_group_delay_ms", "prices": {"gb_second", "request", "transition", "edge_fixed"}}.
// Errors: kInvalidArgument naming the field (missing, not a number, negative, unknown).
Result<Profile> parseProfile(std::string_view json);

// The chain of a workflow: its functions in order, when its body is only functions and
// sequences of them. Errors: kInvalidArgument naming the first other element and its line.
Result<std::vector<std::string>> chainOf(const Workflow& workflow);

// A configuration of a chain of n functions: the first `edge` run at the edge; the rest
// in cloud groups of the given sizes (summing to n - edge).
struct Configuration {
  size_t edge = 0;
  std::vector<size_t> groups;
};

struct Plan {
  Configuration config;
  std::vector<std::string> edgeFunctions;
  std::vector<std::vector<std::string>> cloudGroups;
  double price = 0;
  double latencyMs = 0;
};

// Price and latency of one configuration. Errors: kInvalidArgument when a function of the
// chain has no profile.
Result<Plan> evaluatePlan(const std::vector<std::string>& chain, const Profile& profile,
                          const Configuration& config);

// Every configuration (2^n of them), each evaluated, cheapest first (by planOrder).
Result<std::vector<Plan>> allPlans(const std::vector<std::string>& chain, const Profile& profile);

// The total order plans are chosen by: lower price, then lower latency, then fewer edge
// functions, then the group sizes in lexicographic order. Prices and latencies within a
// relative 1e-9 count as equal.
bool planOrder(const Plan& a, const Plan& b);

// The best plan (by planOrder) whose latency is at most `latencyBoundMs`; nullopt when
// none meets it. Errors: kInvalidArgument (a function without a profile, a bound that is
// negative or not finite, an empty chain).
Result<std::optional<Plan>> solvePlan(const std::vector<std::string>& chain, const Profile& profile,
                                      double latencyBoundMs);

// {"feasible", "edge": [...], "cloud_groups": [[...]], "price", "latency_ms"}.
nlohmann::json planJson(const Plan& plan, bool feasible);

}  // namespace tern::workflow
