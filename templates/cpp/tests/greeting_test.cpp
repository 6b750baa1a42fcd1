// Native tests of greeting(): `make test` builds them with the host's c++ and runs them.
#include <cstdio>
#include <string>

#include "../src/greeting.h"

namespace {

struct Case {
  std::string input;
  std::string trigger;
  std::string origin;
  long count;
  std::string want;
};

const Case kCases[] = {
    {"", "http", "", 1, "Hello, world! This is call 1 of {{name}}, by http."},
    {"  Ada\n", "http", "", 2, "Hello, Ada! This is call 2 of {{name}}, by http."},
    {"Grace", "mqtt", "{{name}}/in", 3, "Hello, Grace! This is call 3 of {{name}}, by mqtt on {{name}}/in."},
    {"", "cron", "2026-01-01T00:00:00Z", 4, "Hello, world! This is call 4 of {{name}}, by cron at 2026-01-01T00:00:00Z."},
    {std::string(200, 'x'), "http", "", 5, "Hello, " + std::string(64, 'x') + "! This is call 5 of {{name}}, by http."},
};

}  // namespace

int main() {
  int failed = 0;
  for (const Case& c : kCases) {
    std::string got = greeting(c.input, c.trigger, c.origin, c.count);
    if (got != c.want) {
      std::printf("FAIL: got \"%s\", want \"%s\"\n", got.c_str(), c.want.c_str());
      failed = 1;
    }
  }
  if (!failed) std::printf("greeting: all tests passed\n");
  return failed;
}
