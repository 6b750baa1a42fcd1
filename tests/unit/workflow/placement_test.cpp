// Placement policies from tables: which resource a task goes to, or whether it waits.

#include "workflow/placement.h"

#include <gtest/gtest.h>

namespace tern::workflow {
namespace {

using K = ResourceView::Kind;
constexpr auto kWait = std::nullopt;

ResourceView local(uint32_t inFlight, uint32_t capacity, double ms = -1) {
  return ResourceView{K::kLocal, inFlight, capacity, ms, 0};
}
ResourceView node(uint32_t inFlight, double ms = -1, int64_t spare = 0) {
  return ResourceView{K::kNode, inFlight, 0, ms, spare};
}
ResourceView serverless(uint32_t inFlight, double ms = -1) {
  return ResourceView{K::kServerless, inFlight, 0, ms, 0};
}

struct Row {
  const char* what;
  Policy policy;
  uint64_t inputBytes;
  std::vector<ResourceView> resources;
  double random;
  std::optional<size_t> expected;
};

TEST(PlacementTest, Table) {
  const Row rows[] = {
      {"local-first: local has room", Policy::kLocalFirst, 10, {local(1, 2), serverless(0)}, 0, 0},
      {"local-first: local full, overflow", Policy::kLocalFirst, 10, {local(2, 2), serverless(0)}, 0, 1},
      {"local-first: local full, least busy other", Policy::kLocalFirst, 10,
       {local(2, 2), node(3), node(1)}, 0, 2},
      {"local-first: equal load, more spare", Policy::kLocalFirst, 10,
       {local(2, 2), node(1, -1, 0), node(1, -1, 4)}, 0, 2},
      {"local-first: only local, full: wait", Policy::kLocalFirst, 10, {local(2, 2)}, 0, kWait},
      {"local-first: no resources: wait", Policy::kLocalFirst, 10, {}, 0, kWait},
      {"size: large stays local", Policy::kSize, 100 * 1024, {local(0, 2), serverless(0)}, 0, 0},
      {"size: large waits for local", Policy::kSize, 100 * 1024, {local(2, 2), serverless(0)}, 0, kWait},
      {"size: small goes out", Policy::kSize, 100, {local(0, 2), serverless(0)}, 0, 1},
      {"size: at the threshold goes out", Policy::kSize, 10 * 1024, {local(0, 2), serverless(0)}, 0, 1},
      {"size: only local", Policy::kSize, 100, {local(0, 2)}, 0, 0},
      {"latency: untried first", Policy::kLatency, 10, {local(0, 2, 5), serverless(0)}, 0, 1},
      {"latency: fastest", Policy::kLatency, 10, {local(0, 2, 5), serverless(0, 40)}, 0, 0},
      {"latency: busy local loses", Policy::kLatency, 10, {local(1, 1, 5), serverless(0, 40)}, 0, 1},
      {"latency: load stretches", Policy::kLatency, 10, {node(4, 10), serverless(0, 30)}, 0, 1},
      {"random: low", Policy::kRandom, 10, {local(0, 2), serverless(0), node(0)}, 0.0, 0},
      {"random: high", Policy::kRandom, 10, {local(0, 2), serverless(0), node(0)}, 0.99, 2},
      {"random: skips full", Policy::kRandom, 10, {local(2, 2), serverless(0)}, 0.0, 1},
  };
  for (const auto& r : rows) {
    EXPECT_EQ(placeTask(r.inputBytes, r.resources, PlacementParams{r.policy, 10 * 1024}, r.random),
              r.expected)
        << r.what;
  }
}

TEST(PlacementTest, PolicyNames) {
  for (Policy p : {Policy::kLocalFirst, Policy::kSize, Policy::kLatency, Policy::kRandom}) {
    auto parsed = parsePolicy(policyName(p));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, p);
  }
  EXPECT_FALSE(parsePolicy("fastest").ok());
}

}  // namespace
}  // namespace tern::workflow
