#pragma once
// What tern knows of one (provider, function): measured end to end at the caller on every
// call (passive) and by probes while idle (active). Thread-safe.

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "util/thread_annotations.h"

namespace tern::providers {

// A snapshot, as policies and `tern provider ls` see it.
struct ProviderView {
  std::string name;
  std::string tier;
  double pricePerCall = 0;
  uint64_t samples = 0;       // latencies recorded (calls and probes that got an answer)
  double ewmaMs = 0;          // exponentially weighted mean latency
  double p95Ms = 0;           // 95th percentile of the latencies in the window
  double failureRate = 0;     // exponentially weighted share of failed attempts, 0..1
  uint32_t inFlight = 0;
  int64_t lastUsedMs = 0;     // steady clock of the last call or probe
};

struct StatsOptions {
  double alpha = 0.3;        // weight of a new sample in the means
  size_t window = 50;        // latencies kept for the p95
  std::chrono::milliseconds windowAge{60000};  // older samples leave the window
};

class Stats {
 public:
  explicit Stats(StatsOptions o = {}) : options_(o) {}
  // A call or probe began / ended. `ok`: it got a response (any status); its latency counts.
  void begin();
  void end(bool ok, double latencyMs, int64_t nowMs);
  // Without a call in progress (begin/end): a probe's outcome.
  void record(bool ok, double latencyMs, int64_t nowMs);
  ProviderView view(int64_t nowMs) const;  // name, tier and price left for the caller

 private:
  StatsOptions options_;
  mutable Mutex mu_;
  uint64_t samples_ TERN_GUARDED_BY(mu_) = 0;
  double ewma_ TERN_GUARDED_BY(mu_) = 0;
  double failures_ TERN_GUARDED_BY(mu_) = 0;
  uint32_t inFlight_ TERN_GUARDED_BY(mu_) = 0;
  int64_t lastUsed_ TERN_GUARDED_BY(mu_) = 0;
  // (time, latency), a ring
  std::vector<std::pair<int64_t, double>> window_ TERN_GUARDED_BY(mu_);
  size_t next_ TERN_GUARDED_BY(mu_) = 0;
};

}  // namespace tern::providers
