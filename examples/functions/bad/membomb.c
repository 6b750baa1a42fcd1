/* membomb: allocates and touches 1 MiB blocks until malloc fails, then reports how
 * many MiB it got on stderr and exits 1. tern's memory limit decides when. */
#include <stdio.h>
#include <stdlib.h>

#define BLOCK (1024 * 1024)

/* The allocated blocks form a list through their first word, so none is freed or
 * optimised away. */
static void *volatile head;

int main(void) {
  size_t mib = 0;
  for (;;) {
    volatile unsigned char *block = malloc(BLOCK);
    if (!block) break;
    for (size_t i = 0; i < BLOCK; i += 4096) block[i] = (unsigned char)i;
    *(void *volatile *)block = head;
    head = (void *)block;
    mib++;
  }
  fprintf(stderr, "membomb: malloc failed after %zu MiB\n", mib);
  return 1;
}
