#pragma once
// Where a device runs each call (docs/design/devices.md, after Pinto et al., EUC'18): on
// the device itself, at an edge node, or in the cloud tier. The forced policies always
// pick their kind; the adaptive one is a bandit over the measured end-to-end latency of
// each environment (network included). Every environment is tried once before any is
// preferred; then UCB1 (or Bayes-UCB) over a sliding window of the last calls of each, so
// that the choice follows change. A remote call that fails or times out is charged to its
// environment as a zero reward (the caller falls back to local). Pure: the history is
// plain data, the choice a function of it, tested from tables
// (tests/unit/device/decision_test.cpp).

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.h"

namespace tern::device {

enum class Where : uint8_t { kLocal, kEdge, kCloud };
const char* whereName(Where w);

enum class Policy : uint8_t { kLocal, kEdge, kCloud, kAdaptive };
Result<Policy> parsePolicy(std::string_view name);
const char* policyName(Policy p);

// A per-call override of the policy: run it here, or anywhere but here.
enum class Force : uint8_t { kNone, kLocal, kRemote };

enum class Algorithm : uint8_t { kUcb1, kBayesUcb };

struct Environment {
  Where where = Where::kLocal;
  std::string id;  // "local", or the node's URL
};

// One environment's recent calls: each a latency in milliseconds, or a failure.
struct Window {
  std::deque<std::optional<double>> samples;  // newest last; nullopt: failed
  uint64_t total = 0;                         // calls ever recorded
};

struct DecisionParams {
  Policy policy = Policy::kAdaptive;
  Algorithm algorithm = Algorithm::kUcb1;
  size_t window = 32;        // calls remembered per environment
  double exploration = 1.0;  // UCB1's exploration weight c
};

// The environments' histories, index by index.
struct History {
  std::vector<Window> windows;
};

// Records one call of environment `i`: its end-to-end latency, or nullopt for a failure.
// Keeps the last `window` samples.
void record(History& h, size_t i, std::optional<double> latencyMs, size_t window);

// The environment for the next call, or nullopt when none may run it (`localAllowed`
// false and no remote environment; a forced policy whose kind is not among them).
// `edgeIndex`: the attached edge among several edges (mobility); nullopt: the first edge.
std::optional<size_t> choose(const std::vector<Environment>& envs, const History& history,
                             const DecisionParams& params, Force force, bool localAllowed,
                             std::optional<size_t> edgeIndex = std::nullopt);

// The scores behind an adaptive choice, for tests and `--json` diagnostics: each
// environment's mean reward in its window (reward: the best mean latency of all windows
// over this sample's latency, 0 for a failure) and its upper bound; untried environments
// score +infinity.
struct Score {
  double mean = 0;
  double bound = 0;
  size_t samples = 0;
};
std::vector<Score> scores(const History& history, const DecisionParams& params);

// Which edge a device attaches to (mobility): the reachable edge with the shortest round
// trip, `rtts[k]` being edge k's (nullopt: unreachable). The current one is kept unless it
// is unreachable or another is faster by more than `hysteresis` (a fraction: 0.2 means
// 20% faster), so that noise does not move the device back and forth. nullopt: none is
// reachable.
std::optional<size_t> nearestEdge(const std::vector<std::optional<double>>& rtts,
                                  std::optional<size_t> current, double hysteresis = 0.2);

// The environments a cluster lists (GET /v1/cluster/nodes, what `tern nodes` shows): the
// HTTP URL of every node that is not suspect, by tier: http://HOST:PORT, or the
// https:// URL a node serving TLS advertises. A node whose address has another scheme is
// left out. Errors: kInvalidArgument (not such a listing).
struct ClusterEnvironments {
  std::vector<std::string> edges;
  std::vector<std::string> clouds;
};
Result<ClusterEnvironments> environmentsFromCluster(std::string_view nodesJson);

// The standard normal quantile (Acklam's rational approximation, |error| < 1.2e-9), for
// Bayes-UCB. p in (0, 1).
double normalQuantile(double p);

}  // namespace tern::device
