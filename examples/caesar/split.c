/* Split: {"original": TEXT} -> {"charArr": [each character of TEXT]} (UTF-8 sequences
 * stay whole). The first task of the Caesar cipher workflow (caesar.yaml). */
#include "json_io.h"

int main(void) {
  char *in = read_input(NULL);
  if (!in) return 1;
  static char text[1 << 20];
  if (!string_at(field(in, "original"), text, sizeof text)) {
    fprintf(stderr, "split: the input needs \"original\" (text)\n");
    return 2;
  }
  fputs("{\"charArr\":[", stdout);
  size_t n = strlen(text);
  for (size_t i = 0; i < n;) {
    size_t len = 1;
    while (i + len < n && ((unsigned char)text[i + len] & 0xC0) == 0x80) ++len;
    if (i > 0) putchar(',');
    put_string(text + i, len);
    i += len;
  }
  fputs("]}", stdout);
  return 0;
}
