// Fuzz target: the trigger strings and reply topic of a deploy (src/events/trigger_spec).
// The input is split at NUL bytes: the first part is the reply topic, the others are
// triggers. A parsed trigger keeps its kind's prefix and its whole text; a set of triggers
// that passes has no repeats, at most kMaxTriggers, and each of them parses.

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "events/trigger_spec.h"
#include "fuzz_check.h"

using namespace tern::events;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view all(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    size_t nul = all.find('\0', start);
    parts.emplace_back(all.substr(start, nul - start));
    if (nul == std::string_view::npos) break;
    start = nul + 1;
  }
  std::string reply = parts.front();
  std::vector<std::string> triggers(parts.begin() + 1, parts.end());
  for (const auto& t : triggers) {
    auto spec = parseTrigger(t);
    if (!spec.ok()) {
      FUZZ_CHECK(!spec.error().message().empty());
      continue;
    }
    FUZZ_CHECK(spec->spec == t);
    FUZZ_CHECK(t.ends_with(spec->text));
  }
  auto ok = checkTriggers(triggers, reply);
  if (!ok.ok()) {
    FUZZ_CHECK(!ok.error().message().empty());
    return 0;
  }
  FUZZ_CHECK(triggers.size() <= kMaxTriggers);
  FUZZ_CHECK(std::set<std::string>(triggers.begin(), triggers.end()).size() == triggers.size());
  for (const auto& t : triggers) FUZZ_CHECK(parseTrigger(t).ok());
  return 0;
}
