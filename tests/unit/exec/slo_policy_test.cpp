// The scheduler's pure decisions: water-filling, planning, dispatch order, prediction.

#include "exec/slo_policy.h"

#include <gtest/gtest.h>

#include <numeric>

namespace tern::exec {
namespace {

double sum(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); }

TEST(WaterFillTest, Table) {
  struct Case {
    double capacity;
    std::vector<double> demands, weights, expect;
  } cases[] = {
      // Enough for everyone: demands as they are.
      {4, {1, 2}, {1, 1}, {1, 2}},
      // Equal weights, both above half: an even split.
      {2, {3, 5}, {1, 1}, {1, 1}},
      // The small demand is met; the rest goes to the large one (max-min).
      {2, {0.5, 5}, {1, 1}, {0.5, 1.5}},
      // Weights 3:1 split in proportion while both want more.
      {2, {7, 7}, {3, 1}, {1.5, 0.5}},
      // A heavy-weight function that wants little leaves the rest to the others.
      {3, {0.5, 4, 4}, {4, 1, 1}, {0.5, 1.25, 1.25}},
      // No capacity, no demand.
      {0, {1, 1}, {1, 1}, {0, 0}},
      {2, {0, 0}, {1, 1}, {0, 0}},
      // Zero weight gets only what is left.
      {2, {3, 1}, {0, 1}, {1, 1}},
  };
  for (const auto& c : cases) {
    auto got = waterFill(c.capacity, c.demands, c.weights);
    ASSERT_EQ(got.size(), c.expect.size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_NEAR(got[i], c.expect[i], 1e-9) << "capacity " << c.capacity << " index " << i;
    }
    EXPECT_NEAR(sum(got), std::min(c.capacity, sum(c.demands)), 1e-9);
  }
}

TEST(PlanAllocationsTest, TargetsWhenTheyFitFairSharesWhenNot) {
  // 40/s of 100 ms at p95 <= 150 ms needs 7 slots (the capacity model's table).
  std::vector<FunctionDemand> fns = {
      {Objective{150, 95}, 1, 40, 100},
      {Objective{20, std::nullopt}, 1, 100, 5},  // mean <= 20 ms at a = 0.5
      {std::nullopt, 1, 200, 2},                 // best effort, 0.4 slots
  };
  auto roomy = planAllocations(16, fns);
  EXPECT_EQ(roomy[0].target, 7);
  EXPECT_EQ(roomy[0].allocation, 7);
  EXPECT_EQ(roomy[1].allocation, roomy[1].target);
  EXPECT_NEAR(roomy[2].target, 0.4, 1e-9);
  EXPECT_NEAR(roomy[2].allocation, 0.4, 1e-9);

  // Four slots cannot hold 7 + 1: water-filling gives the small one its target and the
  // big one the rest; best effort gets nothing left.
  auto tight = planAllocations(4, fns);
  EXPECT_EQ(tight[1].allocation, tight[1].target);
  EXPECT_NEAR(tight[0].allocation, 4 - tight[1].target, 1e-9);
  EXPECT_EQ(tight[2].allocation, 0);
}

TEST(PlanAllocationsTest, IdleNewAndImpossibleFunctions) {
  std::vector<FunctionDemand> fns = {
      {Objective{10, 95}, 1, 0, 3},    // no arrivals in the window
      {Objective{10, 95}, 1, 50, 0},   // arrivals, nothing measured yet
      {Objective{10, 95}, 1, 50, 12},  // service longer than the objective
  };
  auto plan = planAllocations(8, fns);
  EXPECT_EQ(plan[0].target, 0);
  EXPECT_EQ(plan[1].target, 1);
  EXPECT_TRUE(plan[2].unreachable);
  EXPECT_NEAR(plan[2].target, 0.6, 1e-9);  // its offered load
}

TEST(ChooseNextTest, Table) {
  using P = SchedulingPolicy;
  struct Case {
    P policy;
    std::vector<DispatchCandidate> c;
    size_t expect;
    const char* why;
  } cases[] = {
      {P::kDeadline, {{true, 1, 50, 1}, {true, 1, 20, 2}}, 1, "earliest deadline first"},
      {P::kFifo, {{true, 1, 50, 1}, {true, 1, 20, 2}}, 0, "fifo: oldest first"},
      {P::kDeadline, {{true, -1, 10, 1}, {true, 0, 90, 2}}, 1, "within share before over share"},
      {P::kDeadline, {{false, 5, 0, 1}, {true, 0, 90, 2}}, 1, "objective before best effort"},
      {P::kDeadline, {{true, -5, 10, 1}, {false, 0, 0, 2}}, 1,
       "best effort within its share before an objective over its share"},
      {P::kDeadline, {{true, -5, 10, 1}, {true, -1, 90, 2}}, 1, "least over share first"},
      {P::kDeadline, {{false, 0, 0, 7}, {false, 0, 0, 3}}, 1, "best effort: oldest first"},
  };
  for (const auto& c : cases) EXPECT_EQ(chooseNext(c.policy, c.c), c.expect) << c.why;
}

TEST(PredictCompletionTest, QueueDrainsAtTheFunctionsSlots) {
  // Two ahead, 4 ms each, on 2 slots: (2 + 0.5) * 4 / 2 = 5 ms of wait, then 4 ms of work.
  EXPECT_EQ(predictCompletion(1000, 2, 4e6, 2), 1000 + 9'000'000);
  // Nonsense slots fall back to one; huge values saturate.
  EXPECT_EQ(predictCompletion(0, 0, 2e6, 0), 3'000'000);
  EXPECT_EQ(predictCompletion(0, UINT32_MAX, 1e18, 1), INT64_MAX);
}

}  // namespace
}  // namespace tern::exec
