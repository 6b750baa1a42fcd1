// Burns CPU for BURN_US microseconds (default 1000), measured on the monotonic clock, then
// answers "burned". A guest whose service time is worker time, for scheduler tests and
// the open-loop benchmark.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long long nowUs(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

int main(void) {
  const char* v = getenv("BURN_US");
  long long us = v ? atoll(v) : 1000;
  long long end = nowUs() + us;
  volatile unsigned long long x = 0;
  while (nowUs() < end) {
    for (int i = 0; i < 1000; ++i) x += (unsigned long long)i * 2654435761u;
  }
  printf("burned%s\n", x == 1 ? "." : "");
  return 0;
}
