#pragma once
// A function's recent history for the web console (docs/console.md): completed
// invocations counted into fixed time buckets (10 s each, the last 10 minutes), each with
// its count, errors, worker-slot time and a latency histogram. Kept per function in the
// node (FunctionLog feeds it), so the console reads figures without parsing /metrics.
// Times come from the caller (Unix milliseconds); the class is not thread-safe (FunctionLog's
// lock guards it). Percentiles are read from the histogram by quantileFromBuckets, a pure
// function tested from tables.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace tern::exec {

// Upper bounds, in microseconds, of the latency histogram's buckets; a last bucket holds
// everything slower.
inline constexpr std::array<double, 21> kLatencyBoundsUs = {
    10,     20,     50,      100,     200,     500,       1'000,     2'000,     5'000,    10'000,
    20'000, 50'000, 100'000, 200'000, 500'000, 1'000'000, 2'000'000, 5'000'000, 10'000'000,
    30'000'000, 60'000'000};
inline constexpr size_t kLatencyBuckets = kLatencyBoundsUs.size() + 1;

// The q-quantile (0 < q <= 1) of the values counted in `counts`, where counts[i] holds
// values in (bounds[i-1], bounds[i]] (the first from 0, the one past the bounds above the
// last bound), interpolated linearly inside the bucket it falls in; a quantile in the last
// bucket is its lower bound. 0 when nothing was counted.
double quantileFromBuckets(std::span<const uint64_t> counts, std::span<const double> bounds,
                           double q);

// One bucket's figures, as the console draws them.
struct SeriesPoint {
  int64_t startMs = 0;     // the bucket's start (Unix ms)
  int64_t spanMs = 0;      // time it covers: the bucket's length, or less for the current one
  uint64_t count = 0;      // invocations completed in it
  uint64_t errors = 0;     // of which did not end ok
  int64_t busyUs = 0;      // worker-slot time they used
  double p50Us = 0, p95Us = 0, p99Us = 0;
};

class FunctionSeries {
 public:
  static constexpr int64_t kBucketMs = 10'000;
  static constexpr size_t kBuckets = 60;

  // An invocation that ended at `endMs` after `durationUs`; `ok`: it ended without error.
  void record(int64_t endMs, int64_t durationUs, bool ok);
  // The last kBuckets buckets up to `nowMs`, oldest first, empty ones included.
  std::vector<SeriesPoint> points(int64_t nowMs) const;

 private:
  struct Bucket {
    int64_t index = -1;  // endMs / kBucketMs of what it holds; -1: never used
    uint64_t count = 0;
    uint64_t errors = 0;
    int64_t busyUs = 0;
    std::array<uint64_t, kLatencyBuckets> latency{};
  };
  std::array<Bucket, kBuckets> ring_{};
};

}  // namespace tern::exec
