/* fib: naive doubly recursive Fibonacci; scale is n. Measures call overhead. */
#include "kernels.h"

static uint64_t fib(uint32_t n) {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

uint64_t kernel_fib(uint32_t scale) {
  return fib(scale);
}
