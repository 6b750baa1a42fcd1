#include "events/schedule.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "utc_text.h"

namespace tern::events {
namespace {

using testing::utcMs;
using testing::utcText;

TEST(IntervalTest, ParsesDurations) {
  const std::vector<std::pair<std::string, int64_t>> cases = {
      {"10s", 10'000},          {"1s", 1'000},           {"1500ms", 1'500},
      {"5m", 300'000},          {"1h", 3'600'000},       {"1h30m", 5'400'000},
      {"90m", 5'400'000},       {"2d", 172'800'000},     {"1d2h3m4s5ms", 93'784'005},
      {"366d", kMaxIntervalMs}, {"1000ms", 1'000},       {"007s", 7'000},
  };
  for (const auto& [text, ms] : cases) {
    SCOPED_TRACE(text);
    auto parsed = parseInterval(text);
    ASSERT_TRUE(parsed.ok()) << parsed.error().message();
    EXPECT_EQ(*parsed, ms);
  }
}

TEST(IntervalTest, FormatsCanonically) {
  EXPECT_EQ(formatInterval(5'400'000), "1h30m");
  EXPECT_EQ(formatInterval(172'800'000), "2d");
  EXPECT_EQ(formatInterval(1'500), "1s500ms");
  EXPECT_EQ(formatInterval(93'784'005), "1d2h3m4s5ms");
  EXPECT_EQ(formatInterval(kMaxIntervalMs), "366d");
}

TEST(IntervalTest, BadDurationsSayWhy) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "interval \"\": is empty (expected a duration such as 10s, 5m, 1h30m or 2d)"},
      {"500ms", "interval \"500ms\": is shorter than the minimum of 1s"},
      {"0s", "interval \"0s\": is shorter than the minimum of 1s"},
      {"999ms", "interval \"999ms\": is shorter than the minimum of 1s"},
      {"367d", "interval \"367d\": is longer than the maximum of 366d"},
      {"366d1ms", "interval \"366d1ms\": is longer than the maximum of 366d"},
      {"8785h", "interval \"8785h\": is longer than the maximum of 366d"},
      {"99999999999999999999999s",
       "interval \"99999999999999999999999s\": is longer than the maximum of 366d"},
      {"10", "interval \"10\": number \"10\" has no unit (d, h, m, s or ms)"},
      {"10 s", "interval \"10 s\": number \"10\" has no unit (d, h, m, s or ms)"},
      {"s", "interval \"s\": expected a number at position 1, found \"s\""},
      {"-5s", "interval \"-5s\": expected a number at position 1, found \"-\""},
      {"1h 30m", "interval \"1h 30m\": expected a number at position 3, found \" \""},
      {"10x", "interval \"10x\": unknown unit \"x\" (expected d, h, m, s or ms)"},
      {"10S", "interval \"10S\": unknown unit \"S\" (expected d, h, m, s or ms)"},
      {"1w", "interval \"1w\": unknown unit \"w\" (expected d, h, m, s or ms)"},
      {"30m1h", "interval \"30m1h\": units must go from largest to smallest, each at most "
                "once (as in 1h30m)"},
      {"1h1h", "interval \"1h1h\": units must go from largest to smallest, each at most once "
               "(as in 1h30m)"},
      {"1.5h", "interval \"1.5h\": number \"1\" has no unit (d, h, m, s or ms)"},
      {"10s\x01", "interval \"10s\\x01\": expected a number at position 4, found \"\\x01\""},
  };
  for (const auto& [text, message] : cases) {
    SCOPED_TRACE(text);
    auto parsed = parseInterval(text);
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(parsed.error().message(), message);
  }
}

TEST(ScheduleTest, ParsesBothKinds) {
  auto cron = parseSchedule("cron:  0 9 * *\tMON-FRI ");
  ASSERT_TRUE(cron.ok()) << cron.error().message();
  EXPECT_EQ(cron->kind(), Schedule::Kind::kCron);
  EXPECT_EQ(cron->spec(), "cron:0 9 * * MON-FRI");
  EXPECT_EQ(cron->describe(), "cron \"0 9 * * MON-FRI\" (UTC)");
  EXPECT_EQ(cron->intervalMs(), 0);

  auto every = parseSchedule("every:90m");
  ASSERT_TRUE(every.ok()) << every.error().message();
  EXPECT_EQ(every->kind(), Schedule::Kind::kEvery);
  EXPECT_EQ(every->spec(), "every:1h30m");
  EXPECT_EQ(every->describe(), "every 1h30m");
  EXPECT_EQ(every->intervalMs(), 5'400'000);

  auto same = parseSchedule("every:1h30m");
  ASSERT_TRUE(same.ok());
  EXPECT_TRUE(*every == *same);
  EXPECT_FALSE(*every == *cron);
}

TEST(ScheduleTest, BadTriggersNameTheAcceptedKinds) {
  const std::string kinds =
      ": is not a time trigger (expected cron:EXPR, e.g. \"cron:0 9 * * MON-FRI\", or "
      "every:DURATION, e.g. \"every:10m\")";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "trigger \"\"" + kinds},
      {"cron", "trigger \"cron\"" + kinds},
      {"http:/fn/x", "trigger \"http:/fn/x\"" + kinds},
      {"CRON:* * * * *", "trigger \"CRON:* * * * *\"" + kinds},
      {" every:10s", "trigger \" every:10s\"" + kinds},
      {"every:", "interval \"\": is empty (expected a duration such as 10s, 5m, 1h30m or 2d)"},
      {"every:500ms", "interval \"500ms\": is shorter than the minimum of 1s"},
      {"cron:", "cron expression \"\": is empty (expected five fields: minute hour "
                "day-of-month month day-of-week)"},
      {"cron:*/0 * * * *", "cron expression \"*/0 * * * *\": minute field \"*/0\": step "
                           "must be 1..59"},
      {"cron:0 0 30 2 *", "cron expression \"0 0 30 2 *\": can never fire: none of its days "
                          "of the month (field \"30\") occur in its months (field \"2\")"},
  };
  for (const auto& [text, message] : cases) {
    SCOPED_TRACE(text);
    auto parsed = parseSchedule(text);
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(parsed.error().message(), message);
  }
  auto huge = parseSchedule("every:" + std::string(5'000, '1') + "s");
  ASSERT_FALSE(huge.ok());
  EXPECT_NE(huge.error().message().find("is longer than 1024 bytes"), std::string::npos);
}

TEST(ScheduleTest, IntervalsAreAnchoredAtTheEpoch) {
  auto hourly = parseSchedule("every:1h");
  ASSERT_TRUE(hourly.ok());
  EXPECT_EQ(utcText(hourly->nextAfter(utcMs("2024-05-01T10:17:03"))),
            utcText(utcMs("2024-05-01T11:00")));
  EXPECT_EQ(hourly->nextAfter(3'599'999), 3'600'000);
  EXPECT_EQ(hourly->nextAfter(3'600'000), 7'200'000);  // strictly after
  EXPECT_EQ(hourly->nextAfter(-1), 0);
  EXPECT_EQ(hourly->nextAfter(-9'000'000), 0);

  auto seven = parseSchedule("every:7s");
  ASSERT_TRUE(seven.ok());
  EXPECT_EQ(seven->nextAfter(1'000), 7'000);
  EXPECT_EQ(seven->nextAfter(13'999), 14'000);

  auto yearly = parseSchedule("every:366d");
  ASSERT_TRUE(yearly.ok());
  EXPECT_EQ(yearly->nextAfter(kLatestMs), kNever);
  EXPECT_EQ(yearly->nextAfter(std::numeric_limits<int64_t>::max()), kNever);
  EXPECT_EQ(yearly->nextAfter(kLatestMs - 1'000), kNever);  // the next one is past 9999
}

TEST(ScheduleTest, LatestInFindsTheMostRecentTime) {
  auto tenSeconds = parseSchedule("every:10s");
  ASSERT_TRUE(tenSeconds.ok());
  EXPECT_EQ(tenSeconds->latestIn(0, 35'000), 30'000);
  EXPECT_EQ(tenSeconds->latestIn(0, 30'000), 30'000);  // the end is included
  EXPECT_EQ(tenSeconds->latestIn(29'999, 30'000), 30'000);
  EXPECT_EQ(tenSeconds->latestIn(30'000, 39'999), std::nullopt);  // the start is not
  EXPECT_EQ(tenSeconds->latestIn(40'000, 30'000), std::nullopt);

  auto quarter = parseSchedule("cron:*/15 * * * *");
  ASSERT_TRUE(quarter.ok());
  EXPECT_EQ(utcText(*quarter->latestIn(utcMs("2024-01-01T10:00"), utcMs("2024-01-01T12:07"))),
            utcText(utcMs("2024-01-01T12:00")));
  EXPECT_EQ(quarter->latestIn(utcMs("2024-01-01T10:00"), utcMs("2024-01-01T10:14:59")),
            std::nullopt);
  EXPECT_EQ(utcText(*quarter->latestIn(utcMs("2024-01-01T10:00"), utcMs("2024-01-01T10:15"))),
            utcText(utcMs("2024-01-01T10:15")));

  auto leap = parseSchedule("cron:0 0 29 2 *");
  ASSERT_TRUE(leap.ok());
  EXPECT_EQ(utcText(*leap->latestIn(utcMs("2020-03-01T00:00"), utcMs("2030-01-01T00:00"))),
            utcText(utcMs("2028-02-29T00:00")));
  EXPECT_EQ(leap->latestIn(utcMs("2024-03-01T00:00"), utcMs("2028-02-28T23:59")), std::nullopt);

  auto weekdays = parseSchedule("cron:30 8 * * MON-FRI");
  ASSERT_TRUE(weekdays.ok());
  // From a Wednesday to the next Monday morning, before 08:30: the Friday run.
  EXPECT_EQ(utcText(*weekdays->latestIn(utcMs("2024-01-03T00:00"), utcMs("2024-01-08T08:29"))),
            utcText(utcMs("2024-01-05T08:30")));
}

}  // namespace
}  // namespace tern::events
