#include "events/cron.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "utc_text.h"

namespace tern::events {
namespace {

using testing::utcMs;
using testing::utcText;

struct NextCase {
  std::string expr;
  std::string after;
  std::string expected;  // "never" for kNever
};

TEST(CronNextTest, Table) {
  const std::vector<NextCase> cases = {
      // Strictly after: a matching minute equal to `after` is not returned.
      {"* * * * *", "2024-01-01T00:00", "2024-01-01T00:01"},
      {"* * * * *", "2024-01-01T00:00:30.500", "2024-01-01T00:01"},
      {"* * * * *", "2024-01-01T00:00:59.999", "2024-01-01T00:01"},
      // Year and month boundaries.
      {"0 0 1 1 *", "2023-12-31T23:59", "2024-01-01T00:00"},
      {"0 0 1 1 *", "2024-01-01T00:00", "2025-01-01T00:00"},
      {"59 23 31 12 *", "2024-12-31T23:59", "2025-12-31T23:59"},
      {"30 12 31 * *", "2024-04-01T00:00", "2024-05-31T12:30"},
      {"0 0 31 * *", "2024-01-31T00:00", "2024-03-31T00:00"},
      {"0 0 30 * *", "2023-01-30T00:00", "2023-03-30T00:00"},
      // Leap days: 2100 is not a leap year.
      {"0 0 29 2 *", "2023-03-01T00:00", "2024-02-29T00:00"},
      {"0 0 29 2 *", "2024-02-29T00:00", "2028-02-29T00:00"},
      {"0 0 29 2 *", "2096-03-01T00:00", "2104-02-29T00:00"},
      {"0 12 28-29 2 *", "2023-02-28T12:00", "2024-02-28T12:00"},
      // Steps and ranges.
      {"*/15 * * * *", "2024-01-01T10:07", "2024-01-01T10:15"},
      {"*/15 * * * *", "2024-01-01T10:45", "2024-01-01T11:00"},
      {"0 */6 * * *", "2024-01-01T19:00", "2024-01-02T00:00"},
      {"5-10/2 * * * *", "2024-01-01T10:06", "2024-01-01T10:07"},
      {"5-10/2 * * * *", "2024-01-01T10:09", "2024-01-01T11:05"},
      {"0 22-23,1 * * *", "2024-01-01T23:00", "2024-01-02T01:00"},
      {"15,45 8-9 * * *", "2024-01-01T09:45", "2024-01-02T08:15"},
      // Names, any case; 0 and 7 are Sunday. 2024-01-01 is a Monday.
      {"0 9 * * MON-FRI", "2024-01-05T09:00", "2024-01-08T09:00"},
      {"0 9 * * mon-fri", "2024-01-06T00:00", "2024-01-08T09:00"},
      {"0 0 * * 7", "2024-01-01T00:00", "2024-01-07T00:00"},
      {"0 0 * * 0", "2024-01-01T00:00", "2024-01-07T00:00"},
      {"0 0 * * Sun", "2024-01-01T00:00", "2024-01-07T00:00"},
      {"0 0 * * 5-7", "2024-01-06T00:00", "2024-01-07T00:00"},
      {"0 0 1 JAN,jul *", "2024-02-01T00:00", "2024-07-01T00:00"},
      {"0 0 1 feb-Mar *", "2024-02-01T00:00", "2024-03-01T00:00"},
      // Both day fields restricted: either one matching is enough.
      {"0 0 13 * FRI", "2024-01-01T00:00", "2024-01-05T00:00"},
      {"0 0 13 * FRI", "2024-01-12T00:00", "2024-01-13T00:00"},
      {"0 0 30 2 MON", "2024-01-01T00:00", "2024-02-05T00:00"},  // Mondays in February
      // Day of month starting with `*` counts as unrestricted: both must match.
      {"0 0 * * FRI", "2024-01-01T00:00", "2024-01-05T00:00"},
      {"0 0 */10 * MON", "2024-01-01T00:00", "2024-03-11T00:00"},
      {"0 0 13 * *", "2024-01-01T00:00", "2024-01-13T00:00"},
      // Macros.
      {"@hourly", "2024-01-01T10:00", "2024-01-01T11:00"},
      {"@daily", "2024-12-31T12:00", "2025-01-01T00:00"},
      {"@midnight", "2024-12-31T12:00", "2025-01-01T00:00"},
      {"@weekly", "2024-01-01T00:00", "2024-01-07T00:00"},
      {"@monthly", "2024-01-15T00:00", "2024-02-01T00:00"},
      {"@yearly", "2024-06-01T00:00", "2025-01-01T00:00"},
      {"@ANNUALLY", "2024-06-01T00:00", "2025-01-01T00:00"},
      // Whitespace between fields is any run of spaces and tabs.
      {" 0\t0  1 1 * ", "2024-06-01T00:00", "2025-01-01T00:00"},
  };
  for (const NextCase& c : cases) {
    SCOPED_TRACE("\"" + c.expr + "\" after " + c.after);
    auto expr = CronExpression::parse(c.expr);
    ASSERT_TRUE(expr.ok()) << expr.error().message();
    EXPECT_EQ(utcText(expr->next(utcMs(c.after))), utcText(utcMs(c.expected)));
  }
}

TEST(CronNextTest, EdgesOfTheSupportedRange) {
  auto yearly = CronExpression::parse("0 0 1 1 *");
  ASSERT_TRUE(yearly.ok());
  EXPECT_EQ(yearly->next(-1), 0);  // 1970-01-01T00:00 itself
  EXPECT_EQ(yearly->next(-5'000'000'000'000), 0);
  EXPECT_EQ(yearly->next(std::numeric_limits<int64_t>::min()), 0);
  EXPECT_EQ(yearly->next(utcMs("9999-01-01T00:00")), kNever);
  EXPECT_EQ(yearly->next(kLatestMs), kNever);
  EXPECT_EQ(yearly->next(std::numeric_limits<int64_t>::max()), kNever);
  auto everyMinute = CronExpression::parse("* * * * *");
  ASSERT_TRUE(everyMinute.ok());
  EXPECT_EQ(everyMinute->next(utcMs("9999-12-31T23:58")), utcMs("9999-12-31T23:59"));
  EXPECT_EQ(everyMinute->next(utcMs("9999-12-31T23:59")), kNever);
}

// next() skips months and days; matches() looks at one minute. Walking minute by minute
// with matches() must find exactly the times next() jumps to.
TEST(CronNextTest, AgreesWithAMinuteByMinuteWalk) {
  const std::vector<std::string> exprs = {
      "*/7 * * * *",       "0 */5 * * *",      "10-20/3 3,15 * * *", "0 0 * * *",
      "0 12 1,15 * *",     "0 0 13 * FRI",     "30 6 * * SAT,SUN",   "0 0 */10 * MON",
      "45 23 28-31 * *",   "0 0 * FEB,MAR *",  "0 9-17 * * 1-5",     "@weekly",
  };
  const int64_t start = utcMs("2024-02-20T00:00");
  const int64_t end = utcMs("2024-03-20T00:00");
  for (const std::string& text : exprs) {
    SCOPED_TRACE(text);
    auto expr = CronExpression::parse(text);
    ASSERT_TRUE(expr.ok()) << expr.error().message();
    int64_t expected = start;
    int64_t at = start;
    int found = 0;
    while (true) {
      do expected += 60'000;
      while (expected < end && !expr->matches(expected));
      if (expected >= end) break;
      at = expr->next(at);
      ASSERT_EQ(utcText(at), utcText(expected));
      ++found;
    }
    EXPECT_GT(found, 0);
    EXPECT_GE(expr->next(at), end);
  }
}

TEST(CronParseTest, CanonicalText) {
  auto spaced = CronExpression::parse("  0\t9   * *  MON-FRI ");
  ASSERT_TRUE(spaced.ok());
  EXPECT_EQ(spaced->text(), "0 9 * * MON-FRI");
  auto macro = CronExpression::parse("@Daily");
  ASSERT_TRUE(macro.ok());
  EXPECT_EQ(macro->text(), "@daily");
}

struct BadCase {
  std::string expr;
  std::string message;  // the whole error message
};

TEST(CronParseTest, BadExpressionsSayWhichFieldAndWhy) {
  const std::vector<BadCase> cases = {
      {"", "cron expression \"\": is empty (expected five fields: minute hour day-of-month "
           "month day-of-week)"},
      {" \t ", "cron expression \"\": is empty (expected five fields: minute hour "
               "day-of-month month day-of-week)"},
      {"* * * *", "cron expression \"* * * *\": has 4 fields, expected 5 (minute hour "
                  "day-of-month month day-of-week)"},
      {"*", "cron expression \"*\": has 1 field, expected 5 (minute hour day-of-month month "
            "day-of-week)"},
      {"* * * * * *", "cron expression \"* * * * * *\": has 6 fields, expected 5 (minute "
                      "hour day-of-month month day-of-week)"},
      {"*/0 * * * *", "cron expression \"*/0 * * * *\": minute field \"*/0\": step must be "
                      "1..59"},
      {"*/60 * * * *", "cron expression \"*/60 * * * *\": minute field \"*/60\": step must "
                       "be 1..59"},
      {"0 */24 * * *", "cron expression \"0 */24 * * *\": hour field \"*/24\": step must be "
                       "1..23"},
      {"60 * * * *", "cron expression \"60 * * * *\": minute field \"60\": 60 is out of "
                     "range 0..59"},
      {"0 24 * * *", "cron expression \"0 24 * * *\": hour field \"24\": 24 is out of range "
                     "0..23"},
      {"0 0 0 * *", "cron expression \"0 0 0 * *\": day-of-month field \"0\": 0 is out of "
                    "range 1..31"},
      {"0 0 32 * *", "cron expression \"0 0 32 * *\": day-of-month field \"32\": 32 is out "
                     "of range 1..31"},
      {"0 0 * 13 *", "cron expression \"0 0 * 13 *\": month field \"13\": 13 is out of "
                     "range 1..12"},
      {"0 0 * 0 *", "cron expression \"0 0 * 0 *\": month field \"0\": 0 is out of range "
                    "1..12"},
      {"0 0 * * 8", "cron expression \"0 0 * * 8\": day-of-week field \"8\": 8 is out of "
                    "range 0..7"},
      {"0 0 * * 1-9", "cron expression \"0 0 * * 1-9\": day-of-week field \"1-9\": 9 is out "
                      "of range 0..7"},
      {"99999999999999999999 * * * *",
       "cron expression \"99999999999999999999 * * * *\": minute field "
       "\"99999999999999999999\": \"99999999999999999999\" is out of range 0..59"},
      {"00000000000000000001 * * * *",
       "cron expression \"00000000000000000001 * * * *\": minute field "
       "\"00000000000000000001\": \"00000000000000000001\" is out of range 0..59"},
      {"5/10 * * * *", "cron expression \"5/10 * * * *\": minute field \"5/10\": a step "
                       "needs a range before it: use */n or a-b/n"},
      {"10-5 * * * *", "cron expression \"10-5 * * * *\": minute field \"10-5\": range 10-5 "
                       "starts after it ends"},
      {"0 0 * * SAT-SUN", "cron expression \"0 0 * * SAT-SUN\": day-of-week field "
                          "\"SAT-SUN\": range 6-0 starts after it ends"},
      {"1,,2 * * * *", "cron expression \"1,,2 * * * *\": minute field \"1,,2\": empty list "
                       "item"},
      {"1, * * * *", "cron expression \"1, * * * *\": minute field \"1,\": empty list item"},
      {",1 * * * *", "cron expression \",1 * * * *\": minute field \",1\": empty list item"},
      {"1- * * * *", "cron expression \"1- * * * *\": minute field \"1-\": ends too early"},
      {"*/ * * * *", "cron expression \"*/ * * * *\": minute field \"*/\": ends too early"},
      {"*/-1 * * * *", "cron expression \"*/-1 * * * *\": minute field \"*/-1\": unexpected "
                       "\"-\" at position 3"},
      {"*x * * * *", "cron expression \"*x * * * *\": minute field \"*x\": unexpected \"x\" "
                     "at position 2"},
      {"1-2-3 * * * *", "cron expression \"1-2-3 * * * *\": minute field \"1-2-3\": "
                        "unexpected \"-\" at position 4"},
      {"a * * * *", "cron expression \"a * * * *\": minute field \"a\": \"a\" is not a "
                    "number (names are only allowed for months and days of the week)"},
      {"0 0 * FOO *", "cron expression \"0 0 * FOO *\": month field \"FOO\": unknown name "
                      "\"FOO\" (expected a number or JAN..DEC)"},
      {"0 0 * * FRIDAY", "cron expression \"0 0 * * FRIDAY\": day-of-week field \"FRIDAY\": "
                         "unknown name \"FRIDAY\" (expected a number or SUN..SAT)"},
      {"0 0 * MON *", "cron expression \"0 0 * MON *\": month field \"MON\": unknown name "
                      "\"MON\" (expected a number or JAN..DEC)"},
      {"\x01\xff * * * *", "cron expression \"\\x01\\xff * * * *\": minute field "
                           "\"\\x01\\xff\": unexpected \"\\x01\" at position 1"},
      {"* * * * *\n", "cron expression \"* * * * *\\x0a\": day-of-week field \"*\\x0a\": "
                      "unexpected \"\\x0a\" at position 2"},
      {"@reboot", "cron expression \"@reboot\": unknown macro (expected @hourly, @daily, "
                  "@midnight, @weekly, @monthly, @yearly or @annually)"},
      {"@daily 0", "cron expression \"@daily 0\": unknown macro (expected @hourly, @daily, "
                   "@midnight, @weekly, @monthly, @yearly or @annually)"},
      // Expressions that can never fire.
      {"0 0 30 2 *", "cron expression \"0 0 30 2 *\": can never fire: none of its days of "
                     "the month (field \"30\") occur in its months (field \"2\")"},
      {"0 0 31 4 *", "cron expression \"0 0 31 4 *\": can never fire: none of its days of "
                     "the month (field \"31\") occur in its months (field \"4\")"},
      {"0 0 31 apr,jun,sep,nov *",
       "cron expression \"0 0 31 apr,jun,sep,nov *\": can never fire: none of its days of "
       "the month (field \"31\") occur in its months (field \"apr,jun,sep,nov\")"},
      {"0 0 30-31 2 *", "cron expression \"0 0 30-31 2 *\": can never fire: none of its "
                        "days of the month (field \"30-31\") occur in its months (field "
                        "\"2\")"},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.expr);
    auto expr = CronExpression::parse(c.expr);
    ASSERT_FALSE(expr.ok());
    EXPECT_EQ(expr.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(expr.error().message(), c.message);
  }
}

TEST(CronParseTest, LongInputIsRefusedAndQuotedShort) {
  std::string huge(100'000, '1');
  auto expr = CronExpression::parse(huge);
  ASSERT_FALSE(expr.ok());
  EXPECT_NE(expr.error().message().find("is longer than 1024 bytes"), std::string::npos);
  EXPECT_LT(expr.error().message().size(), 200u);

  std::string manyItems = "0";
  for (int i = 0; i < 200; ++i) manyItems += ",0";
  auto list = CronExpression::parse(manyItems + " * * * *");
  EXPECT_TRUE(list.ok());
}

TEST(CronParseTest, EveryByteAloneIsAnErrorOrValid) {
  // No single byte in the minute field crashes the parser or gives a generic message.
  for (int b = 0; b < 256; ++b) {
    std::string text(1, static_cast<char>(b));
    auto expr = CronExpression::parse(text + " * * * *");
    if (!expr.ok()) {
      EXPECT_EQ(expr.error().message().rfind("cron expression \"", 0), 0u) << b;
    }
  }
}

}  // namespace
}  // namespace tern::events
