#pragma once
// Online estimates of one function's load from its real invocations: arrival rate,
// worker-slot usage, attainment of its objective and refusals over a sliding window of
// time buckets, and the service-time mean and percentiles of its most recent invocations.
// Times come from the caller (the executor's clock); not thread-safe (the executor's lock
// guards it).

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace tern::exec {

// Why a request was refused at admission.
enum class Refusal : uint8_t {
  kQueueFull,  // the node's wait queue is full
  kDeadline,   // predicted to finish after its deadline: refused on arrival
  kExpired,    // waited until it could no longer finish in time: refused before running
};
inline constexpr size_t kRefusalKinds = 3;
// "queue_full", "deadline", "expired".
const char* refusalName(Refusal r);

struct WindowEstimate {
  double windowSeconds = 0;   // time the figures cover (shorter while the function is new)
  double ratePerSecond = 0;   // arrivals
  double slotsUsed = 0;       // slot-seconds of service per second
  uint64_t arrivals = 0;
  uint64_t completions = 0;
  uint64_t withinObjective = 0;
  std::array<uint64_t, kRefusalKinds> refusals{};
  // Share of requests (completed or refused) that completed within the objective; 1 when
  // there were none.
  double attainment() const;
};

struct ServiceEstimate {
  uint32_t samples = 0;  // invocations the figures come from (at most kServiceSamples)
  double meanNs = 0;
  double varianceNs2 = 0;
  double p50Ns = 0, p95Ns = 0, p99Ns = 0;
};

class LoadWindow {
 public:
  static constexpr int64_t kBucketNs = 100'000'000;  // 100 ms
  static constexpr size_t kBuckets = 20;             // a 2 s window
  static constexpr size_t kServiceSamples = 256;

  void arrival(int64_t nowNs);
  void completion(int64_t nowNs, int64_t serviceNs, bool withinObjective);
  void refusal(int64_t nowNs, Refusal reason);

  WindowEstimate estimate(int64_t nowNs) const;
  // Arrivals per second over the last `buckets` buckets (the current one included).
  double recentRate(int64_t nowNs, size_t buckets) const;
  // Mean service time of the recent invocations (cheap); 0 when none yet.
  double meanServiceNs() const;
  // Variance of the recent service times (cheap); 0 when fewer than two.
  double serviceVarianceNs2() const;
  // The q-quantile (0 <= q <= 1) of the recent service times (sorts them); 0 when none.
  double serviceQuantileNs(double q) const;
  ServiceEstimate service() const;

 private:
  struct Bucket {
    int64_t index = -1;  // nowNs / kBucketNs of the time it counts
    uint64_t arrivals = 0;
    uint64_t completions = 0;
    uint64_t withinObjective = 0;
    int64_t serviceNs = 0;
    std::array<uint64_t, kRefusalKinds> refusals{};
  };
  Bucket& bucketAt(int64_t nowNs);

  std::array<Bucket, kBuckets> buckets_{};
  int64_t firstNs_ = -1;
  std::vector<int64_t> samples_;  // ring of recent service times
  size_t next_ = 0;
  int64_t sampleSum_ = 0;
  double sampleSquares_ = 0;  // sum of squared service times in the ring
};

}  // namespace tern::exec
