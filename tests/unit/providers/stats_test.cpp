// What tern measures of a (provider, function): the latency mean, the p95 over a window of
// samples that age out, the failure rate as it rises and recovers, and calls in flight.

#include "providers/stats.h"

#include <gtest/gtest.h>

namespace tern::providers {
namespace {

TEST(StatsTest, AnUnusedProviderHasNoSamples) {
  Stats s;
  ProviderView v = s.view(1000);
  EXPECT_EQ(v.samples, 0u);
  EXPECT_EQ(v.ewmaMs, 0);
  EXPECT_EQ(v.p95Ms, 0);
  EXPECT_EQ(v.failureRate, 0);
  EXPECT_EQ(v.inFlight, 0u);
  EXPECT_EQ(v.lastUsedMs, 0);
}

TEST(StatsTest, TheMeanStartsAtTheFirstLatencyAndWeighsEachNewOneByAlpha) {
  struct Row {
    double alpha;
    std::vector<double> latencies;
    double ewma;
  } rows[] = {
      {0.3, {10}, 10},
      {0.3, {10, 20}, 13},              // 0.3*20 + 0.7*10
      {0.3, {10, 20, 20}, 15.1},        // 0.3*20 + 0.7*13
      {0.5, {100, 0}, 50},
      {1.0, {5, 7, 9}, 9},              // alpha 1: the last sample
      {0.3, {10, -4}, 7},               // a negative latency counts as 0
  };
  for (const auto& r : rows) {
    Stats s(StatsOptions{.alpha = r.alpha});
    int64_t now = 0;
    for (double l : r.latencies) s.record(true, l, now += 10);
    ProviderView v = s.view(now);
    EXPECT_NEAR(v.ewmaMs, r.ewma, 1e-9) << "alpha " << r.alpha << ", " << r.latencies.size() << " samples";
    EXPECT_EQ(v.samples, r.latencies.size());
    EXPECT_EQ(v.lastUsedMs, now);
  }
}

TEST(StatsTest, FailuresDoNotMoveTheLatency) {
  Stats s;
  s.record(true, 10, 1);
  s.record(false, 5000, 2);  // a timeout's latency is not a latency of the provider
  ProviderView v = s.view(2);
  EXPECT_EQ(v.samples, 1u);
  EXPECT_EQ(v.ewmaMs, 10);
  EXPECT_EQ(v.p95Ms, 10);
  EXPECT_EQ(v.lastUsedMs, 2);
}

TEST(StatsTest, P95IsTheNearestRankOverTheWindow) {
  struct Row {
    size_t window;
    std::vector<double> latencies;  // recorded in this order, one ms apart
    double p95;
  } rows[] = {
      {50, {7}, 7},
      {50, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}, 19},
      {50, {20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, 19},
      {50, {1, 2, 3, 4, 5, 6, 7, 8, 9, 100}, 100},  // ceil(9.5) = 10th of 10
      {4, {100, 200, 1, 2, 3, 4}, 4},               // the two slow ones left the ring
      {4, {1, 2, 3, 4, 100}, 100},
      {3, {100, 1, 1, 1, 1, 1, 1, 50}, 50},         // the ring wraps more than once
  };
  for (const auto& r : rows) {
    Stats s(StatsOptions{.window = r.window});
    int64_t now = 0;
    for (double l : r.latencies) s.record(true, l, ++now);
    EXPECT_EQ(s.view(now).p95Ms, r.p95) << "window " << r.window << ", " << r.latencies.size() << " samples";
  }
  // One hundred samples 1..100: the 95th.
  Stats big(StatsOptions{.window = 100});
  for (int i = 1; i <= 100; ++i) big.record(true, i, i);
  EXPECT_EQ(big.view(100).p95Ms, 95);
}

TEST(StatsTest, SamplesOlderThanTheWindowAgeLeaveTheP95AtViewTime) {
  Stats s(StatsOptions{.window = 50, .windowAge = std::chrono::milliseconds(1000)});
  s.record(true, 500, 0);     // slow, early
  s.record(true, 10, 900);
  s.record(true, 12, 950);
  EXPECT_EQ(s.view(950).p95Ms, 500);
  EXPECT_EQ(s.view(1000).p95Ms, 500);  // exactly windowAge old: still in
  EXPECT_EQ(s.view(1001).p95Ms, 12);   // the slow one aged out, without a new sample
  EXPECT_EQ(s.view(1950).p95Ms, 12);
  EXPECT_EQ(s.view(1951).p95Ms, 0);    // none recent: unknown
  // The mean and the count keep the whole history.
  EXPECT_EQ(s.view(5000).samples, 3u);
  EXPECT_GT(s.view(5000).ewmaMs, 0);
}

TEST(StatsTest, TheFailureRateRisesWithFailuresAndRecoversWithSuccesses) {
  Stats s(StatsOptions{.alpha = 0.3});
  std::vector<double> rates;
  int64_t now = 0;
  for (int i = 0; i < 4; ++i) {
    s.record(false, 0, ++now);
    rates.push_back(s.view(now).failureRate);
  }
  // 0.3, 0.51, 0.657, 0.7599: one failure alone stays below the 0.35 of "failed recently".
  EXPECT_NEAR(rates[0], 0.3, 1e-12);
  EXPECT_NEAR(rates[1], 0.51, 1e-12);
  EXPECT_NEAR(rates[2], 0.657, 1e-12);
  EXPECT_NEAR(rates[3], 0.7599, 1e-12);
  EXPECT_EQ(s.view(now).samples, 0u);
  // Each success multiplies the rate by 0.7: 0.532, then 0.372, then 0.26, below 0.35 again.
  s.record(true, 10, ++now);
  EXPECT_NEAR(s.view(now).failureRate, 0.53193, 1e-12);
  s.record(true, 10, ++now);
  EXPECT_NEAR(s.view(now).failureRate, 0.372351, 1e-12);
  for (int i = 0; i < 30; ++i) s.record(true, 10, ++now);
  EXPECT_LT(s.view(now).failureRate, 1e-4);
  EXPECT_EQ(s.view(now).samples, 32u);
}

TEST(StatsTest, BeginAndEndCountCallsInFlight) {
  Stats s;
  s.begin();
  s.begin();
  s.begin();
  EXPECT_EQ(s.view(0).inFlight, 3u);
  s.end(true, 20, 5);
  EXPECT_EQ(s.view(5).inFlight, 2u);
  s.end(false, 0, 6);
  ProviderView v = s.view(6);
  EXPECT_EQ(v.inFlight, 1u);
  EXPECT_EQ(v.samples, 1u);
  EXPECT_NEAR(v.failureRate, 0.3, 1e-12);
  EXPECT_EQ(v.lastUsedMs, 6);
  s.record(true, 30, 7);  // a probe does not touch the calls in flight
  EXPECT_EQ(s.view(7).inFlight, 1u);
  s.end(true, 40, 8);
  EXPECT_EQ(s.view(8).inFlight, 0u);
  s.end(true, 40, 9);  // an unmatched end does not wrap around
  EXPECT_EQ(s.view(9).inFlight, 0u);
  EXPECT_EQ(s.view(9).samples, 4u);
}

}  // namespace
}  // namespace tern::providers
