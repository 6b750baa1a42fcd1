// Sleeps SLEEP_MS milliseconds (default 500) through WASI, logs to stderr, then answers.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(void) {
  const char* v = getenv("SLEEP_MS");
  long ms = v ? atol(v) : 500;
  fprintf(stderr, "sleeping %ld ms\n", ms);
  struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&t, NULL);
  fprintf(stderr, "woke up\n");
  printf("done\n");
  return 0;
}
