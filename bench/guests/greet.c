/* greet: a small but realistic HTTP function, the kind the node benchmark serves. Built
 * against wasi-libc like any C function: it reads its CGI environment (the request method,
 * the query string, every header passed as HTTP_*), reads its whole request body from
 * stdin, and answers with printf. For the same request it always gives the same answer,
 * so nginx can return that body for comparison (bench/http_bench.sh).
 *
 *   GET /fn/greet              -> "Hello, world! GET, 0 bytes, 1 headers\n" (wrk sends Host)
 *   GET /fn/greet?name=tern    -> "Hello, tern! GET, 0 bytes, 1 headers\n" */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

int main(void) {
  const char *method = getenv("REQUEST_METHOD");
  const char *query = getenv("QUERY_STRING");
  char name[64] = "world";
  if (query && strncmp(query, "name=", 5) == 0 && query[5]) {
    snprintf(name, sizeof name, "%.*s", (int)strcspn(query + 5, "&"), query + 5);
  }
  int headers = 0;
  for (char **e = environ; *e; ++e) headers += strncmp(*e, "HTTP_", 5) == 0;
  char buf[4096];
  size_t body = 0;
  ssize_t n;
  while ((n = read(STDIN_FILENO, buf, sizeof buf)) > 0) body += (size_t)n;
  printf("Hello, %s! %s, %zu bytes, %d headers\n", name, method ? method : "?", body, headers);
  return 0;
}
