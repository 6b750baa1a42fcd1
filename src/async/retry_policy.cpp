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

AttemptEnd attemptEndOf(const std::optional<Error>& error) {
  if (!error) return AttemptEnd::kSucceeded;
  switch (error->code()) {
    case ErrorCode::kSaturated:
    case ErrorCode::kResourceExhausted:
      return AttemptEnd::kNodeBusy;
    case ErrorCode::kUnavailable:
      return AttemptEnd::kNodeStopping;
    case ErrorCode::kNotFound:
      return AttemptEnd::kFunctionGone;
    default:
      return AttemptEnd::kFailed;
  }
}

NextStep nextStep(const RetryPolicy& policy, int64_t busyDelayMs, uint32_t attempt,
                  uint32_t maxAttempts, AttemptEnd end, double unit) {
  NextStep s;
  switch (end) {
    case AttemptEnd::kSucceeded:
      s.kind = NextStep::kSucceed;
      return s;
    case AttemptEnd::kFunctionGone:
      s.kind = NextStep::kFail;
      return s;
    case AttemptEnd::kNodeBusy:
      s.kind = NextStep::kRetry;
      s.delayMs = backoffMs(RetryPolicy{1, busyDelayMs, busyDelayMs}, 1, unit);
      s.usesAttempt = false;
      return s;
    case AttemptEnd::kNodeStopping:
      s.kind = NextStep::kRetry;
      s.delayMs = 0;
      s.usesAttempt = false;
      return s;
    case AttemptEnd::kFailed:
      break;
  }
  if (attempt >= maxAttempts) {
    s.kind = NextStep::kFail;
    return s;
  }
  s.kind = NextStep::kRetry;
  s.delayMs = backoffMs(policy, attempt, unit);
  s.usesAttempt = true;
  return s;
}

}  // namespace tern::async
