/* matmul: dense double-precision matrix product C = A * B of scale x scale
 * matrices (i-k-j loop order). Measures floating-point throughput. */
#include <stdlib.h>

#include "kernels.h"

uint64_t kernel_matmul(uint32_t scale) {
  size_t n = scale;
  double *a = malloc(n * n * sizeof *a);
  double *b = malloc(n * n * sizeof *b);
  double *c = calloc(n * n, sizeof *c);
  if (!a || !b || !c) {
    free(a);
    free(b);
    free(c);
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    for (size_t j = 0; j < n; j++) {
      a[i * n + j] = (double)((i * 7 + j * 3) % 17) * 0.25 - 2.0;
      b[i * n + j] = (double)((i * 5 + j * 11) % 13) * 0.5 - 3.0;
    }
  }
  for (size_t i = 0; i < n; i++) {
    for (size_t k = 0; k < n; k++) {
      double aik = a[i * n + k];
      for (size_t j = 0; j < n; j++) c[i * n + j] += aik * b[k * n + j];
    }
  }
  uint64_t h = KERNEL_CHECKSUM_SEED;
  for (size_t i = 0; i < n; i++) {
    double row = 0.0;
    for (size_t j = 0; j < n; j++) row += c[i * n + j];
    h = kernel_mix(h, kernel_bits(row));
  }
  free(a);
  free(b);
  free(c);
  return h;
}
