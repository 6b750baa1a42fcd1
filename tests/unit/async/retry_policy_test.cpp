// The one rule after an attempt of an async job, for the local queue and the cluster's
// job stream alike: a table of (attempt, how it ended) -> next step.
#include "async/retry_policy.h"

#include <gtest/gtest.h>

namespace tern::async {
namespace {

TEST(RetryPolicyTest, NextStepAfterAnAttempt) {
  const RetryPolicy policy{3, 1000, 60000};
  const int64_t busyDelayMs = 200;
  struct Row {
    uint32_t attempt;  // the attempt that ended (of 3)
    AttemptEnd end;
    NextStep::Kind kind;
    int64_t delayMs;   // with kRetry
    bool usesAttempt;  // with kRetry
  };
  // Jitter 0.5: a delay lies halfway in [d/2, d).
  const Row rows[] = {
      {1, AttemptEnd::kSucceeded, NextStep::kSucceed, 0, false},
      {3, AttemptEnd::kSucceeded, NextStep::kSucceed, 0, false},
      {1, AttemptEnd::kFailed, NextStep::kRetry, 750, true},
      {2, AttemptEnd::kFailed, NextStep::kRetry, 1500, true},
      {3, AttemptEnd::kFailed, NextStep::kFail, 0, false},
      {4, AttemptEnd::kFailed, NextStep::kFail, 0, false},
      // A function that does not exist fails the job at once, attempts left or not.
      {1, AttemptEnd::kFunctionGone, NextStep::kFail, 0, false},
      {3, AttemptEnd::kFunctionGone, NextStep::kFail, 0, false},
      // A busy or stopping node is not the function's failure: no attempt is used, even
      // at the last one.
      {1, AttemptEnd::kNodeBusy, NextStep::kRetry, 150, false},
      {3, AttemptEnd::kNodeBusy, NextStep::kRetry, 150, false},
      {1, AttemptEnd::kNodeStopping, NextStep::kRetry, 0, false},
      {3, AttemptEnd::kNodeStopping, NextStep::kRetry, 0, false},
  };
  for (const Row& r : rows) {
    NextStep s = nextStep(policy, busyDelayMs, r.attempt, policy.maxAttempts, r.end, 0.5);
    SCOPED_TRACE(testing::Message() << "attempt " << r.attempt << " end " << int(r.end));
    EXPECT_EQ(s.kind, r.kind);
    if (s.kind == NextStep::kRetry) {
      EXPECT_EQ(s.delayMs, r.delayMs);
      EXPECT_EQ(s.usesAttempt, r.usesAttempt);
    }
  }
}

TEST(RetryPolicyTest, AttemptEndsByErrorKind) {
  EXPECT_EQ(attemptEndOf(std::nullopt), AttemptEnd::kSucceeded);
  EXPECT_EQ(attemptEndOf(Error(ErrorCode::kSaturated, "")), AttemptEnd::kNodeBusy);
  EXPECT_EQ(attemptEndOf(Error(ErrorCode::kResourceExhausted, "")), AttemptEnd::kNodeBusy);
  EXPECT_EQ(attemptEndOf(Error(ErrorCode::kUnavailable, "")), AttemptEnd::kNodeStopping);
  EXPECT_EQ(attemptEndOf(Error(ErrorCode::kNotFound, "")), AttemptEnd::kFunctionGone);
  EXPECT_EQ(attemptEndOf(Error(ErrorCode::kTimeout, "")), AttemptEnd::kFailed);
  EXPECT_EQ(attemptEndOf(Error(ErrorCode::kInternal, "")), AttemptEnd::kFailed);
}

}  // namespace
}  // namespace tern::async
