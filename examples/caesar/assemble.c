/* Assemble: {"shiftedCharArr": [C, ...]} -> {"encodedString": the characters joined}. */
#include "json_io.h"

int main(void) {
  char *in = read_input(NULL);
  if (!in) return 1;
  const char *p = field(in, "shiftedCharArr");
  if (!p || *p != '[') {
    fprintf(stderr, "assemble: the input needs \"shiftedCharArr\" (a list of text)\n");
    return 2;
  }
  static char out[1 << 20];
  size_t n = 0;
  char one[16];
  for (++p;;) {
    while (*p == ' ' || *p == ',' || *p == '\n') ++p;
    if (*p == ']') break;
    p = string_at(p, one, sizeof one);
    if (!p) {
      fprintf(stderr, "assemble: shiftedCharArr holds something other than text\n");
      return 2;
    }
    size_t len = strlen(one);
    if (n + len < sizeof out) {
      memcpy(out + n, one, len);
      n += len;
    }
  }
  fputs("{\"encodedString\":", stdout);
  put_string(out, n);
  fputs("}", stdout);
  return 0;
}
