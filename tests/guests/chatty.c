// Writes LINES (default 2) stderr lines of WIDTH (default 40) characters each, naming the
// line, then answers "ok": a function whose logs the console's live feed carries.
#include <stdio.h>
#include <stdlib.h>

int main(void) {
  const char* l = getenv("LINES");
  const char* w = getenv("WIDTH");
  long lines = l ? atol(l) : 2;
  long width = w ? atol(w) : 40;
  for (long i = 0; i < lines; ++i) {
    fprintf(stderr, "line %ld ", i);
    for (long j = 0; j < width; ++j) fputc('a' + (int)(j % 26), stderr);
    fputc('\n', stderr);
  }
  printf("ok\n");
  return 0;
}
