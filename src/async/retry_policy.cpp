#include "async/retry_policy.h"

#include <algorithm>

namespace tern::async {

int64_t backoffMs(const RetryPolicy& policy, uint32_t failedAttempts, double unit) {
  int64_t cap = std::max<int64_t>(policy.capMs, 0);
  int64_t d = std::clamp<int64_t>(policy.baseMs, 0, cap);
  // Doubling stops at the cap, so large attempt numbers cannot overflow.
  for (uint32_t i = 1; i < failedAttempts && d < cap; ++i) d = std::min(cap, d * 2);
  unit = std::clamp(unit, 0.0, 1.0);
  int64_t half = d / 2;
  int64_t jitter = static_cast<int64_t>(static_cast<double>(d - half) * unit);
  return std::min(d, half + jitter);
}

}  // namespace tern::async
