// The device's choice of where a call runs, from tables: forced policies and overrides,
// untried environments first, UCB1 and Bayes-UCB following the faster environment, the
// sliding window following a change, failures charged, and the attached edge.

#include "device/decision.h"

#include <gtest/gtest.h>

#include <cmath>

namespace tern::device {
namespace {

const std::vector<Environment> kEnvs = {
    {Where::kLocal, "local"}, {Where::kEdge, "http://e1"}, {Where::kEdge, "http://e2"}, {Where::kCloud, "http://c"}};

History with(std::vector<std::vector<std::optional<double>>> samples) {
  History h;
  for (size_t i = 0; i < samples.size(); ++i) {
    for (auto s : samples[i]) record(h, i, s, 32);
  }
  return h;
}

TEST(DecisionTest, ForcedPoliciesAndOverridesFromATable) {
  History h = with({{1.0}, {1.0}, {1.0}, {1.0}});
  struct Row {
    Policy policy;
    Force force;
    bool localAllowed;
    std::optional<size_t> edge;
    std::optional<size_t> expected;
  } rows[] = {
      {Policy::kLocal, Force::kNone, true, std::nullopt, 0},
      {Policy::kLocal, Force::kNone, false, std::nullopt, std::nullopt},  // remote-only under a local policy
      {Policy::kEdge, Force::kNone, true, std::nullopt, 1},
      {Policy::kEdge, Force::kNone, true, 2, 2},                          // the attached edge
      {Policy::kCloud, Force::kNone, true, std::nullopt, 3},
      {Policy::kCloud, Force::kLocal, true, std::nullopt, 0},             // the override wins
      {Policy::kEdge, Force::kLocal, false, std::nullopt, std::nullopt},  // nowhere allowed
      {Policy::kEdge, Force::kRemote, true, std::nullopt, 1},
      {Policy::kLocal, Force::kRemote, true, std::nullopt, 1},            // adaptive among remotes: tie, first
  };
  for (const auto& r : rows) {
    DecisionParams p;
    p.policy = r.policy;
    EXPECT_EQ(choose(kEnvs, h, p, r.force, r.localAllowed, r.edge), r.expected)
        << policyName(r.policy) << " force " << int(r.force) << " local " << r.localAllowed;
  }
  std::vector<Environment> noCloud = {kEnvs[0], kEnvs[1]};
  DecisionParams cloud;
  cloud.policy = Policy::kCloud;
  EXPECT_EQ(choose(noCloud, h, cloud, Force::kNone, true), std::nullopt);
}

TEST(DecisionTest, UntriedEnvironmentsComeFirstInOrder) {
  DecisionParams p;
  std::vector<Environment> envs = {kEnvs[0], kEnvs[1], kEnvs[3]};
  EXPECT_EQ(choose(envs, History{}, p, Force::kNone, true), 0u);
  EXPECT_EQ(choose(envs, with({{5.0}}), p, Force::kNone, true), 1u);
  EXPECT_EQ(choose(envs, with({{5.0}, {1.0}}), p, Force::kNone, true), 2u);
  // A remote-only function never tries the device.
  EXPECT_EQ(choose(envs, History{}, p, Force::kNone, false), 1u);
}

// Simulates `calls` adaptive calls against environments of fixed latencies (nullopt: the
// environment fails) and returns how many went to each.
std::vector<int> simulate(Algorithm algorithm, const std::vector<std::optional<double>>& latency, int calls,
                          const std::vector<Environment>& envs, size_t window = 32) {
  DecisionParams p;
  p.algorithm = algorithm;
  p.window = window;
  History h;
  std::vector<int> count(envs.size());
  for (int k = 0; k < calls; ++k) {
    auto i = choose(envs, h, p, Force::kNone, true);
    EXPECT_TRUE(i.has_value());
    ++count[*i];
    record(h, *i, latency[*i], window);
  }
  return count;
}

TEST(DecisionTest, AdaptiveSendsMostCallsToTheFastestEnvironment) {
  std::vector<Environment> envs = {kEnvs[0], kEnvs[1], kEnvs[3]};
  struct Row {
    std::vector<std::optional<double>> latency;
    size_t fastest;
  } rows[] = {
      {{50.0, 10.0, 30.0}, 1},          // compute-heavy: 5x slower on the device than at the edge
      {{1.0, 4.0, 20.0}, 0},            // light: the network costs more than the work
      {{40.0, std::nullopt, 20.0}, 2},  // the edge fails every call
      {{5.0, 5.5, 100.0}, 0},           // close call
  };
  for (auto algorithm : {Algorithm::kUcb1, Algorithm::kBayesUcb}) {
    for (const auto& r : rows) {
      auto count = simulate(algorithm, r.latency, 400, envs);
      EXPECT_GT(count[r.fastest], 300) << "algorithm " << int(algorithm) << " fastest " << r.fastest << ": "
                                       << count[0] << "/" << count[1] << "/" << count[2];
    }
  }
}

TEST(DecisionTest, TheWindowFollowsAChange) {
  std::vector<Environment> envs = {kEnvs[0], kEnvs[1]};
  DecisionParams p;
  p.window = 16;
  History h;
  // The edge is fast for 200 calls, then five times slower than the device.
  int localAfter = 0;
  for (int k = 0; k < 600; ++k) {
    std::vector<double> latency = k < 200 ? std::vector<double>{20, 4} : std::vector<double>{20, 100};
    auto i = choose(envs, h, p, Force::kNone, true);
    ASSERT_TRUE(i.has_value());
    if (k >= 400 && *i == 0) ++localAfter;
    record(h, *i, latency[*i], p.window);
  }
  EXPECT_GT(localAfter, 150);
}

TEST(DecisionTest, ScoresAndFailuresFromATable) {
  History h = with({{2.0, 2.0}, {4.0, std::nullopt}});
  auto s = scores(h, DecisionParams{});
  ASSERT_EQ(s.size(), 2u);
  EXPECT_DOUBLE_EQ(s[0].mean, 1.0);   // calls as fast as the best mean score 1
  EXPECT_DOUBLE_EQ(s[1].mean, 0.25);  // (2/4 + 0) / 2: the failure scores 0
  EXPECT_DOUBLE_EQ(s[0].bound, 1.0 + std::sqrt(2 * std::log(4.0) / 2));
  // Windows keep the last N samples.
  History w;
  for (int k = 0; k < 10; ++k) record(w, 0, k, 4);
  EXPECT_EQ(w.windows[0].samples.size(), 4u);
  EXPECT_EQ(w.windows[0].total, 10u);
  EXPECT_EQ(*w.windows[0].samples.front(), 6.0);
  // Against the best mean (16/6 ms): a lucky 1 ms call scores 1, the 3 ms ones 8/9 each.
  auto lucky = scores(with({{1.0, 3.0, 3.0, 3.0, 3.0, 3.0}, {100.0}}), DecisionParams{});
  EXPECT_NEAR(lucky[0].mean, (1 + 5 * (16.0 / 6) / 3) / 6, 1e-12);
  EXPECT_NEAR(lucky[1].mean, (16.0 / 6) / 100, 1e-12);
  // Everything failed: all rewards 0, no division by an infinite reference.
  auto f = scores(with({{std::nullopt}, {std::nullopt}}), DecisionParams{});
  EXPECT_EQ(f[0].mean, 0.0);
  EXPECT_TRUE(std::isfinite(f[0].bound));
}

TEST(DecisionTest, TheNearestReachableEdgeWithHysteresis) {
  using R = std::vector<std::optional<double>>;
  struct Row {
    R rtts;
    std::optional<size_t> current;
    std::optional<size_t> expected;
  } rows[] = {
      {R{5.0, 2.0, 9.0}, std::nullopt, 1},
      {R{std::nullopt, 2.0}, std::nullopt, 1},
      {R{std::nullopt, std::nullopt}, std::nullopt, std::nullopt},
      {R{}, std::nullopt, std::nullopt},
      {R{5.0, 4.5}, 0, 0},                   // 10% faster: within the hysteresis, stay
      {R{5.0, 3.0}, 0, 1},                   // 40% faster: move
      {R{std::nullopt, 30.0}, 0, 1},         // the current one is gone: move, however far
      {R{2.0, 30.0}, 7, 0},                  // a current index out of range is no current
      {R{std::nullopt, std::nullopt}, 0, std::nullopt},
  };
  for (const auto& r : rows) EXPECT_EQ(nearestEdge(r.rtts, r.current), r.expected);
  EXPECT_EQ(nearestEdge(R{5.0, 4.5}, 0, 0.0), 1u);  // no hysteresis: the fastest
}

TEST(DecisionTest, NormalQuantileMatchesKnownValues) {
  struct Row {
    double p, z;
  } rows[] = {{0.5, 0.0}, {0.975, 1.959963985}, {0.999, 3.090232306}, {0.01, -2.326347874}, {0.8413447461, 1.0}};
  for (const auto& r : rows) EXPECT_NEAR(normalQuantile(r.p), r.z, 1e-6) << r.p;
  EXPECT_EQ(parsePolicy("adaptive").value(), Policy::kAdaptive);
  EXPECT_FALSE(parsePolicy("fastest").ok());
}

TEST(ClusterEnvironmentsTest, EdgesAndCloudsComeFromTheNodeList) {
  auto listed = environmentsFromCluster(R"({"node": "e1", "nodes": [
      {"id": "e1", "tier": "edge", "http": "127.0.0.1:8080", "state": "self"},
      {"id": "e2", "tier": "edge", "http": "10.0.0.2:8080", "state": "alive"},
      {"id": "e3", "tier": "edge", "http": "10.0.0.3:8080", "state": "suspect"},
      {"id": "c1", "tier": "cloud", "http": "10.1.0.1:8080", "state": "alive"},
      {"id": "c2", "tier": "cloud", "http": "https://10.1.0.2:8443", "state": "alive"},
      {"id": "x", "tier": "edge", "state": "alive"},
      {"id": "y", "tier": "edge", "http": 7, "state": "alive"},
      {"id": "z1", "tier": "edge", "http": "128.0.0.1://:12", "state": "alive"},
      {"id": "z2", "tier": "edge", "http": "ftp://10.0.0.9:21", "state": "alive"},
      {"id": "z3", "tier": "cloud", "http": "https://", "state": "alive"},
      "not an object"]})");
  ASSERT_TRUE(listed.ok()) << listed.error().message();
  EXPECT_EQ(listed->edges, (std::vector<std::string>{"http://127.0.0.1:8080", "http://10.0.0.2:8080"}));
  // A node serving TLS advertises its https:// URL, kept as it is.
  EXPECT_EQ(listed->clouds,
            (std::vector<std::string>{"http://10.1.0.1:8080", "https://10.1.0.2:8443"}));
  for (const char* bad : {"", "[]", "{\"nodes\": 3}", "<html>"}) {
    EXPECT_FALSE(environmentsFromCluster(bad).ok()) << bad;
  }
  EXPECT_TRUE(environmentsFromCluster(R"({"nodes": []})")->edges.empty());
}

}  // namespace
}  // namespace tern::device
