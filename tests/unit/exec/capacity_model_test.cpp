// The M/M/c capacity model: Erlang C against known values, the smallest slot counts for
// table-driven objectives, and clear errors for inputs no plan can satisfy.

#include "exec/capacity_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace tern::exec {
namespace {

TEST(CapacityModelTest, ErlangCMatchesClosedForm) {
  // C(c, a) from the textbook formula with factorials, for small c where it is exact.
  auto closedForm = [](uint32_t c, double a) {
    double sum = 0, term = 1;
    for (uint32_t k = 0; k < c; ++k) {
      sum += term;
      term *= a / (k + 1);
    }
    double top = term * c / (c - a);  // a^c / c! * c / (c - a)
    return top / (sum + top);
  };
  for (uint32_t c : {1u, 2u, 5u, 7u, 12u}) {
    for (double a : {0.1, 0.5, 0.9 * c}) {
      EXPECT_NEAR(erlangC(c, a), closedForm(c, a), 1e-12) << "c=" << c << " a=" << a;
    }
  }
  EXPECT_NEAR(erlangC(1, 0.5), 0.5, 1e-12);  // M/M/1: P(wait) = rho
}

TEST(CapacityModelTest, ErlangCIsStableForLargeSystems) {
  // Factorials of 5000 overflow a double; the recurrence does not.
  double c = erlangC(5000, 4900);
  EXPECT_TRUE(std::isfinite(c));
  EXPECT_GT(c, 0);
  EXPECT_LT(c, 1);
  EXPECT_EQ(erlangC(4, 4), 1);  // unstable: everyone waits
  EXPECT_EQ(erlangC(0, 1), 1);
  EXPECT_EQ(erlangC(3, 0), 0);
}

struct PlanCase {
  double rate, serviceMs, sloMs;
  std::optional<double> percentile;
  uint32_t slots;
};

TEST(CapacityModelTest, SmallestSlotsForObjectives) {
  const PlanCase cases[] = {
      // lambda = 40/s, 100 ms service: P(wait > 50 ms) <= 5% needs 7, mean wait <= 20 ms 6.
      {40, 100, 150, 95, 7},
      {40, 100, 120, std::nullopt, 6},
      // The same load with a looser objective needs fewer.
      {40, 100, 400, 95, 5},
      // One request per second of 1 ms: one slot is plenty.
      {1, 1, 2, 99, 1},
      // Heavy load of short requests: stability alone needs 51 slots (a = 50).
      {5000, 10, 20, 95, 53},
      {5000, 10, 1000, std::nullopt, 51},
  };
  for (const auto& c : cases) {
    auto plan = planCapacity({c.rate, c.serviceMs, {c.sloMs, c.percentile}});
    ASSERT_TRUE(plan.ok()) << plan.error().describe();
    EXPECT_EQ(plan->slots, c.slots) << "rate " << c.rate << " service " << c.serviceMs
                                    << " slo " << c.sloMs;
    // Minimal: one slot fewer misses the objective (or is unstable).
    if (plan->slots > 1) {
      double a = c.rate * c.serviceMs / 1000;
      if (plan->slots - 1 > a) {
        auto fewer = evaluateSlots({c.rate, c.serviceMs, {c.sloMs, c.percentile}},
                                   plan->slots - 1);
        if (c.percentile) {
          EXPECT_GT(fewer.probWaitOverBudget, 1 - *c.percentile / 100);
        } else {
          EXPECT_GT(fewer.meanWaitMs + c.serviceMs, c.sloMs);
        }
      }
    }
  }
}

TEST(CapacityModelTest, PlanReportsWaitingFigures) {
  auto plan = planCapacity({40, 100, {150, 95}});
  ASSERT_TRUE(plan.ok());
  EXPECT_NEAR(plan->offeredLoad, 4, 1e-9);
  EXPECT_NEAR(plan->utilisation, 4.0 / 7, 1e-9);
  EXPECT_NEAR(plan->waitBudgetMs, 50, 1e-9);
  EXPECT_LE(plan->probWaitOverBudget, 0.05);
  // E[wait] = C / (c mu - lambda) = C / 30 per second.
  EXPECT_NEAR(plan->meanWaitMs, plan->probWait / 30 * 1000, 1e-9);
  EXPECT_LT(plan->waitAtPercentileMs, 50);
}

TEST(CapacityModelTest, BadInputIsAClearError) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  struct Bad {
    CapacityQuery q;
    const char* says;
  } cases[] = {
      {{0, 10, {50, 95}}, "arrival rate"},
      {{-3, 10, {50, 95}}, "arrival rate"},
      {{nan, 10, {50, 95}}, "arrival rate"},
      {{inf, 10, {50, 95}}, "arrival rate"},
      {{10, 0, {50, 95}}, "service time"},
      {{10, -1, {50, 95}}, "service time"},
      {{10, 10, {0, 95}}, "objective must be a positive"},
      {{10, 10, {nan, std::nullopt}}, "objective must be a positive"},
      {{10, 10, {50, 100}}, "percentile"},
      {{10, 10, {50, 0}}, "percentile"},
      {{10, 10, {50, 250}}, "percentile"},
      {{10, 10, {50, nan}}, "percentile"},
      {{10, 10, {10, 95}}, "not longer than the service time"},
      {{10, 10, {5, std::nullopt}}, "not longer than the service time"},
      {{1e9, 1000, {2000, 95}}, "exceeds the model's limit"},
  };
  for (const auto& c : cases) {
    auto plan = planCapacity(c.q);
    ASSERT_FALSE(plan.ok()) << c.says;
    EXPECT_EQ(plan.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(plan.error().message().find(c.says), std::string::npos) << plan.error().message();
  }
}

TEST(CapacityModelTest, WeightsMustBePositive) {
  EXPECT_TRUE(checkWeight(1).ok());
  EXPECT_TRUE(checkWeight(0.25).ok());
  EXPECT_FALSE(checkWeight(0).ok());
  EXPECT_FALSE(checkWeight(-2).ok());
  EXPECT_FALSE(checkWeight(std::numeric_limits<double>::quiet_NaN()).ok());
  EXPECT_FALSE(checkWeight(std::numeric_limits<double>::infinity()).ok());
}

}  // namespace
}  // namespace tern::exec
