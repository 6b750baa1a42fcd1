/* kernels: runs one compute kernel (or all of them) and reports the best time.
 *
 *   kernels NAME [SCALE] [REPS]
 *
 * NAME is a kernel from the table below or "all"; SCALE 0 or absent means the
 * kernel's default; REPS (default 3) is how many times the kernel runs. When an
 * argument is absent it is taken from the environment variables KERNEL,
 * KERNEL_SCALE and KERNEL_REPS, since tern invokes functions without arguments.
 * For each kernel run it prints one line to stdout:
 *
 *   NAME scale=S reps=R best_ns=B checksum=C
 *
 * where B is the fastest repetition in nanoseconds (CLOCK_MONOTONIC) and C the
 * kernel's checksum, which is the same for the wasm and native builds. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels.h"

struct kernel {
  const char *name;
  uint64_t (*run)(uint32_t scale);
  uint32_t default_scale; /* chosen for roughly 5-50 ms natively at -O2 */
  const char *scale_means;
};

static const struct kernel kernels[] = {
    {"fib", kernel_fib, 35, "n"},
    {"sieve", kernel_sieve, 5000000, "upper bound"},
    {"matmul", kernel_matmul, 256, "matrix side"},
    {"sha256", kernel_sha256, 4096, "KiB hashed"},
    {"crc32", kernel_crc32, 4096, "KiB checksummed"},
    {"nbody", kernel_nbody, 200000, "time steps"},
    {"qsort", kernel_qsort, 400000, "elements"},
    {"mandelbrot", kernel_mandelbrot, 256, "grid side"},
};
#define NKERNELS (sizeof kernels / sizeof kernels[0])

static void usage(void) {
  fputs("usage: kernels NAME [SCALE] [REPS]\n"
        "  (or set KERNEL, KERNEL_SCALE, KERNEL_REPS in the environment)\n"
        "  NAME is \"all\" or one of:\n",
        stderr);
  for (size_t i = 0; i < NKERNELS; i++) {
    fprintf(stderr, "    %-10s SCALE = %s, default %" PRIu32 "\n", kernels[i].name,
            kernels[i].scale_means, kernels[i].default_scale);
  }
}

/* Parses a non-negative decimal integer that fits in uint32_t. Returns 0 or -1. */
static int parse_u32(const char *s, uint32_t *out) {
  if (!s || !*s) return -1;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end || s[0] == '-' || v > UINT32_MAX) return -1;
  *out = (uint32_t)v;
  return 0;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Runs k reps times and prints its result line. Returns 0, or 1 if the checksum
 * differed between repetitions. */
static int run_kernel(const struct kernel *k, uint32_t scale, uint32_t reps) {
  if (scale == 0) scale = k->default_scale;
  uint64_t best = UINT64_MAX, checksum = 0;
  for (uint32_t r = 0; r < reps; r++) {
    uint64_t start = now_ns();
    uint64_t c = k->run(scale);
    uint64_t elapsed = now_ns() - start;
    if (elapsed < best) best = elapsed;
    if (r > 0 && c != checksum) {
      fprintf(stderr, "kernels: %s: checksum changed between repetitions\n", k->name);
      return 1;
    }
    checksum = c;
  }
  printf("%s scale=%" PRIu32 " reps=%" PRIu32 " best_ns=%" PRIu64 " checksum=%" PRIu64 "\n",
         k->name, scale, reps, best, checksum);
  fflush(stdout);
  return 0;
}

int main(int argc, char **argv) {
  const char *name = argc > 1 ? argv[1] : getenv("KERNEL");
  const char *scale_arg = argc > 2 ? argv[2] : getenv("KERNEL_SCALE");
  const char *reps_arg = argc > 3 ? argv[3] : getenv("KERNEL_REPS");
  uint32_t scale = 0, reps = 3;
  if (!name || argc > 4 || (scale_arg && parse_u32(scale_arg, &scale) != 0) ||
      (reps_arg && (parse_u32(reps_arg, &reps) != 0 || reps == 0))) {
    usage();
    return 2;
  }

  if (strcmp(name, "all") == 0) {
    if (scale != 0) {
      fputs("kernels: SCALE cannot be given with \"all\" (each kernel uses its default)\n",
            stderr);
      return 2;
    }
    int status = 0;
    for (size_t i = 0; i < NKERNELS; i++) status |= run_kernel(&kernels[i], 0, reps);
    return status;
  }
  for (size_t i = 0; i < NKERNELS; i++) {
    if (strcmp(name, kernels[i].name) == 0) return run_kernel(&kernels[i], scale, reps);
  }
  fprintf(stderr, "kernels: unknown kernel \"%s\"\n", name);
  usage();
  return 2;
}
