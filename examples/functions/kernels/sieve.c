/* sieve: Sieve of Eratosthenes over [0, scale]; returns a checksum of the count and
 * sum of the primes found. Measures byte-array loads and stores. */
#include <stdlib.h>

#include "kernels.h"

uint64_t kernel_sieve(uint32_t scale) {
  size_t n = (size_t)scale + 1;
  unsigned char *composite = calloc(n, 1);
  if (!composite) return 0;
  uint64_t count = 0, sum = 0;
  for (size_t i = 2; i < n; i++) {
    if (composite[i]) continue;
    count++;
    sum += i;
    /* 64-bit, since i * i overflows a 32-bit size_t (wasm32) for large bounds. */
    for (uint64_t j = (uint64_t)i * i; j < n; j += i) composite[j] = 1;
  }
  free(composite);
  return kernel_mix(kernel_mix(KERNEL_CHECKSUM_SEED, count), sum);
}
