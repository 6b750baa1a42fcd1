/* A workflow task for the tests, chosen by the OP environment variable:
 *   inc   {"n": X} -> {"n": X+1}
 *   tag   {"n": X} -> {"tag": $TAG, "n": X}
 *   spin  {"n": X} -> {"n": X} after spinning $SPIN_MS milliseconds (default 50)
 *   size  {"data": TEXT} -> {"bytes": length of the input}
 *   work  {"n": X} -> {"n": X} after $WORK_ITERS (default 10,000,000) rounds of arithmetic:
 *         a fixed amount of CPU work, slower where the CPU is slower
 *   bad   prints text that is not JSON
 *   fail  exits 1 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char input[1 << 20];

static double number(const char *key) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\"", key);
  const char *p = strstr(input, pat);
  if (!p) return 0;
  p = strchr(p + strlen(pat), ':');
  return p ? strtod(p + 1, NULL) : 0;
}

int main(void) {
  size_t n = fread(input, 1, sizeof input - 1, stdin);
  input[n] = 0;
  const char *op = getenv("OP");
  if (!op) op = "inc";
  if (strcmp(op, "inc") == 0) {
    printf("{\"n\":%.17g}", number("n") + 1);
  } else if (strcmp(op, "tag") == 0) {
    const char *tag = getenv("TAG");
    printf("{\"tag\":\"%s\",\"n\":%.17g}", tag ? tag : "", number("n"));
  } else if (strcmp(op, "spin") == 0) {
    const char *ms = getenv("SPIN_MS");
    long wait = ms ? atol(ms) : 50;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    do {
      clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 < wait);
    printf("{\"n\":%.17g}", number("n"));
  } else if (strcmp(op, "work") == 0) {
    const char *iters = getenv("WORK_ITERS");
    long long rounds = iters ? atoll(iters) : 10000000;
    volatile unsigned long long x = 1;
    for (long long i = 0; i < rounds; ++i) x = x * 6364136223846793005ull + 1442695040888963407ull;
    printf("{\"n\":%.17g}", number("n"));
  } else if (strcmp(op, "size") == 0) {
    printf("{\"bytes\":%zu}", n);
  } else if (strcmp(op, "bad") == 0) {
    printf("this is not JSON");
  } else {
    return 1;
  }
  return 0;
}
