// The Costless model priced by hand, and the solver against brute force from tables and
// from seeded random profiles, including ties and every bound between neighbouring plans.

#include "workflow/costless.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <random>

#include "workflow/afcl.h"

namespace tern::workflow {
namespace {

Profile threeFunctions() {
  Profile p;
  p.functions["A"] = {10, 2, 1024, 5};
  p.functions["B"] = {20, 4, 512, 7};
  p.functions["C"] = {40, 8, 2048, 9};
  p.cloudGroupDelayMs = 3;
  p.prices = {1.0, 0.5, 0.25, 2.0};
  return p;
}

const std::vector<std::string> kABC = {"A", "B", "C"};

TEST(CostlessTest, EveryConfigurationOfThreeFunctionsPricedByHand) {
  struct Row {
    Configuration config;
    double price, latency;
  } rows[] = {
      // price: GB x s x gb_second + request per group, transitions, edge_fixed;
      // latency: edge ms + first cloud transfer + cloud ms + delay per group boundary.
      {{0, {3}}, 2.0 * 0.014 + 0.5, 5 + 14},
      {{0, {1, 2}}, (1.0 * 0.002 + 0.5) + (2.0 * 0.012 + 0.5) + 0.25, 5 + 2 + 12 + 3},
      {{0, {2, 1}}, (1.0 * 0.006 + 0.5) + (2.0 * 0.008 + 0.5) + 0.25, 5 + 6 + 8 + 3},
      {{0, {1, 1, 1}}, (1.0 * 0.002 + 0.5) + (0.5 * 0.004 + 0.5) + (2.0 * 0.008 + 0.5) + 0.5, 5 + 2 + 4 + 8 + 6},
      {{1, {2}}, 2 + (2.0 * 0.012 + 0.5), 10 + 7 + 12},
      {{1, {1, 1}}, 2 + (0.5 * 0.004 + 0.5) + (2.0 * 0.008 + 0.5) + 0.25, 10 + 7 + 4 + 8 + 3},
      {{2, {1}}, 2 + (2.0 * 0.008 + 0.5), 10 + 20 + 9 + 8},
      {{3, {}}, 2, 70},
  };
  auto all = allPlans(kABC, threeFunctions());
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 8u);
  for (const auto& r : rows) {
    auto p = evaluatePlan(kABC, threeFunctions(), r.config);
    ASSERT_TRUE(p.ok());
    EXPECT_NEAR(p->price, r.price, 1e-12) << r.config.edge;
    EXPECT_NEAR(p->latencyMs, r.latency, 1e-12) << r.config.edge;
    bool listed = false;
    for (const auto& q : *all) listed = listed || (q.config.edge == r.config.edge && q.config.groups == r.config.groups);
    EXPECT_TRUE(listed);
  }
  auto p = evaluatePlan(kABC, threeFunctions(), {1, {1, 1}});
  EXPECT_EQ(p->edgeFunctions, std::vector<std::string>{"A"});
  EXPECT_EQ(p->cloudGroups, (std::vector<std::vector<std::string>>{{"B"}, {"C"}}));
}

// The best plan by brute force for `bound`.
std::optional<Plan> bruteForce(const std::vector<Plan>& all, double bound) {
  std::optional<Plan> best;
  for (const auto& p : all) {
    bool fits = p.latencyMs <= bound || std::fabs(p.latencyMs - bound) <= 1e-9 * std::max(1.0, bound);
    if (fits && (!best || planOrder(p, *best))) best = p;
  }
  return best;
}

// Every bound that matters: each plan's latency, just below and between neighbours.
void expectSolverMatchesBruteForce(const std::vector<std::string>& chain, const Profile& profile) {
  auto all = allPlans(chain, profile);
  ASSERT_TRUE(all.ok());
  std::vector<double> latencies;
  for (const auto& p : *all) latencies.push_back(p.latencyMs);
  std::sort(latencies.begin(), latencies.end());
  std::vector<double> bounds = {latencies.front() * 0.5, latencies.front() - 1e-3};
  for (size_t i = 0; i < latencies.size(); ++i) {
    bounds.push_back(latencies[i]);
    if (i + 1 < latencies.size()) bounds.push_back((latencies[i] + latencies[i + 1]) / 2);
  }
  bounds.push_back(latencies.back() * 2);
  for (double bound : bounds) {
    if (bound < 0) continue;
    auto solved = solvePlan(chain, profile, bound);
    ASSERT_TRUE(solved.ok()) << solved.error().message();
    auto expected = bruteForce(*all, bound);
    ASSERT_EQ(solved->has_value(), expected.has_value()) << "bound " << bound;
    if (!expected) continue;
    EXPECT_EQ((*solved)->config.edge, expected->config.edge) << "bound " << bound;
    EXPECT_EQ((*solved)->config.groups, expected->config.groups) << "bound " << bound;
    EXPECT_NEAR((*solved)->price, expected->price, 1e-9);
  }
  // Below the fastest configuration: infeasible (when there is room below it).
  if (latencies.front() > 1e-3) {
    auto none = solvePlan(chain, profile, latencies.front() * 0.99);
    ASSERT_TRUE(none.ok());
    EXPECT_FALSE(none->has_value());
  }
}

TEST(CostlessTest, SolverEqualsBruteForceOnTheHandPricedChain) {
  expectSolverMatchesBruteForce(kABC, threeFunctions());
}

TEST(CostlessTest, SolverEqualsBruteForceOnRandomChains) {
  std::mt19937 random(20181025);
  std::uniform_real_distribution<double> ms(0.5, 200), mem(128, 3008), price(0, 1);
  std::uniform_int_distribution<int> coarse(0, 4);
  for (int round = 0; round < 60; ++round) {
    size_t n = 1 + round % 8;
    std::vector<std::string> chain;
    Profile p;
    for (size_t i = 0; i < n; ++i) {
      std::string name = fmt::format("f{}", i);
      chain.push_back(name);
      // Every third round uses coarse whole numbers, so that ties in price and latency occur.
      if (round % 3 == 0) {
        p.functions[name] = {double(coarse(random)) * 10, double(coarse(random)) * 5, 1024.0 * (1 + coarse(random) % 2),
                             double(coarse(random))};
      } else {
        p.functions[name] = {ms(random), ms(random) / 4, mem(random), ms(random) / 10};
      }
    }
    p.cloudGroupDelayMs = round % 3 == 0 ? 5 : ms(random) / 20;
    p.prices = {price(random) * 1e-4, price(random) * 1e-6, price(random) * 1e-6, round % 3 == 0 ? 0 : price(random) * 1e-5};
    expectSolverMatchesBruteForce(chain, p);
  }
}

TEST(CostlessTest, AllTiesAreBrokenTheSameWay) {
  Profile p;
  for (const char* f : {"a", "b", "c", "d"}) p.functions[f] = {0, 0, 0, 0};
  expectSolverMatchesBruteForce({"a", "b", "c", "d"}, p);
  auto best = solvePlan({"a", "b", "c", "d"}, p, 0);
  ASSERT_TRUE(best.ok() && best->has_value());
  EXPECT_EQ((*best)->config.edge, 0u);  // fewer edge functions first
}

TEST(CostlessTest, ProfilesAreCheckedFieldByField) {
  struct Row {
    const char* json;
    const char* expected;
  } rows[] = {
      {"[]", "must be a JSON object"},
      {"{\"functions\": {}, \"prices\": {}}", "cloud_group_delay_ms is missing"},
      {"{\"functions\": {\"A\": {\"edge_ms\": 1, \"cloud_ms\": 1, \"cloud_memory_mb\": 1}}, \"cloud_group_delay_ms\": 0, "
       "\"prices\": {\"gb_second\": 1, \"request\": 1, \"transition\": 1, \"edge_fixed\": 1}}",
       "functions.A.transfer_ms is missing"},
      {"{\"functions\": {\"A\": {\"edge_ms\": -1, \"cloud_ms\": 1, \"cloud_memory_mb\": 1, \"transfer_ms\": 1}}, "
       "\"cloud_group_delay_ms\": 0, \"prices\": {\"gb_second\": 1, \"request\": 1, \"transition\": 1, \"edge_fixed\": 1}}",
       "functions.A.edge_ms must be a non-negative number"},
      {"{\"functions\": {\"A\": {\"edge_ms\": \"fast\", \"cloud_ms\": 1, \"cloud_memory_mb\": 1, \"transfer_ms\": 1}}, "
       "\"cloud_group_delay_ms\": 0, \"prices\": {\"gb_second\": 1, \"request\": 1, \"transition\": 1, \"edge_fixed\": 1}}",
       "functions.A.edge_ms must be a number"},
      {"{\"functions\": {}, \"cloud_group_delay_ms\": 0, \"prices\": {\"gb_second\": 1, \"request\": 1, \"transition\": 1}}",
       "prices.edge_fixed is missing"},
      {"{\"functions\": {}, \"cloud_group_delay_ms\": 0, \"prices\": {\"gb_second\": 1, \"request\": 1, \"transition\": 1, "
       "\"edge_fixed\": 1, \"vat\": 2}}",
       "prices: unknown field \"vat\""},
  };
  for (const auto& r : rows) {
    auto p = parseProfile(r.json);
    ASSERT_FALSE(p.ok()) << r.json;
    EXPECT_NE(p.error().message().find(r.expected), std::string::npos) << p.error().message();
  }
  auto missing = solvePlan({"A", "Z"}, threeFunctions(), 100);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message().find("functions.Z is missing"), std::string::npos);
  EXPECT_FALSE(solvePlan(kABC, threeFunctions(), -1).ok());
  EXPECT_FALSE(solvePlan(kABC, threeFunctions(), std::nan("")).ok());
}

TEST(CostlessTest, OnlyChainsArePlanned) {
  auto chain = parseAfcl("name: w\nworkflowBody:\n- function: {name: A, type: A}\n- sequence: {name: S, sequenceBody: [{function: {name: B, type: B}}]}\n");
  ASSERT_TRUE(chain.ok());
  EXPECT_EQ(*chainOf(**chain), (std::vector<std::string>{"A", "B"}));
  auto fan = parseAfcl("name: w\nworkflowBody:\n- parallel: {name: P, parallelBody: [{section: [{function: {name: B, type: B}}]}]}\n");
  ASSERT_TRUE(fan.ok());
  auto refused = chainOf(**fan);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message().find("line 3: parallel \"P\": only chains"), std::string::npos) << refused.error().message();
}

}  // namespace
}  // namespace tern::workflow
