#pragma once
// UTC timestamps as text for the events tests: "2024-02-29T13:05" or
// "2024-02-29T13:05:07.250" to Unix ms and back, so test tables read as dates.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "events/cron.h"

namespace tern::events::testing {

inline int64_t utcMs(const std::string& text) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, ms = 0;
  int n = std::sscanf(text.c_str(), "%d-%d-%dT%d:%d:%d.%d", &y, &mo, &d, &h, &mi, &s, &ms);
  if (n < 5) throw std::invalid_argument("bad test timestamp: " + text);
  std::chrono::year_month_day ymd{std::chrono::year{y}, std::chrono::month{unsigned(mo)},
                                  std::chrono::day{unsigned(d)}};
  if (!ymd.ok()) throw std::invalid_argument("bad test date: " + text);
  int64_t days = std::chrono::sys_days{ymd}.time_since_epoch().count();
  return ((days * 24 + h) * 60 + mi) * 60'000 + s * 1'000 + ms;
}

inline std::string utcText(int64_t ms) {
  if (ms == kNever) return "never";
  auto days = std::chrono::floor<std::chrono::days>(std::chrono::milliseconds(ms));
  std::chrono::year_month_day ymd{std::chrono::sys_days{days}};
  int64_t rest = ms - std::chrono::duration_cast<std::chrono::milliseconds>(days).count();
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03d", int(ymd.year()),
                unsigned(ymd.month()), unsigned(ymd.day()), int(rest / 3'600'000),
                int(rest / 60'000 % 60), int(rest / 1'000 % 60), int(rest % 1'000));
  return buf;
}

}  // namespace tern::events::testing
