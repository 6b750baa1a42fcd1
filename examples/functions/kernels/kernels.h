/* Compute kernels shared by the kernels.wasm guest and the kernels_native executable.
 *
 * Each kernel does an amount of work set by `scale` (its meaning is per kernel, see
 * the driver's table) and returns a checksum of its result, so the work cannot be
 * optimised away and the wasm and native builds can be compared. Kernels use only
 * deterministic integer and IEEE double arithmetic (+ - * / sqrt), so the checksums
 * are identical on every conforming target. */
#ifndef TERN_EXAMPLES_KERNELS_H
#define TERN_EXAMPLES_KERNELS_H

#include <stdint.h>
#include <string.h>

uint64_t kernel_fib(uint32_t scale);
uint64_t kernel_sieve(uint32_t scale);
uint64_t kernel_matmul(uint32_t scale);
uint64_t kernel_sha256(uint32_t scale);
uint64_t kernel_crc32(uint32_t scale);
uint64_t kernel_nbody(uint32_t scale);
uint64_t kernel_qsort(uint32_t scale);
uint64_t kernel_mandelbrot(uint32_t scale);

/* Folds v into the running checksum h (FNV-1a style multiply). */
static inline uint64_t kernel_mix(uint64_t h, uint64_t v) {
  return (h ^ v) * 0x100000001b3ull;
}

/* The bit pattern of a double, for exact checksums of floating-point results. */
static inline uint64_t kernel_bits(double d) {
  uint64_t u;
  memcpy(&u, &d, sizeof u);
  return u;
}

/* A 32-bit linear congruential generator used to fill inputs deterministically. */
static inline uint32_t kernel_lcg(uint32_t *state) {
  *state = *state * 1664525u + 1013904223u;
  return *state;
}

#define KERNEL_CHECKSUM_SEED 0xcbf29ce484222325ull

#endif
