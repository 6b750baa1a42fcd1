// An async job that fails until it is tried often enough: exits 1 while its attempt number
// (TERN_ATTEMPT) is below SUCCEED_AT (default 3), then prints its attempt, its job id
// (TERN_ASYNC_ID) and its stdin.
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(void) {
  const char* attempt = getenv("TERN_ATTEMPT");
  const char* id = getenv("TERN_ASYNC_ID");
  const char* target = getenv("SUCCEED_AT");
  long n = attempt ? atol(attempt) : 0;
  long at = target ? atol(target) : 3;
  if (n < at) {
    printf("attempt %ld fails\n", n);
    return 1;
  }
  printf("attempt=%ld id=%s body=", n, id ? id : "");
  char buf[4096];
  ssize_t got;
  while ((got = read(0, buf, sizeof buf)) > 0) fwrite(buf, 1, (size_t)got, stdout);
  return 0;
}
