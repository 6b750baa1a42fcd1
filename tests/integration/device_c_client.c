/* A C program's use of tern/device.h (compiled as C, called from device_test.cpp): opens a
 * device, makes one call, copies its output and closes. */
#include <stdio.h>
#include <string.h>

#include "tern/device.h"

int device_c_client(const char* state_dir, const char* edge, const char* token, tern_policy policy,
                    const char* input, char* output, size_t output_len, char* error, size_t error_len) {
  const char* edges[] = {edge};
  tern_device_config config;
  memset(&config, 0, sizeof config);
  config.state_dir = state_dir;
  config.edges = edges;
  config.edge_count = edge ? 1 : 0;
  config.token = token;
  config.policy = policy;
  tern_device* device = NULL;
  tern_status s = tern_device_open(&config, &device, error, error_len);
  if (s != TERN_OK) return (int)s;
  tern_call_result result;
  s = tern_device_call(device, "inc", input, strlen(input), TERN_FORCE_NONE, &result, error, error_len);
  if (s == TERN_OK) {
    snprintf(output, output_len, "%s %s", result.where == TERN_WHERE_LOCAL ? "local" : "remote", result.output);
    tern_call_result_free(&result);
  }
  tern_device_close(device);
  return (int)s;
}
