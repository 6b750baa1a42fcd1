/* A program that asks for more than the subprocess limits allow, for the limit tests:
 *   resource_hog alloc BYTES   malloc BYTES (not touched): exit 0 if it got them, else print
 *                              "cannot allocate" and exit 3
 *   resource_hog spin          use CPU until stopped
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The allocation escapes through here: a compiler may otherwise drop a malloc whose result
// is only compared with null and freed (clang does at -O1), and the request never happens.
static void* volatile escaped;

int main(int argc, char** argv) {
  if (argc == 3 && strcmp(argv[1], "alloc") == 0) {
    size_t bytes = strtoull(argv[2], NULL, 10);
    void* p = malloc(bytes);
    escaped = p;
    if (!p) {
      printf("cannot allocate %zu bytes\n", bytes);
      return 3;
    }
    printf("allocated %zu bytes\n", bytes);
    free(p);
    return 0;
  }
  if (argc == 2 && strcmp(argv[1], "spin") == 0) {
    volatile unsigned long n = 0;
    for (;;) ++n;
  }
  fprintf(stderr, "usage: resource_hog alloc BYTES | spin\n");
  return 2;
}
