/* An aarch64 program that embeds a device through tern/device.h (docs/arm64.md):
 *
 *   tern_device_smoke STATE_DIR EDGE_URL TOKEN FUNCTION INPUT local|edge
 *
 * runs one call of FUNCTION with INPUT under the given policy, prints
 * "where=local|edge fallback=0|1 output=..." and exits 0, or prints the error and exits 1.
 */
#include <stdio.h>
#include <string.h>

#include "tern/device.h"

int main(int argc, char** argv) {
  if (argc != 7 || (strcmp(argv[6], "local") != 0 && strcmp(argv[6], "edge") != 0)) {
    fprintf(stderr, "usage: %s STATE_DIR EDGE_URL TOKEN FUNCTION INPUT local|edge\n", argv[0]);
    return 64;
  }
  const char* edges[] = {argv[2]};
  tern_device_config config;
  memset(&config, 0, sizeof config);
  config.state_dir = argv[1];
  config.edges = edges;
  config.edge_count = 1;
  config.token = argv[3];
  config.policy = strcmp(argv[6], "local") == 0 ? TERN_POLICY_LOCAL : TERN_POLICY_EDGE;
  config.remote_timeout_ms = 60000;

  char error[512];
  tern_device* device = NULL;
  tern_status s = tern_device_open(&config, &device, error, sizeof error);
  if (s != TERN_OK) {
    fprintf(stderr, "tern_device_open: %s: %s\n", tern_status_name(s), error);
    return 1;
  }
  tern_call_result result;
  memset(&result, 0, sizeof result);
  s = tern_device_call(device, argv[4], argv[5], strlen(argv[5]), TERN_FORCE_NONE, &result,
                       error, sizeof error);
  if (s != TERN_OK) {
    fprintf(stderr, "tern_device_call: %s: %s\n", tern_status_name(s), error);
    tern_device_close(device);
    return 1;
  }
  printf("where=%s fallback=%d output=%.*s\n",
         result.where == TERN_WHERE_LOCAL ? "local"
         : result.where == TERN_WHERE_EDGE ? "edge"
                                           : "cloud",
         result.fallback, (int)result.output_len, result.output);
  tern_call_result_free(&result);
  tern_device_close(device);
  return 0;
}
