/* hello: the smallest useful function; ignores its request and greets. */
#include <stdio.h>

int main(void) {
  fputs("Hello from tern!\n", stdout);
  return 0;
}
