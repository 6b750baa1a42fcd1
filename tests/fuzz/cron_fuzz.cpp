// Fuzz target: cron expressions (src/events/cron). The first 8 bytes are a time, the rest
// the expression. A parsed expression's canonical text parses to the same schedule, and
// next() is a matching minute strictly after the time (or kNever past year 9999).

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "events/cron.h"
#include "fuzz_check.h"

using tern::events::CronExpression;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 8) return 0;
  int64_t after = 0;
  std::memcpy(&after, data, 8);
  std::string_view text(reinterpret_cast<const char*>(data + 8), size - 8);
  auto expr = CronExpression::parse(text);
  if (!expr.ok()) {
    FUZZ_CHECK(!expr.error().message().empty());
    return 0;
  }
  auto again = CronExpression::parse(expr->text());
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->text() == expr->text());
  int64_t next = expr->next(after);
  FUZZ_CHECK(next == again->next(after));
  if (next != tern::events::kNever) {
    FUZZ_CHECK(next > after && next % 60000 == 0 && next <= tern::events::kLatestMs);
    FUZZ_CHECK(expr->matches(next));
    FUZZ_CHECK(expr->next(next) > next);
  }
  return 0;
}
