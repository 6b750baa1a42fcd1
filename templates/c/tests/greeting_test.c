/* Native tests of greeting(): `make test` builds them with the host's cc and runs them. */
#include <stdio.h>
#include <string.h>

#include "../src/greeting.h"

struct Case {
  const char* input;
  const char* trigger;
  const char* origin;
  long count;
  const char* want;
};

static const struct Case kCases[] = {
    {"", "http", "", 1, "Hello, world! This is call 1 of {{name}}, by http."},
    {"  Ada\n", "http", "", 2, "Hello, Ada! This is call 2 of {{name}}, by http."},
    {"Grace", "mqtt", "{{name}}/in", 3, "Hello, Grace! This is call 3 of {{name}}, by mqtt on {{name}}/in."},
    {"", "cron", "2026-01-01T00:00:00Z", 4, "Hello, world! This is call 4 of {{name}}, by cron at 2026-01-01T00:00:00Z."},
};

int main(void) {
  int failed = 0;
  for (size_t i = 0; i < sizeof kCases / sizeof kCases[0]; ++i) {
    const struct Case* c = &kCases[i];
    char out[256];
    greeting(out, sizeof out, c->input, strlen(c->input), c->trigger, c->origin, c->count);
    if (strcmp(out, c->want) != 0) {
      printf("FAIL case %zu: got \"%s\", want \"%s\"\n", i, out, c->want);
      failed = 1;
    }
  }
  char longName[200];
  memset(longName, 'x', sizeof longName);
  char out[256];
  int n = greeting(out, sizeof out, longName, sizeof longName, "http", "", 1);
  if (n != (int)strlen("Hello, ! This is call 1 of {{name}}, by http.") + 64) {
    printf("FAIL: a long name is not cut to 64 characters (answer of %d bytes)\n", n);
    failed = 1;
  }
  if (!failed) printf("greeting: all tests passed\n");
  return failed;
}
