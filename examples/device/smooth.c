/* Smooths a sensor's readings: the function of the device example (README.md).
 *
 * stdin is one reading ("21.5"). Keeps the reading count and an exponentially weighted
 * mean in the key-value store. Called by a device (tern device call, tern/device.h), the
 * store is that device's own and follows it from edge to edge; run on the device itself,
 * there is no store and the reading is answered as it is. WORK_ITERS (env) adds that much
 * arithmetic per call, standing in for a heavier model.
 *
 * Answers {"n": COUNT, "mean": MEAN, "stored": true|false}.
 * Capabilities: --allow kv
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tern.h>

#define ALPHA 0.2 /* weight of a new reading */

int main(void) {
  char text[64] = {0};
  size_t len = fread(text, 1, sizeof text - 1, stdin);
  text[len] = '\0';
  char* end = NULL;
  double reading = strtod(text, &end);
  if (end == text) {
    fprintf(stderr, "not a reading: %s\n", text);
    return 2;
  }

  /* Optional work: a stand-in for a model that makes the call worth offloading. */
  const char* iters = getenv("WORK_ITERS");
  volatile double sink = 0;
  for (long i = 0, n = iters ? atol(iters) : 0; i < n; ++i) sink = sink + (double)(i % 7) * 0.5;
  (void)sink;

  long count = 0;
  double mean = reading;
  char stored[64];
  size_t stored_len = 0;
  tern_status_t s = tern_kv_get_into("stats", 5, stored, sizeof stored - 1, &stored_len);
  if (s == TERN_OK) {
    stored[stored_len] = '\0';
    if (sscanf(stored, "%ld %lf", &count, &mean) == 2) mean = ALPHA * reading + (1 - ALPHA) * mean;
  } else if (s != TERN_NOT_FOUND) {
    /* No store here (a run on the device): answer the reading alone. */
    printf("{\"n\": 1, \"mean\": %.2f, \"stored\": false}\n", reading);
    return 0;
  }
  ++count;
  char next[64];
  int n = snprintf(next, sizeof next, "%ld %.6f", count, mean);
  if (tern_kv_set("stats", 5, next, (size_t)n) != TERN_OK) {
    fprintf(stderr, "kv_set: %s\n", tern_last_error());
    return 1;
  }
  printf("{\"n\": %ld, \"mean\": %.2f, \"stored\": true}\n", count, mean);
  return 0;
}
