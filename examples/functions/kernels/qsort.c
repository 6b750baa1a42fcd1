/* qsort: sorts scale pseudo-random 32-bit integers with a hand-written quicksort
 * (median-of-three, insertion sort for short ranges); returns a checksum of the
 * sorted array, or 0 if it is not sorted. Measures branches and memory traffic. */
#include <stdlib.h>

#include "kernels.h"

static void insertion_sort(int32_t *a, size_t n) {
  for (size_t i = 1; i < n; i++) {
    int32_t v = a[i];
    size_t j = i;
    for (; j > 0 && a[j - 1] > v; j--) a[j] = a[j - 1];
    a[j] = v;
  }
}

static void swap(int32_t *a, int32_t *b) {
  int32_t t = *a;
  *a = *b;
  *b = t;
}

static void quicksort(int32_t *a, size_t n) {
  while (n > 16) {
    /* Median of three as pivot, moved to a[n - 1]. */
    size_t mid = n / 2;
    if (a[mid] < a[0]) swap(&a[mid], &a[0]);
    if (a[n - 1] < a[0]) swap(&a[n - 1], &a[0]);
    if (a[mid] < a[n - 1]) swap(&a[mid], &a[n - 1]);
    int32_t pivot = a[n - 1];
    size_t store = 0;
    for (size_t i = 0; i < n - 1; i++) {
      if (a[i] < pivot) swap(&a[i], &a[store++]);
    }
    swap(&a[store], &a[n - 1]);
    /* Recurse into the smaller side, loop on the larger one: O(log n) depth. */
    size_t left = store, right = n - store - 1;
    if (left < right) {
      quicksort(a, left);
      a += store + 1;
      n = right;
    } else {
      quicksort(a + store + 1, right);
      n = left;
    }
  }
  insertion_sort(a, n);
}

uint64_t kernel_qsort(uint32_t scale) {
  size_t n = scale;
  int32_t *a = malloc((n ? n : 1) * sizeof *a);
  if (!a) return 0;
  uint32_t state = 2024;
  for (size_t i = 0; i < n; i++) a[i] = (int32_t)kernel_lcg(&state);
  quicksort(a, n);
  uint64_t h = KERNEL_CHECKSUM_SEED;
  for (size_t i = 0; i < n; i++) {
    if (i > 0 && a[i - 1] > a[i]) {
      h = 0;
      break;
    }
    h = kernel_mix(h, (uint32_t)a[i]);
  }
  free(a);
  return h;
}
