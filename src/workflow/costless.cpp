#include "workflow/costless.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <queue>

#include "workflow/afcl.h"

namespace tern::workflow {

using json = nlohmann::json;

namespace {

Error bad(std::string what) { return Error(ErrorCode::kInvalidArgument, "profile: " + std::move(what)); }

Result<double> field(const json& obj, const char* key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end()) return bad(fmt::format("{}.{} is missing", where, key));
  if (!it->is_number()) return bad(fmt::format("{}.{} must be a number", where, key));
  double v = it->get<double>();
  if (!std::isfinite(v) || v < 0) return bad(fmt::format("{}.{} must be a non-negative number, got {}", where, key, v));
  return v;
}

Result<void> onlyKeys(const json& obj, std::initializer_list<const char*> keys, const std::string& where) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    bool ok = false;
    for (const char* k : keys) ok = ok || it.key() == k;
    if (!ok) return bad(fmt::format("{}: unknown field \"{}\"", where, it.key()));
  }
  return {};
}

bool nearlyEqual(double a, double b) {
  return std::fabs(a - b) <= 1e-9 * std::max({1.0, std::fabs(a), std::fabs(b)});
}

// The longest chain planned: the exact search is exponential in the worst case.
constexpr size_t kMaxChain = 40;

bool meets(double latency, double bound) { return latency <= bound || nearlyEqual(latency, bound); }

}  // namespace

Result<Profile> parseProfile(std::string_view text) {
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded()) return bad("not valid JSON");
  if (!doc.is_object()) return bad("must be a JSON object");
  if (auto ok = onlyKeys(doc, {"functions", "cloud_group_delay_ms", "prices"}, "the profile"); !ok.ok()) return ok.error();
  Profile p;
  auto fns = doc.find("functions");
  if (fns == doc.end() || !fns->is_object()) return bad("\"functions\" must be an object of NAME: {edge_ms, cloud_ms, cloud_memory_mb, transfer_ms}");
  for (auto it = fns->begin(); it != fns->end(); ++it) {
    std::string where = "functions." + it.key();
    if (!it->is_object()) return bad(where + " must be an object");
    if (auto ok = onlyKeys(*it, {"edge_ms", "cloud_ms", "cloud_memory_mb", "transfer_ms"}, where); !ok.ok()) return ok.error();
    FunctionProfile f;
    for (auto [key, slot] : {std::pair{"edge_ms", &f.edgeMs}, std::pair{"cloud_ms", &f.cloudMs},
                             std::pair{"cloud_memory_mb", &f.cloudMemoryMb}, std::pair{"transfer_ms", &f.transferMs}}) {
      auto v = field(*it, key, where);
      if (!v.ok()) return v.error();
      *slot = *v;
    }
    p.functions[it.key()] = f;
  }
  auto delay = field(doc, "cloud_group_delay_ms", "the profile");
  if (!delay.ok()) return delay.error();
  p.cloudGroupDelayMs = *delay;
  auto prices = doc.find("prices");
  if (prices == doc.end() || !prices->is_object()) return bad("\"prices\" must be an object of gb_second, request, transition, edge_fixed");
  if (auto ok = onlyKeys(*prices, {"gb_second", "request", "transition", "edge_fixed"}, "prices"); !ok.ok()) return ok.error();
  for (auto [key, slot] : {std::pair{"gb_second", &p.prices.gbSecond}, std::pair{"request", &p.prices.request},
                           std::pair{"transition", &p.prices.transition}, std::pair{"edge_fixed", &p.prices.edgeFixed}}) {
    auto v = field(*prices, key, "prices");
    if (!v.ok()) return v.error();
    *slot = *v;
  }
  return p;
}

namespace {

Result<void> collectChain(const std::vector<Element>& body, std::vector<std::string>& out) {
  for (const auto& e : body) {
    if (e.kind == Kind::kFunction) {
      out.push_back(e.name);
    } else if (e.kind == Kind::kSequence) {
      if (auto ok = collectChain(e.body, out); !ok.ok()) return ok;
    } else {
      return Error(ErrorCode::kInvalidArgument,
                   fmt::format("line {}: {} \"{}\": only chains of functions (function and sequence) "
                               "are planned; plan each chain of the workflow on its own",
                               e.mark.line, kindName(e.kind), e.name));
    }
  }
  return {};
}

// The profile of each function of the chain, in order.
Result<std::vector<FunctionProfile>> profilesOf(const std::vector<std::string>& chain, const Profile& profile) {
  if (chain.empty()) return Error(ErrorCode::kInvalidArgument, "the chain has no functions");
  std::vector<FunctionProfile> out;
  for (const auto& name : chain) {
    auto it = profile.functions.find(name);
    if (it == profile.functions.end()) return bad(fmt::format("functions.{} is missing (a function of the chain)", name));
    out.push_back(it->second);
  }
  return out;
}

// One cloud group's price: its largest member's memory (GB) x its summed duration (s) x
// gb_second, plus one request.
double groupPrice(const std::vector<FunctionProfile>& fs, size_t from, size_t to, const Prices& prices) {
  double memory = 0, ms = 0;
  for (size_t i = from; i < to; ++i) {
    memory = std::max(memory, fs[i].cloudMemoryMb);
    ms += fs[i].cloudMs;
  }
  return memory / 1024.0 * (ms / 1000.0) * prices.gbSecond + prices.request;
}

double groupMs(const std::vector<FunctionProfile>& fs, size_t from, size_t to) {
  double ms = 0;
  for (size_t i = from; i < to; ++i) ms += fs[i].cloudMs;
  return ms;
}

Plan named(const std::vector<std::string>& chain, Configuration config) {
  Plan p;
  p.edgeFunctions.assign(chain.begin(), chain.begin() + static_cast<std::ptrdiff_t>(config.edge));
  size_t at = config.edge;
  for (size_t g : config.groups) {
    p.cloudGroups.emplace_back(chain.begin() + static_cast<std::ptrdiff_t>(at),
                               chain.begin() + static_cast<std::ptrdiff_t>(at + g));
    at += g;
  }
  p.config = std::move(config);
  return p;
}

}  // namespace

Result<std::vector<std::string>> chainOf(const Workflow& workflow) {
  std::vector<std::string> out;
  if (auto ok = collectChain(workflow.body, out); !ok.ok()) return ok.error();
  if (out.empty()) return Error(ErrorCode::kInvalidArgument, "the workflow has no functions");
  return out;
}

Result<Plan> evaluatePlan(const std::vector<std::string>& chain, const Profile& profile,
                          const Configuration& config) {
  auto fs = profilesOf(chain, profile);
  if (!fs.ok()) return fs.error();
  size_t sum = config.edge;
  for (size_t g : config.groups) {
    if (g == 0) return Error(ErrorCode::kInvalidArgument, "a cloud group is empty");
    sum += g;
  }
  if (sum != chain.size()) return Error(ErrorCode::kInvalidArgument, "the configuration does not cover the chain");
  Plan p = named(chain, config);
  const Prices& prices = profile.prices;
  for (size_t i = 0; i < config.edge; ++i) p.latencyMs += (*fs)[i].edgeMs;
  if (config.edge > 0) p.price += prices.edgeFixed;
  size_t at = config.edge;
  for (size_t k = 0; k < config.groups.size(); ++k) {
    size_t to = at + config.groups[k];
    p.price += groupPrice(*fs, at, to, prices);
    p.latencyMs += groupMs(*fs, at, to);
    if (k == 0) {
      p.latencyMs += (*fs)[at].transferMs;
    } else {
      p.price += prices.transition;
      p.latencyMs += profile.cloudGroupDelayMs;
    }
    at = to;
  }
  return p;
}

bool planOrder(const Plan& a, const Plan& b) {
  if (!nearlyEqual(a.price, b.price)) return a.price < b.price;
  if (!nearlyEqual(a.latencyMs, b.latencyMs)) return a.latencyMs < b.latencyMs;
  if (a.config.edge != b.config.edge) return a.config.edge < b.config.edge;
  return a.config.groups < b.config.groups;
}

Result<std::vector<Plan>> allPlans(const std::vector<std::string>& chain, const Profile& profile) {
  size_t n = chain.size();
  if (n > 20) return Error(ErrorCode::kInvalidArgument, "--all lists chains of at most 20 functions (2^20 configurations)");
  std::vector<Plan> out;
  for (size_t edge = 0; edge <= n; ++edge) {
    size_t m = n - edge;
    if (m == 0) {
      auto p = evaluatePlan(chain, profile, Configuration{edge, {}});
      if (!p.ok()) return p.error();
      out.push_back(std::move(*p));
      continue;
    }
    // Each of the m - 1 gaps between cloud functions is a group boundary or not.
    for (uint64_t cuts = 0; cuts < (uint64_t{1} << (m - 1)); ++cuts) {
      Configuration c{edge, {}};
      size_t size = 1;
      for (size_t gap = 0; gap + 1 < m; ++gap) {
        if (cuts & (uint64_t{1} << gap)) {
          c.groups.push_back(size);
          size = 1;
        } else {
          ++size;
        }
      }
      c.groups.push_back(size);
      auto p = evaluatePlan(chain, profile, c);
      if (!p.ok()) return p.error();
      out.push_back(std::move(*p));
    }
  }
  std::sort(out.begin(), out.end(), planOrder);
  return out;
}

namespace {

// The cost graph: node 2*i + 0 is "the first i functions done, the data at the edge",
// 2*i + 1 "... in the cloud". An edge runs one function at the edge, or one fused group
// of functions [from, to) in the cloud.
struct Edge {
  int to;
  double price;
  double latency;
  size_t from, upto;  // the functions it runs
  bool cloud;
};

struct Graph {
  size_t n = 0;
  std::vector<std::vector<Edge>> out;
};

Graph buildGraph(const std::vector<FunctionProfile>& fs, const Profile& profile) {
  Graph g;
  g.n = fs.size();
  g.out.resize(2 * (g.n + 1));
  const Prices& prices = profile.prices;
  for (size_t i = 0; i < g.n; ++i) {
    int edgeNode = static_cast<int>(2 * i), cloudNode = static_cast<int>(2 * i + 1);
    // One more function at the edge (the first one pays the edge's fixed price).
    g.out[edgeNode].push_back(Edge{static_cast<int>(2 * (i + 1)), i == 0 ? prices.edgeFixed : 0.0,
                                   fs[i].edgeMs, i, i + 1, false});
    for (size_t j = i + 1; j <= g.n; ++j) {
      double price = groupPrice(fs, i, j, prices), ms = groupMs(fs, i, j);
      int target = static_cast<int>(2 * j + 1);
      // The first cloud group: the data's trip to the cloud.
      g.out[edgeNode].push_back(Edge{target, price, ms + fs[i].transferMs, i, j, true});
      // A later group: a transition and the delay between groups.
      g.out[cloudNode].push_back(Edge{target, price + prices.transition, ms + profile.cloudGroupDelayMs, i, j, true});
    }
  }
  return g;
}

struct Path {
  std::vector<const Edge*> edges;
  double price = 0, latency = 0;
};

// Dijkstra from node 0 under price + lambda * latency (non-negative weights), to the
// cheapest of the two end nodes. Ties between equal weights go to the lower node id.
Path shortest(const Graph& g, double lambda) {
  size_t nodes = g.out.size();
  std::vector<double> dist(nodes, std::numeric_limits<double>::infinity());
  std::vector<const Edge*> via(nodes, nullptr);
  std::vector<int> prev(nodes, -1);
  using Item = std::pair<double, int>;
  std::priority_queue<Item, std::vector<Item>, std::greater<>> queue;
  dist[0] = 0;
  queue.push({0, 0});
  while (!queue.empty()) {
    auto [d, v] = queue.top();
    queue.pop();
    if (d > dist[v]) continue;
    for (const Edge& e : g.out[v]) {
      double nd = d + e.price + lambda * e.latency;
      if (nd < dist[e.to]) {
        dist[e.to] = nd;
        via[e.to] = &e;
        prev[e.to] = v;
        queue.push({nd, e.to});
      }
    }
  }
  int end = dist[2 * g.n] <= dist[2 * g.n + 1] ? static_cast<int>(2 * g.n) : static_cast<int>(2 * g.n + 1);
  Path p;
  for (int v = end; prev[v] >= 0; v = prev[v]) p.edges.push_back(via[v]);
  std::reverse(p.edges.begin(), p.edges.end());
  for (const Edge* e : p.edges) {
    p.price += e->price;
    p.latency += e->latency;
  }
  return p;
}

Configuration configOf(const Path& p) {
  Configuration c;
  for (const Edge* e : p.edges) {
    if (e->cloud) {
      c.groups.push_back(e->upto - e->from);
    } else {
      ++c.edge;
    }
  }
  return c;
}

// The least price and the least latency from each node to an end, for the bounded search.
void bestToEnd(const Graph& g, std::vector<double>& price, std::vector<double>& latency) {
  size_t nodes = g.out.size();
  price.assign(nodes, std::numeric_limits<double>::infinity());
  latency.assign(nodes, std::numeric_limits<double>::infinity());
  price[2 * g.n] = price[2 * g.n + 1] = 0;
  latency[2 * g.n] = latency[2 * g.n + 1] = 0;
  for (size_t i = g.n; i-- > 0;) {
    for (int v : {static_cast<int>(2 * i + 1), static_cast<int>(2 * i)}) {
      for (const Edge& e : g.out[v]) {
        price[v] = std::min(price[v], e.price + price[e.to]);
        latency[v] = std::min(latency[v], e.latency + latency[e.to]);
      }
    }
  }
}

}  // namespace

Result<std::optional<Plan>> solvePlan(const std::vector<std::string>& chain, const Profile& profile,
                                      double bound) {
  if (!std::isfinite(bound) || bound < 0) {
    return Error(ErrorCode::kInvalidArgument, "the latency bound must be a non-negative number of ms");
  }
  auto fs = profilesOf(chain, profile);
  if (!fs.ok()) return fs.error();
  if (chain.size() > kMaxChain) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("the chain has {} functions; plans are made for at most {}", chain.size(), kMaxChain));
  }
  Graph g = buildGraph(*fs, profile);
  auto toPlan = [&](const Configuration& c) { return evaluatePlan(chain, profile, c); };

  // LARAC: the cheapest path; if too slow, the fastest; then Lagrangian steps between a
  // too-slow cheap path and a fast-enough dear one until the multiplier stops moving.
  Path cheap = shortest(g, 0);
  std::optional<Path> incumbent;
  if (meets(cheap.latency, bound)) {
    incumbent = cheap;
  } else {
    // The fastest path, price breaking ties: latency weighted far above any price.
    Path fast = shortest(g, 1e9);
    if (!meets(fast.latency, bound)) return std::optional<Plan>();
    for (int step = 0; step < 64; ++step) {
      double lambda = (fast.price - cheap.price) / (cheap.latency - fast.latency);
      if (!(lambda >= 0) || !std::isfinite(lambda)) break;
      Path r = shortest(g, lambda);
      double wr = r.price + lambda * r.latency, wc = cheap.price + lambda * cheap.latency;
      if (nearlyEqual(wr, wc)) break;
      if (meets(r.latency, bound)) {
        fast = r;
      } else {
        cheap = r;
      }
    }
    incumbent = fast;
  }

  // LARAC's path is feasible and near the optimum; a depth-first search bounded by it (and
  // by the least price and latency still to come from each node) finds the exact best plan
  // under planOrder.
  auto best = toPlan(configOf(*incumbent));
  if (!best.ok()) return best.error();
  std::vector<double> priceToEnd, latencyToEnd;
  bestToEnd(g, priceToEnd, latencyToEnd);
  Configuration current;
  std::function<void(int, double, double)> search = [&](int v, double price, double latency) {
    if (v == static_cast<int>(2 * g.n) || v == static_cast<int>(2 * g.n + 1)) {
      if (!meets(latency, bound)) return;
      auto p = toPlan(current);
      if (p.ok() && planOrder(*p, *best)) best = std::move(*p);
      return;
    }
    for (const Edge& e : g.out[v]) {
      double np = price + e.price, nl = latency + e.latency;
      if (!meets(nl + latencyToEnd[e.to], bound)) continue;
      double least = np + priceToEnd[e.to];
      if (least > best->price && !nearlyEqual(least, best->price)) continue;
      if (e.cloud) {
        current.groups.push_back(e.upto - e.from);
      } else {
        ++current.edge;
      }
      search(e.to, np, nl);
      if (e.cloud) {
        current.groups.pop_back();
      } else {
        --current.edge;
      }
    }
  };
  search(0, 0, 0);
  return std::optional<Plan>(std::move(*best));
}

json planJson(const Plan& plan, bool feasible) {
  return json{{"feasible", feasible},
              {"edge", plan.edgeFunctions},
              {"cloud_groups", plan.cloudGroups},
              {"price", plan.price},
              {"latency_ms", plan.latencyMs}};
}

}  // namespace tern::workflow
