#include "providers/stats.h"

#include <algorithm>
#include <cmath>

namespace tern::providers {

void Stats::begin() {
  MutexLock lock(mu_);
  ++inFlight_;
}

void Stats::end(bool ok, double latencyMs, int64_t nowMs) {
  {
    MutexLock lock(mu_);
    if (inFlight_ > 0) --inFlight_;
  }
  record(ok, latencyMs, nowMs);
}

void Stats::record(bool ok, double latencyMs, int64_t nowMs) {
  MutexLock lock(mu_);
  const double a = options_.alpha;
  lastUsed_ = nowMs;
  // Failures are averaged over every attempt; the mean starts at 0 (a new provider is
  // presumed healthy), so one failure alone does not mark it as failing.
  failures_ = a * (ok ? 0.0 : 1.0) + (1 - a) * failures_;
  if (!ok) return;
  if (!std::isfinite(latencyMs) || latencyMs < 0) latencyMs = 0;
  ++samples_;
  // The first latency is the mean, rather than being pulled toward 0 by the empty start.
  ewma_ = samples_ == 1 ? latencyMs : a * latencyMs + (1 - a) * ewma_;
  if (options_.window == 0) return;
  if (window_.size() < options_.window) {
    window_.emplace_back(nowMs, latencyMs);
    next_ = window_.size() % options_.window;
  } else {
    window_[next_] = {nowMs, latencyMs};
    next_ = (next_ + 1) % options_.window;
  }
}

ProviderView Stats::view(int64_t nowMs) const {
  MutexLock lock(mu_);
  ProviderView v;
  v.samples = samples_;
  v.ewmaMs = ewma_;
  v.failureRate = failures_;
  v.inFlight = inFlight_;
  v.lastUsedMs = lastUsed_;
  // p95 by nearest rank over the latencies of the last windowAge; 0 when none is that
  // recent (then the provider's p95 is unknown, as an unmeasured provider's is).
  std::vector<double> recent;
  recent.reserve(window_.size());
  const int64_t age = options_.windowAge.count();
  for (const auto& [at, latency] : window_) {
    if (nowMs - at <= age) recent.push_back(latency);
  }
  if (!recent.empty()) {
    size_t rank = (95 * recent.size() + 99) / 100;  // ceil(0.95 n), in integers
    size_t index = std::clamp<size_t>(rank, 1, recent.size()) - 1;
    std::nth_element(recent.begin(), recent.begin() + static_cast<ptrdiff_t>(index), recent.end());
    v.p95Ms = recent[index];
  }
  return v;
}

}  // namespace tern::providers
