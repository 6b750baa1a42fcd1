// Answers with a CGI header block (status 201, a content type, a custom header), then
// echoes its request environment and body, so tests can check both directions.
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

extern char** environ;

int main(void) {
  printf("Status: 201 Created\r\nContent-Type: text/plain\r\nX-Test: yes\r\n\r\n");
  for (char** e = environ; *e; ++e) printf("%s\n", *e);
  char buf[4096];
  ssize_t n;
  printf("body=");
  while ((n = read(0, buf, sizeof buf)) > 0) fwrite(buf, 1, (size_t)n, stdout);
  printf("\n");
  return 0;
}
