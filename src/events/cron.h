#pragma once
// Five-field cron expressions ("minute hour day-of-month month day-of-week"), evaluated in
// UTC. The grammar and its rules are in docs/design/triggers.md#time-triggers; in short:
//
//   field          values   names
//   minute         0-59
//   hour           0-23
//   day of month   1-31
//   month          1-12     JAN..DEC (case-insensitive)
//   day of week    0-7      SUN..SAT (case-insensitive; 0 and 7 are both Sunday)
//
// Each field is `*` or a comma-separated list of `a`, `a-b`, `*/n` or `a-b/n`. When both
// day fields are restricted (neither starts with `*`), a day matching either one fires, as
// in crontab(5). `@hourly`, `@daily` (`@midnight`), `@weekly`, `@monthly` and `@yearly`
// (`@annually`) stand for their usual expressions.

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "util/error.h"

namespace tern::events {

// Returned by next-time functions when no time exists before the end of year 9999.
inline constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

// The last instant the schedules compute with: 9999-12-31T23:59:59.999Z in Unix ms.
inline constexpr int64_t kLatestMs = 253402300799999;

// A parsed cron expression: one bit set per field. Cheap to copy.
class CronExpression {
 public:
  // Parses `text`. Errors (kInvalidArgument) quote the expression and name the field and
  // the rule it breaks, e.g.
  //   cron expression "*/0 * * * *": minute field "*/0": step must be 1..59
  // An expression that can never fire ("0 0 30 2 *") is an error too, so next() always
  // finds a time.
  static Result<CronExpression> parse(std::string_view text);

  // The start of the first matching minute strictly after `afterMs` (Unix ms, UTC), or
  // kNever when that would be after kLatestMs. Times before the Unix epoch are treated as
  // the instant before it. Costs a few hundred steps at most: it skips whole months and
  // days that cannot match instead of visiting minutes.
  int64_t next(int64_t afterMs) const;

  // The expression in canonical form: a macro in lower case ("@daily"), or the five fields
  // as written, separated by single spaces.
  const std::string& text() const { return text_; }

  // Whether the minute starting at `minuteStartMs` (a multiple of 60000) matches.
  bool matches(int64_t minuteStartMs) const;

 private:
  CronExpression() = default;
  bool dayMatches(int monthDay, int weekDay) const;

  std::string text_;
  uint64_t minutes_ = 0;      // bit m for minute m
  uint32_t hours_ = 0;        // bit h for hour h
  uint32_t monthDays_ = 0;    // bit d for day d (1..31)
  uint16_t months_ = 0;       // bit m for month m (1..12)
  uint8_t weekDays_ = 0;      // bit w for weekday w (0 = Sunday .. 6)
  bool monthDaysRestricted_ = false;
  bool weekDaysRestricted_ = false;
};

}  // namespace tern::events
