/* echo: copies the request (stdin) to the response (stdout) byte for byte. */
#include <errno.h>
#include <unistd.h>

/* Writes all of buf, retrying after partial writes and EINTR. Returns 0 or -1. */
static int write_all(int fd, const unsigned char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

int main(void) {
  static unsigned char buf[64 * 1024];
  for (;;) {
    ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
    if (n == 0) return 0;
    if (n < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    if (write_all(STDOUT_FILENO, buf, (size_t)n) != 0) return 1;
  }
}
