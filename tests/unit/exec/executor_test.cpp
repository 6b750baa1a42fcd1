// Admission: slots, per-function limits, FIFO waiting, refusal when full, drain.

#include "exec/executor.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tern::exec {
namespace {

TEST(ExecutorTest, SlotsThenQueueThenRefusal) {
  Executor ex({2, 2});
  AdmissionState f;
  std::vector<std::string> started;
  EXPECT_EQ(ex.admit(f, [] {}), Admission::kRunNow);
  EXPECT_EQ(ex.tryRunNow(f), Admission::kRunNow);
  EXPECT_EQ(ex.tryRunNow(f), Admission::kQueued);  // no slot: the caller must wait
  EXPECT_EQ(ex.admit(f, [&] { started.push_back("a"); }), Admission::kQueued);
  EXPECT_EQ(ex.admit(f, [&] { started.push_back("b"); }), Admission::kQueued);
  EXPECT_EQ(ex.admit(f, [&] { started.push_back("c"); }), Admission::kRejected);
  EXPECT_EQ(ex.stats().rejected, 1u);
  ex.finish(f);  // frees a slot: the first waiter starts, holding it
  EXPECT_EQ(started, std::vector<std::string>{"a"});
  ex.finish(f);
  EXPECT_EQ(started, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(ex.stats().running, 2u);
  EXPECT_EQ(ex.stats().queued, 0u);
}

TEST(ExecutorTest, NewcomersDoNotOvertakeWaiters) {
  Executor ex({1, 4});
  AdmissionState f;
  EXPECT_EQ(ex.tryRunNow(f), Admission::kRunNow);
  EXPECT_EQ(ex.admit(f, [] {}), Admission::kQueued);
  ex.finish(f);  // the waiter now runs
  EXPECT_EQ(ex.tryRunNow(f), Admission::kQueued);
}

TEST(ExecutorTest, FunctionLimitLeavesSlotsToOthers) {
  Executor ex({4, 4});
  AdmissionState limited, other;
  limited.limit = 1;
  std::vector<std::string> started;
  EXPECT_EQ(ex.tryRunNow(limited), Admission::kRunNow);
  EXPECT_EQ(ex.admit(limited, [&] { started.push_back("limited"); }), Admission::kQueued);
  // A queued request of a capped function does not block another function's waiter.
  EXPECT_EQ(ex.admit(other, [&] { started.push_back("other"); }), Admission::kQueued);
  AdmissionState third;
  EXPECT_EQ(ex.tryRunNow(third), Admission::kQueued);  // others are waiting
  ex.finish(limited);
  EXPECT_EQ(started, (std::vector<std::string>{"limited", "other"}));
}

TEST(ExecutorTest, StopRefusesNewWorkAndWaitsForRunningWork) {
  Executor ex({1, 1});
  AdmissionState f;
  EXPECT_EQ(ex.tryRunNow(f), Admission::kRunNow);
  EXPECT_FALSE(ex.stop(std::chrono::milliseconds(10)));  // one still running
  EXPECT_EQ(ex.tryRunNow(f), Admission::kStopped);
  EXPECT_EQ(ex.admit(f, [] {}), Admission::kStopped);
  ex.finish(f);
  EXPECT_TRUE(ex.stop(std::chrono::milliseconds(10)));
}

}  // namespace
}  // namespace tern::exec
