#include "events/schedule.h"

#include <algorithm>
#include <array>
#include <utility>

#include "util/quote.h"

namespace tern::events {

namespace {

constexpr size_t kMaxSpecBytes = 1024;

struct Unit {
  std::string_view name;
  int64_t ms;
};
// Largest first: the order a duration must use.
constexpr std::array<Unit, 5> kUnits = {{
    {"d", 24 * 60 * 60 * 1'000},
    {"h", 60 * 60 * 1'000},
    {"m", 60 * 1'000},
    {"s", 1'000},
    {"ms", 1},
}};

bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

int64_t floorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

}  // namespace

Result<int64_t> parseInterval(std::string_view text) {
  auto fail = [&](const std::string& why) {
    return Error(ErrorCode::kInvalidArgument, "interval " + quoteUntrusted(text) + ": " + why);
  };
  if (text.empty()) return fail("is empty (expected a duration such as 10s, 5m, 1h30m or 2d)");
  const std::string maxText = formatInterval(kMaxIntervalMs);

  int64_t total = 0;
  size_t nextUnit = 0;  // index in kUnits of the largest unit still allowed
  size_t pos = 0;
  while (pos < text.size()) {
    size_t start = pos;
    while (pos < text.size() && isDigit(text[pos])) ++pos;
    if (pos == start) {
      return fail("expected a number at position " + std::to_string(pos + 1) + ", found " +
                  quoteUntrusted(text.substr(pos, 1)));
    }
    std::string_view digits = text.substr(start, pos - start);
    size_t unitStart = pos;
    while (pos < text.size() && isLetter(text[pos])) ++pos;
    std::string_view unitName = text.substr(unitStart, pos - unitStart);
    if (unitName.empty()) {
      return fail("number " + quoteUntrusted(digits, 24) + " has no unit (d, h, m, s or ms)");
    }
    size_t unit = 0;
    while (unit < kUnits.size() && kUnits[unit].name != unitName) ++unit;
    if (unit == kUnits.size()) {
      return fail("unknown unit " + quoteUntrusted(unitName, 24) + " (expected d, h, m, s or ms)");
    }
    if (unit < nextUnit) {
      return fail("units must go from largest to smallest, each at most once (as in 1h30m)");
    }
    nextUnit = unit + 1;
    // Accumulate while the total can still be valid, so no arithmetic overflows.
    int64_t value = 0;
    for (char c : digits) {
      value = value * 10 + (c - '0');
      if (value > kMaxIntervalMs) return fail("is longer than the maximum of " + maxText);
    }
    if (value > (kMaxIntervalMs - total) / kUnits[unit].ms) {
      return fail("is longer than the maximum of " + maxText);
    }
    total += value * kUnits[unit].ms;
  }
  if (total < kMinIntervalMs) {
    return fail("is shorter than the minimum of " + formatInterval(kMinIntervalMs));
  }
  return total;
}

std::string formatInterval(int64_t ms) {
  if (ms <= 0) return "0s";
  std::string out;
  for (const Unit& unit : kUnits) {
    int64_t count = ms / unit.ms;
    if (count == 0) continue;
    out += std::to_string(count);
    out += unit.name;
    ms -= count * unit.ms;
  }
  return out;
}

std::string Schedule::spec() const {
  if (kind_ == Kind::kCron) return "cron:" + cron_->text();
  return "every:" + formatInterval(intervalMs_);
}

std::string Schedule::describe() const {
  if (kind_ == Kind::kCron) return "cron \"" + cron_->text() + "\" (UTC)";
  return "every " + formatInterval(intervalMs_);
}

int64_t Schedule::nextAfter(int64_t ms) const {
  if (kind_ == Kind::kCron) return cron_->next(ms);
  if (ms >= kLatestMs) return kNever;
  int64_t next = (floorDiv(std::max<int64_t>(ms, -1), intervalMs_) + 1) * intervalMs_;
  return next > kLatestMs ? kNever : next;
}

std::optional<int64_t> Schedule::latestIn(int64_t afterMs, int64_t atOrBeforeMs) const {
  if (atOrBeforeMs <= afterMs) return std::nullopt;
  int64_t first = nextAfter(afterMs);
  if (first > atOrBeforeMs) return std::nullopt;
  if (kind_ == Kind::kEvery) {
    return std::max(first, floorDiv(atOrBeforeMs, intervalMs_) * intervalMs_);
  }
  // nextAfter never decreases as its argument grows, so binary search for the largest x in
  // [afterMs, atOrBeforeMs) whose next time is still within the span: nextAfter(x) is then
  // the latest time in it. About 40 steps for a span of years.
  int64_t lo = afterMs;       // nextAfter(lo) <= atOrBeforeMs
  int64_t hi = atOrBeforeMs;  // nextAfter(hi) > atOrBeforeMs
  while (hi - lo > 1) {
    int64_t mid = lo + (hi - lo) / 2;
    if (nextAfter(mid) <= atOrBeforeMs) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return nextAfter(lo);
}

Result<Schedule> parseSchedule(std::string_view triggerSpec) {
  auto fail = [&](const std::string& why) {
    return Error(ErrorCode::kInvalidArgument,
                 "trigger " + quoteUntrusted(triggerSpec) + ": " + why);
  };
  if (triggerSpec.size() > kMaxSpecBytes) {
    return fail("is longer than " + std::to_string(kMaxSpecBytes) + " bytes");
  }
  size_t colon = triggerSpec.find(':');
  std::string_view kind = triggerSpec.substr(0, colon);
  std::string_view rest = colon == std::string_view::npos ? "" : triggerSpec.substr(colon + 1);
  if (colon != std::string_view::npos && kind == "cron") {
    auto cron = CronExpression::parse(rest);
    if (!cron) return cron.error();
    return Schedule(std::move(*cron));
  }
  if (colon != std::string_view::npos && kind == "every") {
    auto interval = parseInterval(rest);
    if (!interval) return interval.error();
    return Schedule(*interval);
  }
  return fail("is not a time trigger (expected cron:EXPR, e.g. \"cron:0 9 * * MON-FRI\", or "
              "every:DURATION, e.g. \"every:10m\")");
}

}  // namespace tern::events
