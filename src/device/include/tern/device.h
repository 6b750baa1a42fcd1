/* tern's device runtime, from C (docs/design/devices.md).
 *
 * A device runs each call of a function on itself (tern's engine, in the same sandboxes as
 * a node), at an edge node or in the cloud tier, as its policy decides from the measured
 * latency of each. Handles are opaque; every function returns a tern_status and, where it
 * can fail, writes a message into the caller's buffer. Nothing throws across this
 * boundary. A handle may be used by one thread at a time.
 */
#ifndef TERN_DEVICE_H
#define TERN_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tern_status {
  TERN_OK = 0,
  TERN_INVALID_ARGUMENT = 1, /* a bad option or value */
  TERN_NOT_FOUND = 2,        /* no such function anywhere the device can reach */
  TERN_UNAVAILABLE = 3,      /* no environment could run the call */
  TERN_FUNCTION_FAILED = 4,  /* the function ran and failed (exit code, trap, timeout) */
  TERN_IO = 5,               /* the state directory could not be read or written */
  TERN_ERROR = 6             /* anything else (the message says what) */
} tern_status;

typedef enum tern_policy {
  TERN_POLICY_ADAPTIVE = 0,
  TERN_POLICY_LOCAL = 1,
  TERN_POLICY_EDGE = 2,
  TERN_POLICY_CLOUD = 3
} tern_policy;

typedef enum tern_force { TERN_FORCE_NONE = 0, TERN_FORCE_LOCAL = 1, TERN_FORCE_REMOTE = 2 } tern_force;

typedef enum tern_where { TERN_WHERE_LOCAL = 0, TERN_WHERE_EDGE = 1, TERN_WHERE_CLOUD = 2 } tern_where;

typedef struct tern_device_config {
  const char* state_dir;      /* required: functions, objects and learned latencies */
  const char* const* edges;   /* edge node URLs, http://HOST:PORT */
  size_t edge_count;
  const char* cloud;          /* a cloud-tier node's URL, or NULL */
  const char* token;          /* a bearer token the nodes accept, or NULL */
  tern_policy policy;
  uint32_t remote_timeout_ms; /* 0: 10000 */
  const char* cc;             /* a C compiler to build objects here when no node serves
                                 one for this machine, or NULL (a device needs none) */
} tern_device_config;

typedef struct tern_call_result {
  tern_where where;  /* where it ran in the end */
  int fallback;      /* 1: the chosen remote failed and it ran here */
  double ms;         /* end to end */
  char* output;      /* the function's stdout, NUL-terminated; free with tern_call_result_free */
  size_t output_len;
} tern_call_result;

typedef struct tern_device tern_device;

/* Opens a device. On success *out is a handle for tern_device_close. */
tern_status tern_device_open(const tern_device_config* config, tern_device** out, char* error,
                             size_t error_len);

/* One call of `function` with `input` as its stdin. On TERN_OK, *result holds the output. */
tern_status tern_device_call(tern_device* device, const char* function, const void* input,
                             size_t input_len, tern_force force, tern_call_result* result,
                             char* error, size_t error_len);

void tern_call_result_free(tern_call_result* result);

/* Writes what the device learned to its state directory. */
tern_status tern_device_save(tern_device* device, char* error, size_t error_len);

/* Saves (best effort) and frees the handle. NULL is allowed. */
void tern_device_close(tern_device* device);

/* "ok", "invalid_argument", ... */
const char* tern_status_name(tern_status status);

#ifdef __cplusplus
}
#endif

#endif /* TERN_DEVICE_H */
