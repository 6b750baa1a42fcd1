#include "device/decision.h"

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace tern::device {

const char* whereName(Where w) {
  switch (w) {
    case Where::kLocal: return "local";
    case Where::kEdge: return "edge";
    case Where::kCloud: return "cloud";
  }
  return "local";
}

Result<Policy> parsePolicy(std::string_view name) {
  if (name == "local") return Policy::kLocal;
  if (name == "edge") return Policy::kEdge;
  if (name == "cloud") return Policy::kCloud;
  if (name == "adaptive") return Policy::kAdaptive;
  return Error(ErrorCode::kInvalidArgument,
               fmt::format("unknown policy \"{}\" (local, edge, cloud, adaptive)", name));
}

const char* policyName(Policy p) {
  switch (p) {
    case Policy::kLocal: return "local";
    case Policy::kEdge: return "edge";
    case Policy::kCloud: return "cloud";
    case Policy::kAdaptive: return "adaptive";
  }
  return "adaptive";
}

void record(History& h, size_t i, std::optional<double> latencyMs, size_t window) {
  if (h.windows.size() <= i) h.windows.resize(i + 1);
  Window& w = h.windows[i];
  if (latencyMs) latencyMs = std::max(*latencyMs, 1e-3);
  w.samples.push_back(latencyMs);
  ++w.total;
  while (w.samples.size() > std::max<size_t>(window, 1)) w.samples.pop_front();
}

Result<ClusterEnvironments> environmentsFromCluster(std::string_view nodesJson) {
  auto doc = nlohmann::json::parse(nodesJson, nullptr, false);
  if (!doc.is_object() || !doc.contains("nodes") || !doc["nodes"].is_array()) {
    return Error(ErrorCode::kInvalidArgument, "not a cluster's node list (no \"nodes\" array)");
  }
  ClusterEnvironments out;
  for (const auto& n : doc["nodes"]) {
    auto text = [&](const char* key) {
      return n.is_object() && n.contains(key) && n[key].is_string() ? n[key].get<std::string>() : std::string();
    };
    std::string http = text("http");
    if (http.empty() || text("state") == "suspect") continue;
    // A node serving TLS advertises its https:// URL; others HOST:PORT. A value with any
    // other scheme, or with nothing after it, is no node's address: the node is left out.
    std::string url;
    if (http.find("://") == std::string::npos) {
      url = "http://" + http;
    } else if ((http.starts_with("http://") && http.size() > 7) || (http.starts_with("https://") && http.size() > 8)) {
      url = http;
    } else {
      continue;
    }
    (text("tier") == "cloud" ? out.clouds : out.edges).push_back(std::move(url));
  }
  return out;
}

double normalQuantile(double p) {
  // Acklam's algorithm: rational approximations in the central region and the tails.
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                             1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                             6.680131188771972e+01, -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                             -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                             3.754408661907416e+00};
  const double low = 0.02425, high = 1 - low;
  p = std::clamp(p, 1e-300, 1 - 1e-16);
  if (p < low) {
    double q = std::sqrt(-2 * std::log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
           ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > high) {
    double q = std::sqrt(-2 * std::log(1 - p));
    return -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
           ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  double q = p - 0.5, r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
         (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

std::optional<size_t> nearestEdge(const std::vector<std::optional<double>>& rtts,
                                  std::optional<size_t> current, double hysteresis) {
  std::optional<size_t> best;
  for (size_t k = 0; k < rtts.size(); ++k) {
    if (rtts[k] && (!best || *rtts[k] < *rtts[*best])) best = k;
  }
  if (!best) return std::nullopt;
  if (current && *current < rtts.size() && rtts[*current] &&
      *rtts[*best] * (1 + hysteresis) >= *rtts[*current]) {
    return current;
  }
  return best;
}

std::vector<Score> scores(const History& history, const DecisionParams& params) {
  // Rewards are relative to the best mean latency of any window: a call that fast or faster
  // scores 1, one twice as slow 0.5, a failure 0. So they stay in [0, 1], as UCB1 wants,
  // and one lucky call does not squeeze every other reward towards 0.
  double fastest = std::numeric_limits<double>::infinity();
  size_t n = 0;
  for (const auto& w : history.windows) {
    n += w.samples.size();
    double sum = 0;
    size_t ok = 0;
    for (const auto& s : w.samples) {
      if (!s) continue;
      sum += *s;
      ++ok;
    }
    if (ok) fastest = std::min(fastest, sum / static_cast<double>(ok));
  }
  std::vector<Score> out;
  for (const auto& w : history.windows) {
    Score s;
    s.samples = w.samples.size();
    if (s.samples == 0) {
      s.mean = 0;
      s.bound = std::numeric_limits<double>::infinity();
      out.push_back(s);
      continue;
    }
    std::vector<double> rewards;
    for (const auto& x : w.samples) rewards.push_back(x && std::isfinite(fastest) ? std::min(1.0, fastest / *x) : 0.0);
    double sum = 0;
    for (double r : rewards) sum += r;
    s.mean = sum / static_cast<double>(s.samples);
    double k = static_cast<double>(s.samples);
    if (params.algorithm == Algorithm::kUcb1) {
      s.bound = s.mean + params.exploration * std::sqrt(2 * std::log(static_cast<double>(n)) / k);
    } else {
      // Bayes-UCB with a normal posterior of the mean: its 1 - 1/(n + 1) quantile. The
      // sample spread has a floor, so a window of identical calls still explores a little.
      double var = 0;
      for (double r : rewards) var += (r - s.mean) * (r - s.mean);
      double sd = s.samples >= 2 ? std::sqrt(var / (k - 1)) : 0.5;
      sd = std::max(sd, 0.05);
      s.bound = s.mean + normalQuantile(1 - 1 / (static_cast<double>(n) + 1)) * sd / std::sqrt(k);
    }
    out.push_back(s);
  }
  return out;
}

std::optional<size_t> choose(const std::vector<Environment>& envs, const History& history,
                             const DecisionParams& params, Force force, bool localAllowed,
                             std::optional<size_t> edgeIndex) {
  auto firstOf = [&](Where w) -> std::optional<size_t> {
    if (w == Where::kEdge && edgeIndex && *edgeIndex < envs.size() && envs[*edgeIndex].where == Where::kEdge) {
      return *edgeIndex;
    }
    for (size_t i = 0; i < envs.size(); ++i) {
      if (envs[i].where == w) return i;
    }
    return std::nullopt;
  };
  if (force == Force::kLocal) return localAllowed ? firstOf(Where::kLocal) : std::nullopt;
  if (params.policy == Policy::kEdge) return firstOf(Where::kEdge);
  if (params.policy == Policy::kCloud) return firstOf(Where::kCloud);
  if (params.policy == Policy::kLocal && force == Force::kNone) {
    return localAllowed ? firstOf(Where::kLocal) : std::nullopt;
  }
  // Adaptive (or local forced remote): the device itself, its attached edge and the cloud.
  std::vector<size_t> candidates;
  auto edge = firstOf(Where::kEdge);
  for (size_t i = 0; i < envs.size(); ++i) {
    Where w = envs[i].where;
    if (w == Where::kLocal && (!localAllowed || force == Force::kRemote)) continue;
    if (w == Where::kEdge && edge != i) continue;
    candidates.push_back(i);
  }
  if (candidates.empty()) return std::nullopt;
  History h = history;
  if (h.windows.size() < envs.size()) h.windows.resize(envs.size());
  // Only the candidates' windows count (an edge the device left keeps its history).
  History seen;
  for (size_t i : candidates) seen.windows.push_back(h.windows[i]);
  auto s = scores(seen, params);
  size_t best = 0;
  for (size_t k = 0; k < candidates.size(); ++k) {
    if (s[k].samples == 0) return candidates[k];  // untried first, in order
    if (s[k].bound > s[best].bound) best = k;
  }
  return candidates[best];
}

}  // namespace tern::device
