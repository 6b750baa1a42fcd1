/* oob: stores to an address far beyond linear memory, which traps out of bounds. */
#include <stdio.h>

int main(void) {
  *(volatile int *)0xfffffff0u = 1;
  puts("oob: the out-of-bounds store did not trap");
  return 0;
}
