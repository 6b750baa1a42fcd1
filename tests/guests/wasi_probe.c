// A test guest that reports what it sees through WASI, one fact per line, so tests can
// check args, environment, stdin, clocks, randomness, the denial of files and the absence
// of sockets.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

// The socket calls on descriptor `fd` through wasi-libc, as a program would make them:
// 1 when each fails with `expected` (errno), else 0 with a line naming the call that did not.
static int socketCallsFail(int fd, int expected) {
  char b[4] = {0};
  int ok = 1;
  errno = 0;
  if (shutdown(fd, SHUT_RDWR) != -1 || errno != expected) {
    printf("shutdown(%d): errno %d\n", fd, errno);
    ok = 0;
  }
  errno = 0;
  if (recv(fd, b, sizeof b, 0) != -1 || errno != expected) {
    printf("recv(%d): errno %d\n", fd, errno);
    ok = 0;
  }
  errno = 0;
  if (send(fd, b, sizeof b, 0) != -1 || errno != expected) {
    printf("send(%d): errno %d\n", fd, errno);
    ok = 0;
  }
  errno = 0;
  if (accept(fd, NULL, NULL) != -1 || errno != expected) {
    printf("accept(%d): errno %d\n", fd, errno);
    ok = 0;
  }
  return ok;
}

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

  // A function has no sockets: its standard descriptors are not sockets, and no other
  // descriptor is open (wasi-testsuite's sock_shutdown-not_sock and -invalid_fd).
  int notSock = 1;
  for (int d = 0; d <= 2; ++d) notSock &= socketCallsFail(d, ENOTSOCK);
  printf("sockets_std_notsock=%d\n", notSock);
  int badf = socketCallsFail(3, EBADF) & socketCallsFail(1000, EBADF);
  printf("sockets_unopened_badf=%d\n", badf);
  fprintf(stderr, "probe log line\n");
  return 0;
}
