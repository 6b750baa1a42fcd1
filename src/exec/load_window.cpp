#include "exec/load_window.h"

#include <algorithm>

namespace tern::exec {

const char* refusalName(Refusal r) {
  switch (r) {
    case Refusal::kQueueFull:
      return "queue_full";
    case Refusal::kDeadline:
      return "deadline";
    case Refusal::kExpired:
      return "expired";
  }
  return "unknown";
}

double WindowEstimate::attainment() const {
  uint64_t refused = 0;
  for (uint64_t r : refusals) refused += r;
  uint64_t total = completions + refused;
  return total == 0 ? 1.0 : static_cast<double>(withinObjective) / static_cast<double>(total);
}

LoadWindow::Bucket& LoadWindow::bucketAt(int64_t nowNs) {
  if (firstNs_ < 0) firstNs_ = nowNs;
  int64_t index = nowNs / kBucketNs;
  Bucket& b = buckets_[static_cast<size_t>(index) % kBuckets];
  if (b.index != index) b = Bucket{index};
  return b;
}

void LoadWindow::arrival(int64_t nowNs) { ++bucketAt(nowNs).arrivals; }

void LoadWindow::completion(int64_t nowNs, int64_t serviceNs, bool withinObjective) {
  Bucket& b = bucketAt(nowNs);
  ++b.completions;
  b.serviceNs += serviceNs;
  if (withinObjective) ++b.withinObjective;
  if (samples_.size() < kServiceSamples) {
    samples_.push_back(serviceNs);
  } else {
    sampleSum_ -= samples_[next_];
    double old = static_cast<double>(samples_[next_]);
    sampleSquares_ -= old * old;
    samples_[next_] = serviceNs;
    next_ = (next_ + 1) % kServiceSamples;
  }
  sampleSum_ += serviceNs;
  sampleSquares_ += static_cast<double>(serviceNs) * static_cast<double>(serviceNs);
}

void LoadWindow::refusal(int64_t nowNs, Refusal reason) {
  ++bucketAt(nowNs).refusals[static_cast<size_t>(reason)];
}

WindowEstimate LoadWindow::estimate(int64_t nowNs) const {
  WindowEstimate e;
  if (firstNs_ < 0) return e;
  int64_t current = nowNs / kBucketNs;
  int64_t serviceNs = 0;
  for (const Bucket& b : buckets_) {
    if (b.index < 0 || b.index > current || b.index <= current - int64_t{kBuckets}) continue;
    e.arrivals += b.arrivals;
    e.completions += b.completions;
    e.withinObjective += b.withinObjective;
    serviceNs += b.serviceNs;
    for (size_t r = 0; r < kRefusalKinds; ++r) e.refusals[r] += b.refusals[r];
  }
  // The window spans the full buckets before the current one plus the current one's
  // elapsed part, and never reaches back before the first event.
  int64_t start = std::max(firstNs_, (current - int64_t{kBuckets} + 1) * kBucketNs);
  int64_t span = std::max<int64_t>(nowNs - start, kBucketNs / 10);
  e.windowSeconds = static_cast<double>(span) / 1e9;
  e.ratePerSecond = static_cast<double>(e.arrivals) / e.windowSeconds;
  e.slotsUsed = static_cast<double>(serviceNs) / static_cast<double>(span);
  return e;
}

double LoadWindow::recentRate(int64_t nowNs, size_t count) const {
  if (firstNs_ < 0 || count == 0) return 0;
  int64_t current = nowNs / kBucketNs;
  count = std::min(count, kBuckets);
  uint64_t arrivals = 0;
  for (const Bucket& b : buckets_) {
    if (b.index >= 0 && b.index <= current && b.index > current - int64_t(count)) {
      arrivals += b.arrivals;
    }
  }
  int64_t start = std::max(firstNs_, (current - int64_t(count) + 1) * kBucketNs);
  int64_t span = std::max<int64_t>(nowNs - start, kBucketNs / 10);
  return static_cast<double>(arrivals) * 1e9 / static_cast<double>(span);
}

double LoadWindow::meanServiceNs() const {
  return samples_.empty() ? 0
                          : static_cast<double>(sampleSum_) / static_cast<double>(samples_.size());
}

double LoadWindow::serviceVarianceNs2() const {
  if (samples_.size() < 2) return 0;
  double n = static_cast<double>(samples_.size());
  double mean = static_cast<double>(sampleSum_) / n;
  // Population variance from the running sums; rounding may leave a tiny negative.
  return std::max(0.0, sampleSquares_ / n - mean * mean);
}

double LoadWindow::serviceQuantileNs(double q) const {
  if (samples_.empty()) return 0;
  std::vector<int64_t> sorted = samples_;
  size_t i = static_cast<size_t>(std::clamp(q, 0.0, 1.0) * static_cast<double>(sorted.size() - 1) + 0.5);
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<ptrdiff_t>(i), sorted.end());
  return static_cast<double>(sorted[i]);
}

ServiceEstimate LoadWindow::service() const {
  ServiceEstimate s;
  if (samples_.empty()) return s;
  std::vector<int64_t> sorted = samples_;
  std::sort(sorted.begin(), sorted.end());
  auto at = [&](double q) {
    size_t i = static_cast<size_t>(q * static_cast<double>(sorted.size() - 1) + 0.5);
    return static_cast<double>(sorted[std::min(i, sorted.size() - 1)]);
  };
  s.samples = static_cast<uint32_t>(sorted.size());
  s.meanNs = meanServiceNs();
  s.varianceNs2 = serviceVarianceNs2();
  s.p50Ns = at(0.50);
  s.p95Ns = at(0.95);
  s.p99Ns = at(0.99);
  return s;
}

}  // namespace tern::exec
