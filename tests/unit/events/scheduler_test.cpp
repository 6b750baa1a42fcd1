#include "events/scheduler.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "test_support.h"
#include "utc_text.h"

namespace tern::events {
namespace {

using testing::utcMs;
using testing::utcText;

// Only guards against a hung scheduler; no test depends on how fast anything happens.
constexpr std::chrono::milliseconds kHangGuard{60'000};

// The scheduled times a callback was called with.
class Fired {
 public:
  Scheduler::Fire callback() {
    return [this](int64_t scheduledMs) {
      std::lock_guard lock(mu_);
      times_.push_back(scheduledMs);
    };
  }
  std::vector<std::string> times() const {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (int64_t t : times_) out.push_back(utcText(t));
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<int64_t> times_;
};

std::vector<std::string> utc(std::initializer_list<const char*> texts) {
  std::vector<std::string> out;
  for (const char* t : texts) out.push_back(utcText(utcMs(t)));
  return out;
}

Schedule schedule(std::string_view spec) {
  auto parsed = parseSchedule(spec);
  EXPECT_TRUE(parsed.ok()) << parsed.error().message();
  return *parsed;
}

class SchedulerTest : public ::testing::Test {
 protected:
  std::unique_ptr<Scheduler> open(MissedRuns policy = MissedRuns::kSkip) {
    SchedulerOptions options;
    options.databasePath = (dir_.path() / "schedules.db").string();
    options.missedRuns = policy;
    options.onError = [this](const Error& e) {
      std::lock_guard lock(mu_);
      errors_.push_back(e.message());
    };
    auto scheduler = Scheduler::open(std::move(options), clock_);
    EXPECT_TRUE(scheduler.ok()) << scheduler.error().message();
    return std::move(*scheduler);
  }

  // Moves the clock and returns once the scheduler has done everything due at that time.
  void moveTo(const char* time) {
    clock_.setMs(utcMs(time));
    ASSERT_TRUE(clock_.awaitSleepers(1, kHangGuard)) << "scheduler did not go back to sleep";
  }

  std::vector<std::string> errors() {
    std::lock_guard lock(mu_);
    return errors_;
  }

  tern::test::TempDir dir_;
  ManualClock clock_{utcMs("2024-01-01T00:00")};
  std::mutex mu_;
  std::vector<std::string> errors_;
};

TEST_F(SchedulerTest, FiresAtTheScheduledTimes) {
  Fired fired;
  auto scheduler = open();
  ASSERT_TRUE(scheduler->add("tick", schedule("every:10s"), fired.callback()).ok());
  EXPECT_EQ(scheduler->nextRun("tick"), utcMs("2024-01-01T00:00:10"));
  scheduler->start();
  ASSERT_TRUE(clock_.awaitSleepers(1, kHangGuard));
  EXPECT_TRUE(fired.times().empty());  // a first add starts from now

  moveTo("2024-01-01T00:00:09.999");
  EXPECT_TRUE(fired.times().empty());
  moveTo("2024-01-01T00:00:10");
  EXPECT_EQ(fired.times(), utc({"2024-01-01T00:00:10"}));
  moveTo("2024-01-01T00:00:15");
  EXPECT_EQ(fired.times(), utc({"2024-01-01T00:00:10"}));
  moveTo("2024-01-01T00:00:20.500");  // late wake-up: the scheduled time is reported
  EXPECT_EQ(fired.times(), utc({"2024-01-01T00:00:10", "2024-01-01T00:00:20"}));
  EXPECT_EQ(scheduler->nextRun("tick"), utcMs("2024-01-01T00:00:30"));
  EXPECT_TRUE(errors().empty());
}

TEST_F(SchedulerTest, FiresCronSchedulesInUtc) {
  clock_.setMs(utcMs("2024-01-05T08:31"));  // a Friday
  Fired weekdays;
  Fired hourly;
  auto scheduler = open();
  ASSERT_TRUE(scheduler->add("weekdays", schedule("cron:30 8 * * MON-FRI"), weekdays.callback()).ok());
  ASSERT_TRUE(scheduler->add("hourly", schedule("cron:@hourly"), hourly.callback()).ok());
  scheduler->start();
  moveTo("2024-01-05T09:00");
  moveTo("2024-01-06T08:30");  // Saturday
  moveTo("2024-01-08T08:30");  // Monday
  EXPECT_EQ(weekdays.times(), utc({"2024-01-08T08:30"}));
  EXPECT_EQ(hourly.times(), utc({"2024-01-05T09:00", "2024-01-06T08:00", "2024-01-08T08:00"}));
}

TEST_F(SchedulerTest, AClockJumpFiresOnceWithTheLatestTime) {
  Fired fired;
  auto scheduler = open();
  ASSERT_TRUE(scheduler->add("tick", schedule("every:10s"), fired.callback()).ok());
  scheduler->start();
  moveTo("2024-01-01T01:00:05");  // 360 runs were due
  EXPECT_EQ(fired.times(), utc({"2024-01-01T01:00:00"}));
  EXPECT_EQ(scheduler->nextRun("tick"), utcMs("2024-01-01T01:00:10"));
}

TEST_F(SchedulerTest, RemoveStopsFiring) {
  Fired fired;
  auto scheduler = open();
  ASSERT_TRUE(scheduler->add("tick", schedule("every:10s"), fired.callback()).ok());
  EXPECT_EQ(scheduler->size(), 1u);
  scheduler->start();
  moveTo("2024-01-01T00:00:10");
  ASSERT_TRUE(scheduler->remove("tick").ok());
  EXPECT_EQ(scheduler->nextRun("tick"), std::nullopt);
  EXPECT_EQ(scheduler->size(), 0u);
  moveTo("2024-01-01T00:00:20");
  moveTo("2024-01-01T00:05:00");
  EXPECT_EQ(fired.times(), utc({"2024-01-01T00:00:10"}));

  auto again = scheduler->remove("tick");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(again.error().message(), "no schedule \"tick\" is registered");
}

TEST_F(SchedulerTest, AddReplacesTheScheduleAndCallback) {
  Fired first;
  Fired second;
  Fired third;
  auto scheduler = open();
  ASSERT_TRUE(scheduler->add("job", schedule("every:10s"), first.callback()).ok());
  scheduler->start();
  moveTo("2024-01-01T00:00:10");
  ASSERT_TRUE(scheduler->add("job", schedule("every:1m"), second.callback()).ok());
  moveTo("2024-01-01T00:00:20");
  moveTo("2024-01-01T00:00:59");
  moveTo("2024-01-01T00:01:00");
  EXPECT_EQ(first.times(), utc({"2024-01-01T00:00:10"}));
  EXPECT_EQ(second.times(), utc({"2024-01-01T00:01:00"}));

  // The same spec again only swaps the callback.
  ASSERT_TRUE(scheduler->add("job", schedule("every:60s"), third.callback()).ok());
  EXPECT_EQ(scheduler->nextRun("job"), utcMs("2024-01-01T00:02:00"));
  moveTo("2024-01-01T00:02:00");
  EXPECT_EQ(second.times(), utc({"2024-01-01T00:01:00"}));
  EXPECT_EQ(third.times(), utc({"2024-01-01T00:02:00"}));
}

TEST_F(SchedulerTest, SchedulesAreIndependent) {
  Fired a;
  Fired b;
  auto scheduler = open();
  ASSERT_TRUE(scheduler->add("a", schedule("every:10s"), a.callback()).ok());
  ASSERT_TRUE(scheduler->add("b", schedule("every:15s"), b.callback()).ok());
  scheduler->start();
  for (const char* t : {"2024-01-01T00:00:10", "2024-01-01T00:00:15", "2024-01-01T00:00:20",
                        "2024-01-01T00:00:30"}) {
    moveTo(t);
  }
  EXPECT_EQ(a.times(), utc({"2024-01-01T00:00:10", "2024-01-01T00:00:20", "2024-01-01T00:00:30"}));
  EXPECT_EQ(b.times(), utc({"2024-01-01T00:00:15", "2024-01-01T00:00:30"}));
}

// A node that was down from 00:01:30 to 00:10:30 missed the runs at 00:02 .. 00:10.
TEST_F(SchedulerTest, SkipPolicyForgetsRunsMissedWhileDown) {
  {
    Fired fired;
    auto before = open(MissedRuns::kSkip);
    ASSERT_TRUE(before->add("job", schedule("every:1m"), fired.callback()).ok());
    before->start();
    moveTo("2024-01-01T00:01:00");
    moveTo("2024-01-01T00:01:30");
    EXPECT_EQ(fired.times(), utc({"2024-01-01T00:01:00"}));
  }
  clock_.setMs(utcMs("2024-01-01T00:10:30"));
  Fired fired;
  auto after = open(MissedRuns::kSkip);
  ASSERT_TRUE(after->add("job", schedule("every:1m"), fired.callback()).ok());
  EXPECT_EQ(after->nextRun("job"), utcMs("2024-01-01T00:11:00"));
  after->start();
  ASSERT_TRUE(clock_.awaitSleepers(1, kHangGuard));
  EXPECT_TRUE(fired.times().empty());
  moveTo("2024-01-01T00:11:00");
  EXPECT_EQ(fired.times(), utc({"2024-01-01T00:11:00"}));
}

TEST_F(SchedulerTest, RunOncePolicyFiresTheMostRecentMissedRun) {
  {
    Fired fired;
    auto before = open(MissedRuns::kRunOnce);
    ASSERT_TRUE(before->add("job", schedule("every:1m"), fired.callback()).ok());
    before->start();
    moveTo("2024-01-01T00:01:00");
    moveTo("2024-01-01T00:01:30");
    EXPECT_EQ(fired.times(), utc({"2024-01-01T00:01:00"}));
  }
  clock_.setMs(utcMs("2024-01-01T00:10:30"));
  Fired fired;
  auto after = open(MissedRuns::kRunOnce);
  ASSERT_TRUE(after->add("job", schedule("every:1m"), fired.callback()).ok());
  EXPECT_EQ(after->nextRun("job"), utcMs("2024-01-01T00:10:00"));  // due
  after->start();
  ASSERT_TRUE(clock_.awaitSleepers(1, kHangGuard));
  EXPECT_EQ(fired.times(), utc({"2024-01-01T00:10:00"}));
  moveTo("2024-01-01T00:11:00");
  EXPECT_EQ(fired.times(), utc({"2024-01-01T00:10:00", "2024-01-01T00:11:00"}));
}

TEST_F(SchedulerTest, RunOncePolicyCatchesUpOnATimeNotReachedBeforeTheRestart) {
  // Added at 00:00 and never fired: the node was down at 00:01, its first run.
  {
    Fired fired;
    auto before = open(MissedRuns::kRunOnce);
    ASSERT_TRUE(before->add("job", schedule("every:1m"), fired.callback()).ok());
  }
  clock_.setMs(utcMs("2024-01-01T00:01:10"));
  Fired fired;
  auto after = open(MissedRuns::kRunOnce);
  ASSERT_TRUE(after->add("job", schedule("every:1m"), fired.callback()).ok());
  after->start();
  ASSERT_TRUE(clock_.awaitSleepers(1, kHangGuard));
  EXPECT_EQ(fired.times(), utc({"2024-01-01T00:01:00"}));
}

TEST_F(SchedulerTest, RunOncePolicyWithNothingMissedFiresNothingExtra) {
  {
    Fired fired;
    auto before = open(MissedRuns::kRunOnce);
    ASSERT_TRUE(before->add("job", schedule("every:1m"), fired.callback()).ok());
    before->start();
    moveTo("2024-01-01T00:01:00");
  }
  clock_.setMs(utcMs("2024-01-01T00:01:59"));
  Fired fired;
  auto after = open(MissedRuns::kRunOnce);
  ASSERT_TRUE(after->add("job", schedule("every:1m"), fired.callback()).ok());
  after->start();
  moveTo("2024-01-01T00:02:00");
  EXPECT_EQ(fired.times(), utc({"2024-01-01T00:02:00"}));
}

TEST_F(SchedulerTest, RunOncePolicyDoesNotCatchUpANewOrChangedSchedule) {
  {
    Fired fired;
    auto before = open(MissedRuns::kRunOnce);
    ASSERT_TRUE(before->add("changed", schedule("every:1m"), fired.callback()).ok());
    ASSERT_TRUE(before->add("removed", schedule("every:1m"), fired.callback()).ok());
    before->start();
    moveTo("2024-01-01T00:01:00");
    ASSERT_TRUE(before->remove("removed").ok());
  }
  clock_.setMs(utcMs("2024-01-01T00:10:30"));
  Fired fired;
  auto after = open(MissedRuns::kRunOnce);
  ASSERT_TRUE(after->add("changed", schedule("every:2m"), fired.callback()).ok());
  ASSERT_TRUE(after->add("removed", schedule("every:1m"), fired.callback()).ok());
  ASSERT_TRUE(after->add("new", schedule("every:1m"), fired.callback()).ok());
  after->start();
  ASSERT_TRUE(clock_.awaitSleepers(1, kHangGuard));
  EXPECT_TRUE(fired.times().empty());
  EXPECT_EQ(after->nextRun("changed"), utcMs("2024-01-01T00:12:00"));
}

TEST_F(SchedulerTest, StopWhileWaitingReturns) {
  Fired fired;
  auto scheduler = open();
  ASSERT_TRUE(scheduler->add("tick", schedule("every:1h"), fired.callback()).ok());
  scheduler->start();
  ASSERT_TRUE(clock_.awaitSleepers(1, kHangGuard));
  scheduler->stop();
  scheduler->stop();  // idempotent
  clock_.setMs(utcMs("2024-01-01T02:00"));
  EXPECT_TRUE(fired.times().empty());
  auto late = scheduler->add("late", schedule("every:1h"), fired.callback());
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code(), ErrorCode::kUnavailable);
}

TEST(SchedulerSystemClockTest, StopWhileWaitingReturns) {
  SystemClock clock;
  Fired fired;
  auto scheduler = Scheduler::open(SchedulerOptions{}, clock);
  ASSERT_TRUE(scheduler.ok()) << scheduler.error().message();
  ASSERT_TRUE((*scheduler)->add("yearly", schedule("cron:@yearly"), fired.callback()).ok());
  (*scheduler)->start();
  (*scheduler)->stop();
  EXPECT_TRUE(fired.times().empty());
}

TEST_F(SchedulerTest, CallbacksMayRemoveTheirOwnSchedule) {
  int calls = 0;
  auto scheduler = open();
  Scheduler* s = scheduler.get();
  ASSERT_TRUE(scheduler
                  ->add("once", schedule("every:10s"),
                        [&](int64_t) {
                          ++calls;
                          EXPECT_TRUE(s->remove("once").ok());
                        })
                  .ok());
  scheduler->start();
  moveTo("2024-01-01T00:00:10");
  moveTo("2024-01-01T00:00:20");
  EXPECT_EQ(calls, 1);
}

TEST_F(SchedulerTest, AThrowingCallbackIsReportedAndTheSchedulerGoesOn) {
  Fired fired;
  auto scheduler = open();
  ASSERT_TRUE(scheduler
                  ->add("bad", schedule("every:10s"),
                        [](int64_t) { throw std::runtime_error("queue full"); })
                  .ok());
  ASSERT_TRUE(scheduler->add("good", schedule("every:10s"), fired.callback()).ok());
  scheduler->start();
  moveTo("2024-01-01T00:00:10");
  moveTo("2024-01-01T00:00:20");
  EXPECT_EQ(fired.times(), utc({"2024-01-01T00:00:10", "2024-01-01T00:00:20"}));
  EXPECT_EQ(errors(), std::vector<std::string>(
                          2, "schedule \"bad\": callback threw: queue full"));
}

TEST_F(SchedulerTest, RefusesBadRegistrations) {
  Fired fired;
  auto scheduler = open();
  auto empty = scheduler->add("", schedule("every:10s"), fired.callback());
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(empty.error().message(), "schedule id is empty");

  auto noCallback = scheduler->add("x", schedule("every:10s"), nullptr);
  ASSERT_FALSE(noCallback.ok());
  EXPECT_EQ(noCallback.error().message(), "schedule \"x\" has no callback");

  auto longId = scheduler->add(std::string(257, 'a'), schedule("every:10s"), fired.callback());
  ASSERT_FALSE(longId.ok());
  EXPECT_EQ(longId.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(longId.error().message().find("is longer than 256 bytes"), std::string::npos);
  EXPECT_EQ(scheduler->nextRun("x"), std::nullopt);
}

TEST_F(SchedulerTest, UnusableDatabasesAreClearErrors) {
  SchedulerOptions missingDir;
  missingDir.databasePath = (dir_.path() / "no-such-dir" / "schedules.db").string();
  auto a = Scheduler::open(missingDir, clock_);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().code(), ErrorCode::kIo);
  EXPECT_NE(a.error().message().find("schedule database"), std::string::npos);
  EXPECT_NE(a.error().message().find("open failed"), std::string::npos);

  auto garbage = dir_.path() / "garbage.db";
  std::ofstream(garbage) << std::string(4096, 'x');
  SchedulerOptions notADatabase;
  notADatabase.databasePath = garbage.string();
  auto b = Scheduler::open(notADatabase, clock_);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().code(), ErrorCode::kIo);
  EXPECT_NE(b.error().message().find("not a database"), std::string::npos) << b.error().message();
}

}  // namespace
}  // namespace tern::events
