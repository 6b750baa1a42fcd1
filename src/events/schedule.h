#pragma once
// A time trigger's schedule, parsed from the trigger string of a deploy:
//
//   cron:EXPR        a five-field cron expression in UTC (see cron.h)
//   every:DURATION   a fixed interval: "10s", "5m", "1h30m", "2d", "1500ms"; 1 s to 366 days
//
// Intervals are anchored at the Unix epoch: "every:1h" fires on the hour and "every:10m" at
// :00, :10, :20 ..., whenever the node started, so a restart keeps the phase.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "events/cron.h"
#include "util/error.h"

namespace tern::events {

inline constexpr int64_t kMinIntervalMs = 1'000;
inline constexpr int64_t kMaxIntervalMs = 366LL * 24 * 60 * 60 * 1'000;

// Parses a duration made of number-unit pairs, units largest first and each at most once:
// d (days), h, m, s, ms. "1h30m", "90m" and "5400s" are the same. Errors
// (kInvalidArgument) quote the text and say why: an unknown unit, a missing number, or a
// value outside kMinIntervalMs..kMaxIntervalMs.
Result<int64_t> parseInterval(std::string_view text);

// The canonical form of an interval: "1h30m", "2d", "1s500ms".
std::string formatInterval(int64_t ms);

// A parsed time trigger. A value type: cheap to copy, compared by its canonical spec.
class Schedule {
 public:
  enum class Kind : uint8_t { kCron, kEvery };

  Kind kind() const { return kind_; }
  // The canonical trigger string: "cron:0 9 * * 1-5", "every:1h30m".
  std::string spec() const;
  // For people: `cron "0 9 * * 1-5" (UTC)`, "every 1h30m".
  std::string describe() const;

  // The first scheduled time strictly after `ms` (Unix ms), or kNever when there is none
  // before the end of year 9999. Times before the epoch count as the instant before it.
  int64_t nextAfter(int64_t ms) const;
  // The latest scheduled time t with afterMs < t <= atOrBeforeMs, if there is one. This is
  // the one run that catches up on everything missed in that span.
  std::optional<int64_t> latestIn(int64_t afterMs, int64_t atOrBeforeMs) const;

  // The interval of an every-schedule; 0 for cron.
  int64_t intervalMs() const { return intervalMs_; }

  bool operator==(const Schedule& other) const { return spec() == other.spec(); }

 private:
  friend Result<Schedule> parseSchedule(std::string_view triggerSpec);
  explicit Schedule(CronExpression cron) : kind_(Kind::kCron), cron_(std::move(cron)) {}
  explicit Schedule(int64_t intervalMs) : kind_(Kind::kEvery), intervalMs_(intervalMs) {}

  Kind kind_;
  std::optional<CronExpression> cron_;  // for kCron
  int64_t intervalMs_ = 0;              // for kEvery
};

// Parses "cron:EXPR" or "every:DURATION". Any other string is a kInvalidArgument error
// that names the accepted kinds.
Result<Schedule> parseSchedule(std::string_view triggerSpec);

}  // namespace tern::events
