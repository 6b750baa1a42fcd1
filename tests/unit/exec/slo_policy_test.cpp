// The scheduler's pure decisions: water-filling, planning, dispatch order, prediction.

#include "exec/slo_policy.h"

#include <gtest/gtest.h>

#include <cmath>
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

constexpr double kMsNs = 1e6;

TEST(ForecastAdmissionTest, Table) {
  // The other function in these cases: objective 100 ms, 4 ms per request, 100/s.
  auto other = [](bool withinShare, uint32_t running, uint32_t queuedBefore, uint32_t queued,
                  double rate = 0, double allocation = 0.5) {
    CompetingFunction c;
    c.objectiveNs = 100 * kMsNs;
    c.withinShare = withinShare;
    c.running = running;
    c.queuedBefore = queuedBefore;
    c.queued = queued;
    c.ratePerSecond = rate;
    c.allocation = allocation;
    c.serviceMeanNs = 4 * kMsNs;
    return c;
  };
  CompetingFunction bestEffort;
  bestEffort.withinShare = true;
  bestEffort.queued = bestEffort.queuedBefore = 5;
  bestEffort.serviceMeanNs = 10 * kMsNs;
  struct Case {
    const char* why;
    double slots;
    bool withinShare;
    uint32_t queuedAhead, running;
    std::vector<CompetingFunction> others;
    double expectCompletionMs;
  } cases[] = {
      {"idle node: its own service time", 1, true, 0, 0, {}, 1},
      {"half of the running invocation, then its own queue", 1, true, 3, 1, {}, 0.5 + 3 + 1},
      {"two slots drain the queue twice as fast", 2, true, 4, 2, {}, (1 + 4) / 2.0 + 1},
      {"other function's earlier deadlines go first, later ones do not", 1, true, 0, 0,
       {other(true, 1, 2, 6)}, 2 + 8 + 1},
      {"over its share: everything of a function within its share goes first", 1, false, 0, 0,
       {other(true, 0, 2, 6)}, 24 + 1},
      {"within its share: an over-share function's queue waits", 1, true, 0, 0,
       {other(false, 0, 2, 6)}, 1},
      {"over its share with the others idle: the whole slot (work conservation)", 1, false, 2,
       0, {other(true, 0, 0, 0)}, 3},
      {"best effort waits behind a function within its share", 1, true, 0, 0, {bestEffort}, 1},
      {"best effort within its share goes before one over its share", 1, false, 0, 0,
       {bestEffort}, 50 + 1},
  };
  for (const auto& c : cases) {
    AdmissionView v;
    v.nowNs = 1'000'000'000;
    v.deadlineNs = v.nowNs + static_cast<int64_t>(200 * kMsNs);
    v.slots = c.slots;
    v.withinShare = c.withinShare;
    v.queuedAhead = c.queuedAhead;
    v.running = c.running;
    v.serviceMeanNs = 1 * kMsNs;
    v.others = c.others;
    auto f = forecastAdmission(v);
    EXPECT_NEAR((f.completionNs - static_cast<double>(v.nowNs)) / kMsNs, c.expectCompletionMs,
                1e-6)
        << c.why;
    EXPECT_EQ(f.sdNs, 0) << c.why;  // no variance given
    EXPECT_EQ(f.lateProbability, 0) << c.why;
  }
}

TEST(ForecastAdmissionTest, ArrivalsWithEarlierDeadlinesJoinTheWaitUpToTheirAllocation) {
  // The request (1 ms of work, objective 50 ms) waits 40 ms behind its own queue; another
  // function with a 10 ms objective keeps arriving at 500/s with 1 ms requests, and its
  // arrivals in the next 40 ms have earlier deadlines.
  CompetingFunction tight;
  tight.objectiveNs = 10 * kMsNs;
  tight.ratePerSecond = 500;
  tight.allocation = 0.25;
  tight.serviceMeanNs = 1 * kMsNs;
  AdmissionView v;
  v.nowNs = 0;
  v.deadlineNs = static_cast<int64_t>(50 * kMsNs);
  v.queuedAhead = 40;
  v.serviceMeanNs = 1 * kMsNs;
  std::vector<CompetingFunction> others{tight};
  v.others = others;
  // Within its share, the tight function takes at most its allocation (a quarter) of the
  // wait: start = 40 + start/4 => 53.3 ms, but only arrivals before 40 ms (deadline 50 ms)
  // precede it: 40 + 40/4 = 50 ms, then 1 ms of work.
  auto within = forecastAdmission(v);
  EXPECT_NEAR(within.completionNs / kMsNs, 51, 1e-3);
  // Over its share, the tight function's arrivals all go first: 40 + 0.5 * 40 = 60 ms.
  v.withinShare = false;
  auto over = forecastAdmission(v);
  EXPECT_NEAR(over.completionNs / kMsNs, 61, 1e-3);
  EXPECT_EQ(over.lateProbability, 1);
}

TEST(ForecastAdmissionTest, RefusesOnlyWhenConfidentlyLate) {
  // 20 requests ahead of 1 ms mean each, on one slot, deadline 22 ms: 21 ms expected.
  AdmissionView v;
  v.nowNs = 0;
  v.deadlineNs = static_cast<int64_t>(22 * kMsNs);
  v.queuedAhead = 20;
  v.serviceMeanNs = 1 * kMsNs;
  struct Case {
    double sdMs;  // of one service time
    int64_t deadlineMs;
    bool refuse;
  } cases[] = {
      {0, 22, false},    // deterministic and on time
      {0, 20, true},     // deterministic and late
      {0.5, 22, false},  // 1 ms early: likely on time
      {0.5, 21, false},  // expected exactly at the deadline: a coin toss, not refused
      {0.5, 19, false},  // sd of the sum is 0.5 * sqrt(21) = 2.3 ms: 2 ms late is 81%...
      {0.5, 17, true},   // ... and 4 ms late is 96%: refused
  };
  for (const auto& c : cases) {
    v.deadlineNs = c.deadlineMs * 1'000'000;
    v.serviceVarianceNs2 = c.sdMs * kMsNs * c.sdMs * kMsNs;
    auto f = forecastAdmission(v);
    EXPECT_EQ(f.lateProbability >= kRefusalConfidence, c.refuse)
        << "sd " << c.sdMs << " deadline " << c.deadlineMs << " P(late) " << f.lateProbability;
  }
}

TEST(RefusalThresholdTest, MoreLikelyThanNotWhenOverloaded) {
  auto fn = [](double rate, double serviceMs, bool objective = true) {
    FunctionDemand d;
    if (objective) d.objective = Objective{40, 95};
    d.ratePerSecond = rate;
    d.serviceMs = serviceMs;
    return d;
  };
  struct Case {
    const char* name;
    uint32_t slots;
    std::vector<FunctionDemand> functions;
    bool overloaded;
  } cases[] = {
      {"nothing measured", 1, {}, false},
      {"no service time yet", 1, {fn(5000, 0)}, false},
      // Two functions offering 0.45 slots each: 0.9 of one slot. Each targets a whole slot
      // on its own, yet the node is not overloaded.
      {"90% of one slot", 1, {fn(450, 1), fn(112.5, 4)}, false},
      {"exactly full", 1, {fn(500, 1), fn(125, 4)}, false},
      {"150% of one slot", 1, {fn(750, 1), fn(187.5, 4)}, true},
      {"150% of one slot is 75% of two", 2, {fn(750, 1), fn(187.5, 4)}, false},
      // Best-effort work takes slot time too.
      {"best effort fills the rest", 1, {fn(450, 1), fn(200, 4, false)}, true},
      {"nonsense estimates are ignored", 1, {fn(-5, 1), fn(1e3, NAN)}, false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(overloaded(c.slots, c.functions), c.overloaded) << c.name;
    EXPECT_EQ(refusalThreshold(c.slots, c.functions),
              c.overloaded ? kOverloadRefusalConfidence : kRefusalConfidence)
        << c.name;
    EXPECT_EQ(startQuantile(c.slots, c.functions),
              c.overloaded ? kOverloadStartConfidence : 1 - kRefusalConfidence)
        << c.name;
  }
  static_assert(kOverloadRefusalConfidence < kRefusalConfidence);
  static_assert(kOverloadStartConfidence > 1 - kOverloadRefusalConfidence);
}

TEST(StillInTimeTest, Table) {
  EXPECT_TRUE(stillInTime(5e6, 1e6));
  EXPECT_TRUE(stillInTime(1e6, 1e6));
  EXPECT_FALSE(stillInTime(0.9e6, 1e6));
  EXPECT_FALSE(stillInTime(-1, 1e6));
  EXPECT_FALSE(stillInTime(-1, 0));  // already past its deadline
  EXPECT_TRUE(stillInTime(0, 0));
}

}  // namespace
}  // namespace tern::exec
