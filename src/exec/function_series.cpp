#include "exec/function_series.h"

#include <algorithm>
#include <cmath>

namespace tern::exec {

double quantileFromBuckets(std::span<const uint64_t> counts, std::span<const double> bounds,
                           double q) {
  uint64_t total = 0;
  for (uint64_t c : counts) total += c;
  if (total == 0 || q <= 0) return 0;
  q = std::min(q, 1.0);
  // The rank of the quantile among the counted values, 1-based.
  double rank = std::max(1.0, std::ceil(q * static_cast<double>(total)));
  uint64_t before = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] == 0) continue;
    if (static_cast<double>(before + counts[i]) >= rank) {
      double lower = i == 0 ? 0 : bounds[std::min(i, bounds.size()) - 1];
      if (i >= bounds.size()) return lower;
      double upper = bounds[i];
      double within = (rank - static_cast<double>(before)) / static_cast<double>(counts[i]);
      return lower + (upper - lower) * within;
    }
    before += counts[i];
  }
  return bounds.empty() ? 0 : bounds.back();
}

void FunctionSeries::record(int64_t endMs, int64_t durationUs, bool ok) {
  if (endMs < 0) return;
  int64_t index = endMs / kBucketMs;
  Bucket& b = ring_[static_cast<size_t>(index) % kBuckets];
  if (b.index != index) {
    // An invocation from before the ring's oldest bucket is not counted.
    if (b.index > index) return;
    b = Bucket{};
    b.index = index;
  }
  ++b.count;
  if (!ok) ++b.errors;
  b.busyUs += std::max<int64_t>(durationUs, 0);
  auto at = std::lower_bound(kLatencyBoundsUs.begin(), kLatencyBoundsUs.end(),
                             static_cast<double>(durationUs));
  ++b.latency[static_cast<size_t>(at - kLatencyBoundsUs.begin())];
}

std::vector<SeriesPoint> FunctionSeries::points(int64_t nowMs) const {
  std::vector<SeriesPoint> out;
  out.reserve(kBuckets);
  int64_t current = std::max<int64_t>(nowMs, 0) / kBucketMs;
  for (int64_t index = current - static_cast<int64_t>(kBuckets) + 1; index <= current; ++index) {
    SeriesPoint p;
    p.startMs = index * kBucketMs;
    p.spanMs = index == current ? std::max<int64_t>(nowMs - p.startMs, 1) : kBucketMs;
    if (index >= 0) {
      const Bucket& b = ring_[static_cast<size_t>(index) % kBuckets];
      if (b.index == index) {
        p.count = b.count;
        p.errors = b.errors;
        p.busyUs = b.busyUs;
        p.p50Us = quantileFromBuckets(b.latency, kLatencyBoundsUs, 0.50);
        p.p95Us = quantileFromBuckets(b.latency, kLatencyBoundsUs, 0.95);
        p.p99Us = quantileFromBuckets(b.latency, kLatencyBoundsUs, 0.99);
      }
    }
    out.push_back(p);
  }
  return out;
}

}  // namespace tern::exec
