/* divzero: integer division by zero at run time, which traps in WebAssembly. */
#include <stdio.h>

int main(void) {
  volatile int dividend = 42, divisor = 0;
  printf("divzero: %d\n", dividend / divisor);
  return 0;
}
