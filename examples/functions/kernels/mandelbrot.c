/* mandelbrot: escape-time iteration counts (at most 256) over a scale x scale grid
 * of [-2, 0.5] x [-1.25, 1.25]; returns a checksum of the per-row iteration
 * totals. Measures dependent double multiply-add chains. */
#include "kernels.h"

#define MAX_ITER 256

uint64_t kernel_mandelbrot(uint32_t scale) {
  uint64_t h = KERNEL_CHECKSUM_SEED;
  for (uint32_t py = 0; py < scale; py++) {
    double ci = -1.25 + 2.5 * (double)py / (double)scale;
    uint64_t row = 0;
    for (uint32_t px = 0; px < scale; px++) {
      double cr = -2.0 + 2.5 * (double)px / (double)scale;
      double zr = 0.0, zi = 0.0;
      int it = 0;
      while (it < MAX_ITER && zr * zr + zi * zi <= 4.0) {
        double t = zr * zr - zi * zi + cr;
        zi = 2.0 * zr * zi + ci;
        zr = t;
        it++;
      }
      row += (uint64_t)it;
    }
    h = kernel_mix(h, row);
  }
  return h;
}
