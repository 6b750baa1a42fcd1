/* The live-comments app's processor (README.md): called by tern once per (comment, viewer).
 * Its stdin is {"params": {"blocked": [...]}, "state": ..., "update": {"topic", "seq",
 * "payload": {"user", "text"}}}; it hides comments by users this viewer blocked and counts,
 * in the viewer's state, the comments it let through. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Shared with the Caesar example; not every helper is used here. */
#pragma clang diagnostic ignored "-Wunused-function"
#include "../caesar/json_io.h"

static const char *skip_ws(const char *p) {
  while (p && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) ++p;
  return p;
}

/* The position just after the JSON value starting at `p`, or NULL when it is malformed. */
static const char *skip_value(const char *p) {
  p = skip_ws(p);
  if (!p || !*p) return NULL;
  if (*p == '"') {
    for (++p; *p && *p != '"'; ++p) {
      if (*p == '\\' && !*++p) return NULL;
    }
    return *p ? p + 1 : NULL;
  }
  if (*p == '{' || *p == '[') {
    char close = *p == '{' ? '}' : ']';
    p = skip_ws(p + 1);
    if (p && *p == close) return p + 1;
    for (;;) {
      if (close == '}') {
        p = skip_value(p); /* the key */
        p = skip_ws(p);
        if (!p || *p != ':') return NULL;
        ++p;
      }
      p = skip_ws(skip_value(p));
      if (!p) return NULL;
      if (*p == close) return p + 1;
      if (*p != ',') return NULL;
      ++p;
    }
  }
  while (*p && strchr(",}] \t\r\n", *p) == NULL) ++p; /* number, true, false, null */
  return p;
}

/* The value of member `key` of the object at `obj` (its own members only), or NULL. */
static const char *member(const char *obj, const char *key) {
  const char *p = skip_ws(obj);
  if (!p || *p != '{') return NULL;
  p = skip_ws(p + 1);
  char name[64];
  while (p && *p == '"') {
    p = string_at(p, name, sizeof name);
    p = skip_ws(p);
    if (!p || *p != ':') return NULL;
    const char *value = skip_ws(p + 1);
    if (strcmp(name, key) == 0) return value;
    p = skip_ws(skip_value(value));
    if (!p || *p != ',') return NULL;
    p = skip_ws(p + 1);
  }
  return NULL;
}

/* Whether the array at `list` holds the string `who`. */
static int listed(const char *list, const char *who) {
  const char *p = skip_ws(list);
  if (!p || *p != '[') return 0;
  p = skip_ws(p + 1);
  char item[128];
  while (p && *p == '"') {
    p = string_at(p, item, sizeof item);
    if (p && strcmp(item, who) == 0) return 1;
    p = skip_ws(p);
    if (!p || *p != ',') return 0;
    p = skip_ws(p + 1);
  }
  return 0;
}

int main(void) {
  char *input = read_input(NULL);
  if (!input) return 1;
  const char *payload = member(member(input, "update"), "payload");
  char user[128] = "";
  const char *u = member(payload, "user");
  if (u) string_at(u, user, sizeof user);
  if (user[0] && listed(member(member(input, "params"), "blocked"), user)) {
    printf("{\"deliver\":false}\n");
    return 0;
  }
  const char *seen = member(member(input, "state"), "delivered");
  long delivered = seen ? strtol(seen, NULL, 10) : 0;
  printf("{\"deliver\":true,\"state\":{\"delivered\":%ld}}\n", delivered + 1);
  free(input);
  return 0;
}
