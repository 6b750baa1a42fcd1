/* A provider policy for tern routes (docs/design/providers.md), deployed as a function and
 * named by a route as `--policy wasm:FUNCTION`. Once per call, tern gives it on stdin
 *   {"call": {"function", "size"},
 *    "providers": [{"name", "tier", "price_per_call", "samples", "ewma_ms", "p95_ms",
 *                   "failure_rate", "in_flight"}, ...]}
 * and it answers {"provider": NAME}:
 *   1. the first provider not measured yet (samples 0), so that it gets measured;
 *   2. else the cheapest provider whose p95_ms is at most MAX_P95_MS (an environment
 *      variable, default 100), the faster one (ewma_ms) between equal prices;
 *   3. else the provider with the lowest ewma_ms.
 * Providers that fail a quarter of their attempts or more (failure_rate >= 0.25) are passed over
 * while any other is left. When the chosen provider fails, tern tries the others; when
 * this function fails (no providers, unreadable input), tern ranks by lowest latency. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Only read_input, string_at and put_string of the shared helpers are used here. */
#pragma clang diagnostic ignored "-Wunused-function"
#include "../caesar/json_io.h"

static const char *skip_space(const char *p) {
  while (p && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) ++p;
  return p;
}

/* The end of the JSON value at `p`, or NULL when it ends early. Containers are crossed
 * by counting brackets outside strings; the values tern writes are well-formed. */
static const char *value_end(const char *p) {
  p = skip_space(p);
  if (!p || !*p) return NULL;
  int depth = 0;
  do {
    if (*p == '"') {
      for (++p; *p != '"'; ++p) {
        if (!*p || (*p == '\\' && !*++p)) return NULL;
      }
    } else if (*p == '{' || *p == '[') {
      ++depth;
    } else if (*p == '}' || *p == ']') {
      if (--depth < 0) return NULL;
    } else if (depth == 0) {
      /* A number, true, false or null: up to the next delimiter. */
      while (*p && !strchr(",}] \t\r\n", *p)) ++p;
      return p;
    }
    ++p;
  } while (*p && depth > 0);
  return depth == 0 ? p : NULL;
}

/* A cursor over the items of a JSON array or the members of a JSON object. */
struct cursor {
  const char *at;  /* after the opening bracket or the last comma */
  char close;      /* ']' or '}' */
};

/* Starts a cursor on the container at `p` when it opens with `open`. */
static int cursor_open(struct cursor *c, const char *p, char open) {
  p = skip_space(p);
  if (!p || *p != open) return 0;
  c->at = p + 1;
  c->close = open == '{' ? '}' : ']';
  return 1;
}

/* The next item's value (and, in an object, its key into `key`), or NULL at the end. */
static const char *cursor_next(struct cursor *c, char *key, size_t key_cap) {
  const char *p = skip_space(c->at);
  if (!p || !*p || *p == c->close) return NULL;
  if (c->close == '}') {
    p = skip_space(string_at(p, key, key_cap));
    if (!p || *p != ':') return NULL;
    p = skip_space(p + 1);
  }
  const char *end = skip_space(value_end(p));
  if (!end || (*end != ',' && *end != c->close)) return NULL;
  c->at = *end == ',' ? end + 1 : end;
  return p;
}

/* The value of the member `name` of the object at `obj`, or NULL. */
static const char *member_of(const char *obj, const char *name) {
  struct cursor c;
  char key[64];
  if (!cursor_open(&c, obj, '{')) return NULL;
  for (const char *v; (v = cursor_next(&c, key, sizeof key)) != NULL;) {
    if (strcmp(key, name) == 0) return v;
  }
  return NULL;
}

/* The number at `v`, or `otherwise` when there is none. */
static double number_at(const char *v, double otherwise) {
  if (!v) return otherwise;
  char *end;
  double d = strtod(v, &end);
  return end == v ? otherwise : d;
}

struct provider {
  char name[128];
  double price, samples, ewma_ms, p95_ms, failure_rate;
};

/* The provider chosen among those of `list` (rules 1 to 3 above); with `healthy_only`,
 * among those with a failure rate below 0.25. Returns 0 when there is none. */
static int choose(const char *list, double max_p95_ms, int healthy_only, char *out, size_t out_cap) {
  struct cursor c;
  if (!cursor_open(&c, list, '[')) return 0;
  struct provider within = {0}, fastest = {0};
  int have_within = 0, have_fastest = 0;
  for (const char *item; (item = cursor_next(&c, NULL, 0)) != NULL;) {
    struct provider p = {0};
    const char *name = member_of(item, "name");
    if (!name || !string_at(name, p.name, sizeof p.name) || !p.name[0]) continue;
    p.price = number_at(member_of(item, "price_per_call"), 0);
    p.samples = number_at(member_of(item, "samples"), 0);
    p.ewma_ms = number_at(member_of(item, "ewma_ms"), 0);
    p.p95_ms = number_at(member_of(item, "p95_ms"), 0);
    p.failure_rate = number_at(member_of(item, "failure_rate"), 0);
    if (healthy_only && p.failure_rate >= 0.25) continue;
    if (p.samples == 0) {
      snprintf(out, out_cap, "%s", p.name);
      return 1;
    }
    if (p.p95_ms <= max_p95_ms &&
        (!have_within || p.price < within.price || (p.price == within.price && p.ewma_ms < within.ewma_ms))) {
      within = p;
      have_within = 1;
    }
    if (!have_fastest || p.ewma_ms < fastest.ewma_ms) {
      fastest = p;
      have_fastest = 1;
    }
  }
  if (!have_within && !have_fastest) return 0;
  snprintf(out, out_cap, "%s", have_within ? within.name : fastest.name);
  return 1;
}

int main(void) {
  double max_p95_ms = 100;
  const char *env = getenv("MAX_P95_MS");
  if (env && *env) {
    char *end;
    double bound = strtod(env, &end);
    if (end != env && *end == 0 && bound > 0) {
      max_p95_ms = bound;
    } else {
      fprintf(stderr, "policy: MAX_P95_MS=%s is not a positive number; using %g\n", env, max_p95_ms);
    }
  }
  char *input = read_input(NULL);
  if (!input) {
    fputs("policy: cannot read stdin\n", stderr);
    return 1;
  }
  const char *list = member_of(input, "providers");
  char chosen[128];
  if (!choose(list, max_p95_ms, 1, chosen, sizeof chosen) && !choose(list, max_p95_ms, 0, chosen, sizeof chosen)) {
    fputs("policy: the input names no providers\n", stderr);
    free(input);
    return 1;
  }
  fputs("{\"provider\":", stdout);
  put_string(chosen, strlen(chosen));
  fputs("}\n", stdout);
  free(input);
  return 0;
}
