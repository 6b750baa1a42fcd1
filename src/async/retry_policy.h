#pragma once
// What follows an attempt of an async job, one rule for the node's own queue
// (async_queue.h) and the cluster's job stream (cluster/job_stream.h): whether the job
// succeeded, failed for good, or is tried again, after how long, and whether the attempt
// counted. Pure functions of the policy, the attempt and one jitter draw, tested by table
// (tests/unit/async/retry_policy_test.cpp); docs/design/async.md, "Retries and backoff".

#include <cstdint>
#include <optional>

#include "util/error.h"

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

// How an attempt ended, as far as the next step is concerned.
enum class AttemptEnd : uint8_t {
  kSucceeded,
  kFailed,        // the function failed: exit code, trap, timeout, memory or output limit
  kFunctionGone,  // no such function (not_found): another attempt cannot find it either
  kNodeBusy,      // saturated or out of resources: not the function's failure
  kNodeStopping,  // the node is stopping (unavailable): not the function's failure
};
// The end of an attempt whose invocation returned `error` (none: success).
AttemptEnd attemptEndOf(const std::optional<Error>& error);

struct NextStep {
  enum Kind : uint8_t {
    kSucceed,  // the job succeeded
    kFail,     // the job failed for good
    kRetry,    // the job runs again after delayMs
  } kind = kSucceed;
  int64_t delayMs = 0;
  // With kRetry: whether the attempt that ended counts toward maxAttempts. A node that
  // was busy or stopping did not try the function, so the job keeps its attempts.
  bool usesAttempt = false;
};

// The rule. `attempt` is the 1-based attempt that just ended, counting only attempts that
// used one; `busyDelayMs` the wait after a busy node (jittered in its upper half, like
// backoffMs); `unit` the jitter draw in [0, 1).
// - success: kSucceed;
// - the function does not exist: kFail at once, whatever attempts remain;
// - busy node: kRetry after the busy delay, no attempt used (even at the last attempt);
// - stopping node: kRetry at once (another node, or after the restart), no attempt used;
// - the function failed: kFail at the last attempt, else kRetry after
//   backoffMs(policy, attempt), the attempt used.
NextStep nextStep(const RetryPolicy& policy, int64_t busyDelayMs, uint32_t attempt,
                  uint32_t maxAttempts, AttemptEnd end, double unit);

}  // namespace tern::async
