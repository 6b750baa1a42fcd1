/* A sensor device that embeds tern (README.md): reads temperatures and has each one
 * smoothed by the function `smooth`, here or at the nearest edge node as the adaptive
 * policy decides, through the one public header tern/device.h.
 *
 *   tern_sensor STATE_DIR COUNT EDGE_URL...      (the token: $TERN_TOKEN)
 *
 * Prints one line per reading: where it ran, how long it took end to end, the answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tern/device.h"

static const char* where_name(tern_where w) {
  return w == TERN_WHERE_LOCAL ? "local" : w == TERN_WHERE_EDGE ? "edge" : "cloud";
}

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s STATE_DIR COUNT EDGE_URL...\n", argv[0]);
    return 64;
  }
  tern_device_config config;
  memset(&config, 0, sizeof config);
  config.state_dir = argv[1];
  config.edges = (const char* const*)&argv[3];
  config.edge_count = (size_t)(argc - 3);
  config.token = getenv("TERN_TOKEN");
  config.policy = TERN_POLICY_ADAPTIVE;

  char error[512];
  tern_device* device = NULL;
  tern_status s = tern_device_open(&config, &device, error, sizeof error);
  if (s != TERN_OK) {
    fprintf(stderr, "cannot open the device: %s: %s\n", tern_status_name(s), error);
    return 1;
  }
  int failures = 0;
  long count = atol(argv[2]);
  for (long i = 0; i < count; ++i) {
    /* A slowly warming room, with a little noise. */
    char reading[32];
    int n = snprintf(reading, sizeof reading, "%.2f", 20.0 + 0.01 * (double)i + (double)(i % 3) * 0.1);
    tern_call_result r;
    memset(&r, 0, sizeof r);
    s = tern_device_call(device, "smooth", reading, (size_t)n, TERN_FORCE_NONE, &r, error, sizeof error);
    if (s != TERN_OK) {
      printf("%ld %s failed: %s: %s\n", i + 1, reading, tern_status_name(s), error);
      ++failures;
      continue;
    }
    printf("%ld %s %-5s %7.2f ms%s %.*s", i + 1, reading, where_name(r.where), r.ms,
           r.fallback ? " (fell back)" : "", (int)r.output_len, r.output);
    tern_call_result_free(&r);
  }
  tern_device_close(device);
  return failures ? 1 : 0;
}
