/* report: a realistic small CGI function built against wasi-libc. It reads its request
 * environment and body and answers with a formatted report (printf with integers, floats
 * and strings), the kind of work a real function does around its own logic. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern char** environ;

static int cmp(const void* a, const void* b) {
  return strcmp(*(const char* const*)a, *(const char* const*)b);
}

int main(void) {
  const char* method = getenv("REQUEST_METHOD");
  const char* path = getenv("PATH_INFO");
  const char* query = getenv("QUERY_STRING");
  char* body = NULL;
  size_t len = 0, cap = 0;
  char buf[4096];
  ssize_t n;
  while ((n = read(0, buf, sizeof buf)) > 0) {
    if (len + (size_t)n > cap) {
      cap = (len + (size_t)n) * 2;
      body = realloc(body, cap);
      if (!body) return 1;
    }
    memcpy(body + len, buf, (size_t)n);
    len += (size_t)n;
  }
  size_t lines = 0, words = 0, digits = 0;
  int inWord = 0;
  double sum = 0;
  for (size_t i = 0; i < len; ++i) {
    unsigned char c = (unsigned char)body[i];
    if (c == '\n') ++lines;
    if (isdigit(c)) ++digits;
    if (isspace(c)) inWord = 0;
    else if (!inWord) { inWord = 1; ++words; }
    sum += c;
  }
  const char* vars[64];
  size_t count = 0;
  for (char** e = environ; *e && count < 64; ++e) {
    if (strncmp(*e, "HTTP_", 5) == 0) vars[count++] = *e;
  }
  qsort(vars, count, sizeof vars[0], cmp);
  printf("Content-Type: text/plain\r\n\r\n");
  printf("method=%s path=%s query=%s\n", method ? method : "-", path ? path : "/",
         query ? query : "");
  printf("body: %zu bytes, %zu lines, %zu words, %zu digits, mean byte %.3f, rms %.3e\n", len,
         lines, words, digits, len ? sum / (double)len : 0.0, len ? sqrt(sum / (double)len) : 0.0);
  for (size_t i = 0; i < count; ++i) printf("header %zu: %s\n", i, vars[i]);
  long q = query ? strtol(query, NULL, 10) : 0;
  printf("checksum %08lx\n", (unsigned long)(q * 2654435761u + (unsigned long)len));
  free(body);
  return 0;
}
