/* exit3: writes a line and exits with status 3 (a clean exit with a failure code). */
#include <stdio.h>

int main(void) {
  puts("exit3: exiting with status 3");
  return 3;
}
