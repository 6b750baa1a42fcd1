/* Shift: {"char": C, "offset": N} -> {"shiftedChar": C rotated by N within its alphabet}
 * (letters only; other characters stay). One task per character in the workflow's
 * parallelFor. */
#include "json_io.h"

int main(void) {
  char *in = read_input(NULL);
  if (!in) return 1;
  char c[16];
  const char *off = field(in, "offset");
  if (!string_at(field(in, "char"), c, sizeof c) || !off) {
    fprintf(stderr, "shift: the input needs \"char\" (text) and \"offset\" (a number)\n");
    return 2;
  }
  long offset = strtol(off, NULL, 10) % 26;
  if (offset < 0) offset += 26;
  if (c[0] >= 'a' && c[0] <= 'z') c[0] = (char)('a' + (c[0] - 'a' + offset) % 26);
  else if (c[0] >= 'A' && c[0] <= 'Z') c[0] = (char)('A' + (c[0] - 'A' + offset) % 26);
  fputs("{\"shiftedChar\":", stdout);
  put_string(c, strlen(c));
  fputs("}", stdout);
  return 0;
}
