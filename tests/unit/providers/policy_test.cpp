// The built-in provider choice, from tables: each policy's order, unmeasured providers
// tried first, providers that failed recently last whatever the policy, weighted draws in
// proportion, and lowest-latency converging on the fastest provider in a simulation.

#include "providers/policy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <optional>

namespace tern::providers {
namespace {

using K = PolicySpec::Kind;
using Names = std::vector<std::string>;

struct V {
  std::string name;
  uint64_t samples = 10;
  double ewmaMs = 0;
  double p95Ms = 0;
  double failureRate = 0;
  double price = 0;
};

std::vector<ProviderView> views(const std::vector<V>& vs) {
  std::vector<ProviderView> out;
  for (const V& v : vs) {
    ProviderView p;
    p.name = v.name;
    p.samples = v.samples;
    p.ewmaMs = v.ewmaMs;
    p.p95Ms = v.p95Ms;
    p.failureRate = v.failureRate;
    p.pricePerCall = v.price;
    out.push_back(p);
  }
  return out;
}

PolicySpec spec(K kind, double boundMs = 0) {
  PolicySpec p;
  p.kind = kind;
  p.boundMs = boundMs;
  return p;
}

Names rankOnce(const PolicySpec& p, const std::vector<V>& vs, double random01 = 0.5) {
  PolicyState state;
  return rank(p, CallInfo{"f", 10}, views(vs), state, random01);
}

// A provider whose first attempt is still running is not piled onto: the others go first
// until it answers, under every policy that measures.
TEST(RankTest, AnUnmeasuredProviderWithAnAttemptInFlightWaitsForItsAnswer) {
  std::vector<ProviderView> vs(3);
  vs[0].name = "slow-first";  // no sample yet, one attempt running
  vs[0].inFlight = 1;
  vs[1].name = "b";
  vs[1].samples = 10;
  vs[1].ewmaMs = 20;
  vs[1].p95Ms = 30;
  vs[2].name = "c";
  vs[2].samples = 10;
  vs[2].ewmaMs = 10;
  vs[2].p95Ms = 15;
  PolicyState st;
  EXPECT_EQ(rank(spec(K::kLowestLatency), CallInfo{}, vs, st, 0.5), (Names{"c", "b", "slow-first"}));
  EXPECT_EQ(rank(spec(K::kCheapestWithin, 100), CallInfo{}, vs, st, 0.5).back(), "slow-first");
  for (double r : {0.0, 0.5, 0.99}) {
    EXPECT_NE(rank(spec(K::kWeighted), CallInfo{}, vs, st, r).front(), "slow-first");
  }
  vs[0].inFlight = 0;  // idle and unmeasured: tried first
  EXPECT_EQ(rank(spec(K::kLowestLatency), CallInfo{}, vs, st, 0.5).front(), "slow-first");
}

TEST(RankTest, LowestLatencyFromATable) {
  struct Row {
    std::vector<V> views;
    Names expected;
  } rows[] = {
      {{{"a", 10, 30}, {"b", 10, 10}, {"c", 10, 20}}, {"b", "c", "a"}},
      {{{"a", 10, 5}, {"b", 0, 0}, {"c", 10, 1}}, {"b", "c", "a"}},             // unmeasured first
      {{{"a", 0, 0}, {"b", 0, 0}, {"c", 10, 1}}, {"a", "b", "c"}},              // in the route's order
      {{{"a", 10, 10}, {"b", 10, 10}, {"c", 10, 5}}, {"c", "a", "b"}},          // ties keep the order
      {{{"a", 10, 1, 0, 0.6}, {"b", 10, 50}, {"c", 10, 20}}, {"c", "b", "a"}},  // failing: last
      {{{"a", 0, 0, 0, 0.6}, {"b", 10, 50}}, {"b", "a"}},                       // even unmeasured
      {{{"a", 10, 1, 0, 0.9}, {"b", 10, 2, 0, 0.5}, {"c", 10, 80, 0, 0.34}}, {"c", "a", "b"}},
      {{{"a", 10, 1, 0, 0.3}, {"b", 10, 50}}, {"a", "b"}},  // one failure alone: still first
      {{{"only", 10, 10}}, {"only"}},
      {{}, {}},
  };
  for (const auto& r : rows) {
    EXPECT_EQ(rankOnce(spec(K::kLowestLatency), r.views), r.expected);
    // A wasm policy ranked here (its function failed) falls back to lowest-latency.
    PolicySpec wasm = spec(K::kWasm);
    wasm.function = "my-policy";
    EXPECT_EQ(rankOnce(wasm, r.views), r.expected);
  }
}

TEST(RankTest, AProviderThatFailedRecentlyRanksLastUnderEveryPolicy) {
  // "fast" would come first under each policy but fails 60% of its attempts.
  std::vector<V> vs = {{"fast", 10, 1, 2, 0.6, 0}, {"b", 10, 20, 25, 0, 1}, {"c", 10, 30, 35, 0.1, 2}};
  for (auto p : {spec(K::kRoundRobin), spec(K::kLowestLatency), spec(K::kWeighted), spec(K::kCheapestWithin, 100),
                 spec(K::kSingle), spec(K::kWasm)}) {
    for (double random01 : {0.0, 0.3, 0.99}) {
      PolicyState state;
      for (int call = 0; call < 3; ++call) {
        Names got = rank(p, CallInfo{"f", 0}, views(vs), state, random01);
        ASSERT_EQ(got.size(), 3u);
        EXPECT_EQ(got.back(), "fast") << policyText(p) << " call " << call << " random " << random01;
      }
    }
  }
}

TEST(RankTest, RoundRobinCyclesThroughTheHealthyProviders) {
  std::vector<V> vs = {{"a", 10, 50}, {"b", 10, 1}, {"c", 0, 0}};
  PolicyState state;
  std::vector<Names> got;
  for (int i = 0; i < 4; ++i) got.push_back(rank(spec(K::kRoundRobin), CallInfo{}, views(vs), state, 0.5));
  EXPECT_EQ(got[0], (Names{"a", "b", "c"}));
  EXPECT_EQ(got[1], (Names{"b", "c", "a"}));
  EXPECT_EQ(got[2], (Names{"c", "a", "b"}));
  EXPECT_EQ(got[3], (Names{"a", "b", "c"}));
  EXPECT_EQ(state.turn, 4u);

  // With "b" failing, "a" and "c" alternate in front and "b" stays last.
  vs[1].failureRate = 0.7;
  PolicyState s2;
  std::map<std::string, int> first;
  for (int i = 0; i < 10; ++i) {
    Names n = rank(spec(K::kRoundRobin), CallInfo{}, views(vs), s2, 0.5);
    ++first[n.front()];
    EXPECT_EQ(n.back(), "b");
  }
  EXPECT_EQ(first["a"], 5);
  EXPECT_EQ(first["c"], 5);

  // Other policies leave the state alone.
  PolicyState s3;
  rank(spec(K::kLowestLatency), CallInfo{}, views(vs), s3, 0.5);
  EXPECT_EQ(s3.turn, 0u);
}

TEST(RankTest, SingleKeepsTheRoutesOrder) {
  struct Row {
    std::vector<V> views;
    Names expected;
  } rows[] = {
      {{{"base", 10, 90}, {"b", 10, 1}, {"c", 0, 0}}, {"base", "b", "c"}},
      {{{"base", 10, 90, 0, 0.8}, {"b", 10, 1}, {"c", 0, 0}}, {"b", "c", "base"}},  // failover first
  };
  for (const auto& r : rows) {
    PolicyState state;
    for (int i = 0; i < 3; ++i) EXPECT_EQ(rank(spec(K::kSingle), CallInfo{}, views(r.views), state, 0.1), r.expected);
  }
}

TEST(RankTest, CheapestWithinFromATable) {
  struct Row {
    double boundMs;
    std::vector<V> views;  // name, samples, ewma, p95, failure rate, price
    Names expected;
  } rows[] = {
      // The cheapest of those with p95 <= 50 (c), then b, then the slow free one.
      {50, {{"free", 10, 60, 80, 0, 0}, {"b", 10, 20, 30, 0, 1}, {"c", 10, 40, 45, 0, 0.5}}, {"c", "b", "free"}},
      // A bound every provider meets: the cheapest.
      {100, {{"free", 10, 60, 80, 0, 0}, {"b", 10, 20, 30, 0, 1}, {"c", 10, 40, 45, 0, 0.5}}, {"free", "c", "b"}},
      // None meets it: the fastest by p95 first.
      {10, {{"free", 10, 60, 80, 0, 0}, {"b", 10, 20, 30, 0, 1}, {"c", 10, 40, 45, 0, 0.5}}, {"b", "c", "free"}},
      // The bound is inclusive: c's p95 of 45 meets 45.
      {45, {{"free", 10, 60, 80, 0, 0}, {"b", 10, 20, 30, 0, 1}, {"c", 10, 40, 45, 0, 0.5}}, {"c", "b", "free"}},
      // Only b meets the bound: b, then the rest by p95.
      {44, {{"free", 10, 60, 80, 0, 0}, {"b", 10, 20, 30, 0, 1}, {"c", 10, 40, 45, 0, 0.5}}, {"b", "c", "free"}},
      // Equal prices: by latency.
      {50, {{"x", 10, 30, 40, 0, 1}, {"y", 10, 20, 40, 0, 1}, {"z", 10, 10, 90, 0, 0}}, {"y", "x", "z"}},
      // Unmeasured counts as within the bound, ranked by its price.
      {50, {{"new", 0, 0, 0, 0, 0.7}, {"b", 10, 20, 30, 0, 1}, {"c", 10, 40, 45, 0, 0.5}}, {"c", "new", "b"}},
      {10, {{"new", 0, 0, 0, 0, 0.7}, {"b", 10, 20, 30, 0, 1}}, {"new", "b"}},
      // A cheap provider within the bound that failed recently goes last.
      {50, {{"cheap", 10, 5, 5, 0.6, 0}, {"b", 10, 20, 30, 0, 1}, {"slow", 10, 90, 99, 0, 0}}, {"b", "slow", "cheap"}},
  };
  for (const auto& r : rows) {
    EXPECT_EQ(rankOnce(spec(K::kCheapestWithin, r.boundMs), r.views), r.expected) << "bound " << r.boundMs;
  }
}

TEST(RankTest, WeightedDrawsInProportionToTheInverseLatency) {
  // Weights 1/10, 1/40 and 1/20: a draws 4/7 of calls, b 1/7, c 2/7.
  std::vector<V> vs = {{"a", 10, 10}, {"b", 10, 40}, {"c", 10, 20}};
  struct Row {
    double random01;
    Names expected;  // the drawn one first, the rest by latency
  } rows[] = {
      {0.0, {"a", "c", "b"}},  {0.3, {"a", "c", "b"}},  {0.57, {"a", "c", "b"}},
      {0.58, {"b", "a", "c"}}, {0.70, {"b", "a", "c"}}, {0.72, {"c", "a", "b"}},
      {0.99, {"c", "a", "b"}}, {1.0, {"c", "a", "b"}},  // clamped: the last
  };
  for (const auto& r : rows) EXPECT_EQ(rankOnce(spec(K::kWeighted), vs, r.random01), r.expected) << r.random01;

  std::map<std::string, int> first;
  const int n = 7000;
  for (int i = 0; i < n; ++i) ++first[rankOnce(spec(K::kWeighted), vs, (i + 0.5) / n).front()];
  EXPECT_NEAR(first["a"], 4000, 1);
  EXPECT_NEAR(first["b"], 1000, 1);
  EXPECT_NEAR(first["c"], 2000, 1);

  // Unmeasured is drawn first whatever the draw; a failing provider is never drawn.
  std::vector<V> fresh = {{"a", 10, 10}, {"new", 0, 0}, {"c", 10, 20}};
  for (double r : {0.0, 0.5, 0.99}) EXPECT_EQ(rankOnce(spec(K::kWeighted), fresh, r), (Names{"new", "a", "c"}));
  std::vector<V> failing = {{"a", 10, 10, 0, 0.6}, {"b", 10, 40}, {"c", 10, 20}};
  std::map<std::string, int> drawn;
  for (int i = 0; i < 300; ++i) {
    Names got = rankOnce(spec(K::kWeighted), failing, (i + 0.5) / 300);
    ++drawn[got.front()];
    EXPECT_EQ(got.back(), "a");
  }
  EXPECT_EQ(drawn["a"], 0);
  EXPECT_NEAR(drawn["b"], 100, 1);  // 1/40 of (1/40 + 1/20)
  EXPECT_NEAR(drawn["c"], 200, 1);
}

// Calls a route `calls` times: each call tries the ranked providers in order until one
// answers (latency set) or none is left, recording every attempt in that provider's
// statistics. Returns the number of calls each provider answered.
std::map<std::string, int> simulate(const PolicySpec& policy, const std::map<std::string, std::optional<double>>& latency,
                                    const Names& route, int calls) {
  std::map<std::string, Stats> stats;
  for (const auto& name : route) stats.try_emplace(name);
  std::map<std::string, int> answered;
  PolicyState state;
  int64_t now = 0;
  for (int i = 0; i < calls; ++i) {
    std::vector<ProviderView> vs;
    for (const auto& name : route) {
      ProviderView v = stats.at(name).view(now);
      v.name = name;
      vs.push_back(v);
    }
    // An evenly spread sequence in [0, 1) stands in for the random draws.
    double random01 = std::fmod(i * 0.6180339887498949, 1.0);
    for (const auto& name : rank(policy, CallInfo{"f", 1}, vs, state, random01)) {
      auto l = latency.at(name);
      stats.at(name).record(l.has_value(), l.value_or(0), now += 5);
      if (l) {
        ++answered[name];
        break;
      }
    }
  }
  return answered;
}

TEST(RankTest, LowestLatencyConvergesOnTheFastestProvider) {
  struct Row {
    std::map<std::string, std::optional<double>> latency;
    std::string fastest;
    int atLeast;  // of 200 calls
  } rows[] = {
      {{{"local", 40.0}, {"edge", 8.0}, {"cloud", 25.0}}, "edge", 197},        // each tried once, then edge
      {{{"local", 2.0}, {"edge", 8.0}, {"cloud", 25.0}}, "local", 198},
      {{{"local", 40.0}, {"edge", std::nullopt}, {"cloud", 25.0}}, "cloud", 197},  // edge fails: skipped
  };
  for (const auto& r : rows) {
    auto answered = simulate(spec(K::kLowestLatency), r.latency, {"local", "edge", "cloud"}, 200);
    EXPECT_GE(answered[r.fastest], r.atLeast) << r.fastest;
  }
  // Weighted spreads calls by speed: the fastest answers most, the others still some.
  auto spread = simulate(spec(K::kWeighted), {{"local", 40.0}, {"edge", 10.0}, {"cloud", 20.0}},
                         {"local", "edge", "cloud"}, 700);
  EXPECT_GT(spread["edge"], spread["cloud"]);
  EXPECT_GT(spread["cloud"], spread["local"]);
  EXPECT_GT(spread["local"], 0);
}

}  // namespace
}  // namespace tern::providers
