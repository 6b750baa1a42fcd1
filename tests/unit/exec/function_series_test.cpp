// The console's per-function time series: percentiles read from a latency histogram
// (a pure function, from a table) and the ring of 10-second buckets.

#include "exec/function_series.h"

#include <gtest/gtest.h>

#include <vector>

namespace tern::exec {
namespace {

TEST(QuantileFromBucketsTest, ReadsTheQuantileInsideItsBucket) {
  const std::vector<double> bounds = {10, 20, 50};
  struct Case {
    std::vector<uint64_t> counts;  // one more than bounds: the last holds values above 50
    double q;
    double want;
  };
  const Case cases[] = {
      {{0, 0, 0, 0}, 0.5, 0},        // nothing counted
      {{4, 0, 0, 0}, 0.5, 5},        // rank 2 of 4 in (0, 10]: halfway
      {{4, 0, 0, 0}, 1.0, 10},       // the largest: the bucket's top
      {{1, 1, 0, 0}, 0.5, 10},       // rank 1: the first bucket's only value
      {{1, 1, 0, 0}, 0.99, 20},      // rank 2: the second bucket's only value
      {{0, 0, 10, 0}, 0.95, 50},     // rank ceil(9.5) = 10 of 10 in (20, 50]: the top
      {{0, 0, 10, 0}, 0.5, 35},      // rank 5 of 10 in (20, 50]: halfway
      {{90, 0, 0, 10}, 0.5, 50.0 / 9},  // rank 50 of 90 in (0, 10]
      {{90, 0, 0, 10}, 0.95, 50},    // in the bucket above the bounds: its lower bound
      {{0, 0, 0, 3}, 0.5, 50},
  };
  for (const auto& c : cases) {
    double got = quantileFromBuckets(c.counts, bounds, c.q);
    EXPECT_NEAR(got, c.want, 1e-9) << "q=" << c.q << " first count " << c.counts[0];
  }
}

TEST(FunctionSeriesTest, CountsInvocationsIntoTheirBuckets) {
  FunctionSeries s;
  const int64_t t0 = 1'000'000'000'000;  // a bucket boundary (ms)
  s.record(t0 + 1000, 1000, true);       // 1 ms
  s.record(t0 + 2000, 3000, false);      // 3 ms, an error
  s.record(t0 + 12'000, 400'000, true);  // next bucket, 400 ms
  auto pts = s.points(t0 + 15'000);
  ASSERT_EQ(pts.size(), FunctionSeries::kBuckets);
  const auto& last = pts.back();
  const auto& before = pts[pts.size() - 2];
  EXPECT_EQ(before.startMs, t0);
  EXPECT_EQ(before.spanMs, FunctionSeries::kBucketMs);
  EXPECT_EQ(before.count, 2u);
  EXPECT_EQ(before.errors, 1u);
  EXPECT_EQ(before.busyUs, 4000);
  EXPECT_GT(before.p99Us, before.p50Us);
  EXPECT_EQ(last.startMs, t0 + FunctionSeries::kBucketMs);
  EXPECT_EQ(last.spanMs, 5000);  // the current bucket, so far
  EXPECT_EQ(last.count, 1u);
  EXPECT_GT(last.p50Us, 200'000);
  EXPECT_LE(last.p50Us, 500'000);
  EXPECT_EQ(pts.front().count, 0u);
}

TEST(FunctionSeriesTest, OldBucketsAreReusedAndNeverShownAgain) {
  FunctionSeries s;
  const int64_t t0 = 1'000'000'000'000;
  s.record(t0, 10, true);
  // A whole ring later the same slot holds a new bucket; the old one is gone.
  const int64_t later = t0 + FunctionSeries::kBucketMs * FunctionSeries::kBuckets;
  s.record(later, 10, true);
  s.record(later + 1, 10, true);
  auto pts = s.points(later + 1);
  uint64_t total = 0;
  for (const auto& p : pts) total += p.count;
  EXPECT_EQ(total, 2u);
  // An invocation older than the bucket now in its slot is not counted.
  s.record(t0 + 5, 10, true);
  total = 0;
  for (const auto& p : s.points(later + 1)) total += p.count;
  EXPECT_EQ(total, 2u);
  // Nothing recorded in the window: every point is empty.
  for (const auto& p : s.points(later + 2 * FunctionSeries::kBucketMs * FunctionSeries::kBuckets)) {
    EXPECT_EQ(p.count, 0u);
  }
}

}  // namespace
}  // namespace tern::exec
