#pragma once
// How often and how long after a failure the queue tries again: a pure function of the
// policy, the number of failed attempts and one jitter draw, so it is tested by table.

#include <cstdint>

namespace tern::async {

struct RetryPolicy {
  uint32_t maxAttempts = 5;  // attempts in all, the first included
  int64_t baseMs = 1000;     // delay after the first failure, before jitter
  int64_t capMs = 5 * 60 * 1000;
};

// The delay before the next attempt after `failedAttempts` (>= 1) failures: the exponential
// delay base * 2^(failedAttempts-1), capped at capMs, of which the upper half is jittered
// by `unit` in [0, 1): the result lies in [d/2, d). Jitter spreads the retries of jobs
// that failed together; keeping the lower half means a retry never comes at once.
int64_t backoffMs(const RetryPolicy& policy, uint32_t failedAttempts, double unit);

}  // namespace tern::async
