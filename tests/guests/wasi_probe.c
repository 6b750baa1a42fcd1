// A test guest that reports what it sees through WASI, one fact per line, so tests can
// check args, environment, stdin, clocks, randomness and the denial of files.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char** argv) {
  printf("argc=%d\n", argc);
  for (int i = 0; i < argc; ++i) printf("arg%d=%s\n", i, argv[i]);
  const char* v = getenv("PROBE_VAR");
  printf("PROBE_VAR=%s\n", v ? v : "(unset)");

  size_t total = 0;
  char buf[4096];
  ssize_t n;
  while ((n = read(0, buf, sizeof buf)) > 0) total += (size_t)n;
  printf("stdin_bytes=%zu\n", total);

  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  struct timespec nap = {0, 2 * 1000 * 1000};  // 2 ms via poll_oneoff
  nanosleep(&nap, NULL);
  clock_gettime(CLOCK_MONOTONIC, &b);
  long long slept = (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
  printf("slept_at_least_2ms=%d\n", slept >= 2000000);
  struct timespec rt;
  clock_gettime(CLOCK_REALTIME, &rt);
  printf("realtime_after_2020=%d\n", rt.tv_sec > 1577836800);

  unsigned char r1[32] = {0}, r2[32] = {0};
  arc4random_buf(r1, sizeof r1);
  arc4random_buf(r2, sizeof r2);
  printf("random_differs=%d\n", memcmp(r1, r2, sizeof r1) != 0);

  int fd = open("/etc/passwd", O_RDONLY);
  printf("open_denied=%d\n", fd < 0);
  fprintf(stderr, "probe log line\n");
  return 0;
}
