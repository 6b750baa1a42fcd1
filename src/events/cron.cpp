#include "events/cron.h"

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <iterator>
#include <optional>
#include <vector>

#include "util/quote.h"

namespace tern::events {

namespace {

namespace chr = std::chrono;

constexpr int64_t kMsPerMinute = 60'000;
constexpr int64_t kMinutesPerDay = 1'440;
constexpr size_t kMaxExpressionBytes = 1024;

constexpr std::array<std::string_view, 12> kMonthNames = {
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::array<std::string_view, 7> kWeekDayNames = {"sun", "mon", "tue", "wed",
                                                           "thu", "fri", "sat"};

// What one of the five fields accepts.
struct FieldSpec {
  std::string_view name;  // "minute", as in error messages
  int lo;
  int hi;                         // the largest value written (7 for day of week)
  int starHi;                     // the largest value `*` covers (6 for day of week)
  const std::string_view* names;  // names[i] stands for lo + i; null when none
  size_t nameCount;
  std::string_view nameRange;     // "JAN..DEC", for messages
};

constexpr FieldSpec kMinute{"minute", 0, 59, 59, nullptr, 0, ""};
constexpr FieldSpec kHour{"hour", 0, 23, 23, nullptr, 0, ""};
constexpr FieldSpec kMonthDay{"day-of-month", 1, 31, 31, nullptr, 0, ""};
constexpr FieldSpec kMonth{"month", 1, 12, 12, kMonthNames.data(), kMonthNames.size(),
                           "JAN..DEC"};
constexpr FieldSpec kWeekDay{"day-of-week", 0, 7, 6, kWeekDayNames.data(),
                             kWeekDayNames.size(), "SUN..SAT"};

struct Macro {
  std::string_view name;
  std::string_view expansion;
};
constexpr std::array<Macro, 7> kMacros = {{
    {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"},
    {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"},
    {"@daily", "0 0 * * *"},
    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
}};

bool isBlank(char c) { return c == ' ' || c == '\t'; }
bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool equalsIgnoringCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && isBlank(s.front())) s.remove_prefix(1);
  while (!s.empty() && isBlank(s.back())) s.remove_suffix(1);
  return s;
}

int64_t floorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

// Parses one field into a bit set. Errors are the reason only; the caller adds the context.
class FieldParser {
 public:
  FieldParser(std::string_view text, const FieldSpec& spec) : text_(text), spec_(spec) {}

  Result<uint64_t> parse() {
    uint64_t bits = 0;
    while (true) {
      auto item = parseItem();
      if (!item) return item.error();
      bits |= *item;
      if (pos_ == text_.size()) return bits;
      if (text_[pos_] != ',') return unexpected();
      ++pos_;
    }
  }

 private:
  Error fail(std::string why) const { return Error(ErrorCode::kInvalidArgument, std::move(why)); }

  Error unexpected() const {
    if (pos_ == text_.size()) return fail("ends too early");
    return fail("unexpected " + quoteUntrusted(text_.substr(pos_, 1)) + " at position " +
                std::to_string(pos_ + 1));
  }

  // item := '*' ['/' step] | value ['-' value] ['/' step]
  Result<uint64_t> parseItem() {
    if (pos_ == text_.size() || text_[pos_] == ',') return fail("empty list item");
    int first = spec_.lo;
    int last = spec_.starHi;
    bool isRange = true;
    if (text_[pos_] == '*') {
      ++pos_;
    } else {
      auto a = parseValue();
      if (!a) return a.error();
      first = last = *a;
      isRange = false;
      if (pos_ < text_.size() && text_[pos_] == '-') {
        ++pos_;
        auto b = parseValue();
        if (!b) return b.error();
        if (*b < first) {
          return fail("range " + std::to_string(first) + "-" + std::to_string(*b) +
                      " starts after it ends");
        }
        last = *b;
        isRange = true;
      }
    }
    int step = 1;
    if (pos_ < text_.size() && text_[pos_] == '/') {
      if (!isRange) return fail("a step needs a range before it: use */n or a-b/n");
      ++pos_;
      auto s = parseNumber();
      if (!s) return s.error();
      int maxStep = spec_.hi - spec_.lo;
      if (*s < 1 || *s > maxStep) return fail("step must be 1.." + std::to_string(maxStep));
      step = *s;
    }
    if (pos_ < text_.size() && text_[pos_] != ',') return unexpected();
    uint64_t bits = 0;
    for (int v = first; v <= last; v += step) bits |= uint64_t{1} << v;
    return bits;
  }

  // A number or, in fields that have them, a three-letter name.
  Result<int> parseValue() {
    if (pos_ < text_.size() && isLetter(text_[pos_])) return parseName();
    auto n = parseNumber();
    if (!n) return n.error();
    if (*n < spec_.lo || *n > spec_.hi) {
      return fail(std::to_string(*n) + " is out of range " + std::to_string(spec_.lo) + ".." +
                  std::to_string(spec_.hi));
    }
    return *n;
  }

  Result<int> parseNumber() {
    size_t start = pos_;
    while (pos_ < text_.size() && isDigit(text_[pos_])) ++pos_;
    if (pos_ == start) return unexpected();
    std::string_view digits = text_.substr(start, pos_ - start);
    // Every valid number has at most two digits; longer ones are reported, not converted.
    if (digits.size() > 4) {
      return fail(quoteUntrusted(digits, 24) + " is out of range " + std::to_string(spec_.lo) +
                  ".." + std::to_string(spec_.hi));
    }
    int n = 0;
    for (char c : digits) n = n * 10 + (c - '0');
    return n;
  }

  Result<int> parseName() {
    size_t start = pos_;
    while (pos_ < text_.size() && isLetter(text_[pos_])) ++pos_;
    std::string_view word = text_.substr(start, pos_ - start);
    if (spec_.names == nullptr) {
      return fail(quoteUntrusted(word, 24) + " is not a number (names are only allowed for "
                  "months and days of the week)");
    }
    for (size_t i = 0; i < spec_.nameCount; ++i) {
      if (equalsIgnoringCase(word, spec_.names[i])) return spec_.lo + static_cast<int>(i);
    }
    return fail("unknown name " + quoteUntrusted(word, 24) + " (expected a number or " +
                std::string(spec_.nameRange) + ")");
  }

  std::string_view text_;
  const FieldSpec& spec_;
  size_t pos_ = 0;
};

// The longest each month can be; February counts its leap day.
constexpr std::array<int, 13> kMaxMonthDays = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

}  // namespace

Result<CronExpression> CronExpression::parse(std::string_view input) {
  std::string_view text = trim(input);
  auto fail = [&](std::string why) {
    return Error(ErrorCode::kInvalidArgument,
                 "cron expression " + quoteUntrusted(text) + ": " + std::move(why));
  };
  if (text.empty()) return fail("is empty (expected five fields: minute hour day-of-month month day-of-week)");
  if (text.size() > kMaxExpressionBytes) {
    return fail("is longer than " + std::to_string(kMaxExpressionBytes) + " bytes");
  }

  std::string_view fieldsText = text;
  if (text.front() == '@') {
    auto macro = std::find_if(kMacros.begin(), kMacros.end(),
                              [&](const Macro& m) { return equalsIgnoringCase(m.name, text); });
    if (macro == kMacros.end()) {
      return fail("unknown macro (expected @hourly, @daily, @midnight, @weekly, @monthly, "
                  "@yearly or @annually)");
    }
    fieldsText = macro->expansion;
  }

  std::vector<std::string_view> fields;
  for (size_t i = 0; i < fieldsText.size();) {
    if (isBlank(fieldsText[i])) {
      ++i;
      continue;
    }
    size_t end = i;
    while (end < fieldsText.size() && !isBlank(fieldsText[end])) ++end;
    fields.push_back(fieldsText.substr(i, end - i));
    i = end;
  }
  if (fields.size() != 5) {
    return fail("has " + std::to_string(fields.size()) + (fields.size() == 1 ? " field" : " fields") +
                ", expected 5 (minute hour day-of-month month day-of-week)");
  }

  CronExpression expr;
  // The canonical text: a macro in lower case, or the fields separated by single spaces.
  if (text.front() == '@') {
    std::transform(text.begin(), text.end(), std::back_inserter(expr.text_), lower);
  } else {
    for (std::string_view field : fields) {
      if (!expr.text_.empty()) expr.text_ += ' ';
      expr.text_ += field;
    }
  }
  const std::array<const FieldSpec*, 5> specs = {&kMinute, &kHour, &kMonthDay, &kMonth,
                                                 &kWeekDay};
  std::array<uint64_t, 5> bits{};
  for (size_t i = 0; i < 5; ++i) {
    auto parsed = FieldParser(fields[i], *specs[i]).parse();
    if (!parsed) {
      return fail(std::string(specs[i]->name) + " field " + quoteUntrusted(fields[i]) + ": " +
                  parsed.error().message());
    }
    bits[i] = *parsed;
  }
  expr.minutes_ = bits[0];
  expr.hours_ = static_cast<uint32_t>(bits[1]);
  expr.monthDays_ = static_cast<uint32_t>(bits[2]);
  expr.months_ = static_cast<uint16_t>(bits[3]);
  // Day 7 is Sunday, like day 0.
  expr.weekDays_ = static_cast<uint8_t>((bits[4] & 0x7f) | ((bits[4] >> 7) & 1));
  expr.monthDaysRestricted_ = fields[2].front() != '*';
  expr.weekDaysRestricted_ = fields[4].front() != '*';

  // Only the day of the month decides the day unless both day fields are restricted, so
  // some month named must have one of the days named, or the expression never fires.
  if (!(expr.monthDaysRestricted_ && expr.weekDaysRestricted_)) {
    bool possible = false;
    for (int m = 1; m <= 12 && !possible; ++m) {
      if ((expr.months_ >> m & 1) == 0) continue;
      uint32_t daysInMonth = (uint32_t{2} << kMaxMonthDays[m]) - 2;  // bits 1..max
      possible = (expr.monthDays_ & daysInMonth) != 0;
    }
    if (!possible) {
      return fail("can never fire: none of its days of the month (field " +
                  quoteUntrusted(fields[2]) + ") occur in its months (field " +
                  quoteUntrusted(fields[3]) + ")");
    }
  }
  return expr;
}

bool CronExpression::dayMatches(int monthDay, int weekDay) const {
  bool dom = (monthDays_ >> monthDay & 1) != 0;
  bool dow = (weekDays_ >> weekDay & 1) != 0;
  if (monthDaysRestricted_ && weekDaysRestricted_) return dom || dow;
  return dom && dow;
}

bool CronExpression::matches(int64_t minuteStartMs) const {
  int64_t minute = floorDiv(minuteStartMs, kMsPerMinute);
  int64_t day = floorDiv(minute, kMinutesPerDay);
  int64_t minuteOfDay = minute - day * kMinutesPerDay;
  chr::sys_days date{chr::days{day}};
  chr::year_month_day ymd{date};
  int weekDay = static_cast<int>(chr::weekday{date}.c_encoding());
  return (months_ >> static_cast<unsigned>(ymd.month()) & 1) != 0 &&
         dayMatches(static_cast<int>(static_cast<unsigned>(ymd.day())), weekDay) &&
         (hours_ >> (minuteOfDay / 60) & 1) != 0 && (minutes_ >> (minuteOfDay % 60) & 1) != 0;
}

int64_t CronExpression::next(int64_t afterMs) const {
  if (afterMs >= kLatestMs) return kNever;
  afterMs = std::max<int64_t>(afterMs, -1);
  int64_t minute = floorDiv(afterMs, kMsPerMinute) + 1;
  int64_t day = minute / kMinutesPerDay;
  int64_t fromMinute = minute % kMinutesPerDay;  // in the first day only; 0 after
  const int64_t lastDay = kLatestMs / (kMsPerMinute * kMinutesPerDay);

  while (day <= lastDay) {
    chr::sys_days date{chr::days{day}};
    chr::year_month_day ymd{date};
    if ((months_ >> static_cast<unsigned>(ymd.month()) & 1) == 0) {
      chr::year_month_day nextMonth = ymd.year() / ymd.month() / 1 + chr::months{1};
      day = chr::sys_days{nextMonth}.time_since_epoch().count();
      fromMinute = 0;
      continue;
    }
    int weekDay = static_cast<int>(chr::weekday{date}.c_encoding());
    if (dayMatches(static_cast<int>(static_cast<unsigned>(ymd.day())), weekDay)) {
      for (int64_t hour = fromMinute / 60; hour < 24; ++hour) {
        if ((hours_ >> hour & 1) == 0) continue;
        int64_t firstMinute = hour == fromMinute / 60 ? fromMinute % 60 : 0;
        uint64_t candidates = minutes_ & (~uint64_t{0} << firstMinute);
        if (candidates != 0) {
          int64_t m = hour * 60 + std::countr_zero(candidates);
          return (day * kMinutesPerDay + m) * kMsPerMinute;
        }
      }
    }
    ++day;
    fromMinute = 0;
  }
  return kNever;
}

}  // namespace tern::events
