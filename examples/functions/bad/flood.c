/* flood: writes 64 KiB chunks to stdout forever, ignoring errors. tern must cap
 * the response size and/or time and stop it. */
#include <string.h>
#include <unistd.h>

int main(void) {
  static char chunk[64 * 1024];
  memset(chunk, 'x', sizeof chunk);
  chunk[sizeof chunk - 1] = '\n';
  for (;;) (void)write(STDOUT_FILENO, chunk, sizeof chunk);
}
