/* tern guest SDK for C and C++: the "tern" host API, version 2.
 *
 * Header-only. Build with `clang --target=wasm32-wasi -I sdk/guest/c`. The raw imports
 * (tern_raw_*) follow docs/design/host-api.md exactly; the tern_* wrappers add the
 * buffer_too_small retry and allocation. Every call returns a tern_status_t: TERN_OK (0) or
 * a failure whose text tern_last_error() returns. Calls outside the function's capabilities
 * (granted at deploy with --allow) return TERN_DENIED.
 */
#ifndef TERN_GUEST_H_
#define TERN_GUEST_H_

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TERN_HOST_API_VERSION 2

typedef enum {
  TERN_OK = 0,
  TERN_NOT_FOUND = 1,
  TERN_DENIED = 2,
  TERN_TOO_LARGE = 3,
  TERN_BUFFER_TOO_SMALL = 4,
  TERN_UNAVAILABLE = 5,
  TERN_DEPTH_EXCEEDED = 6,
  TERN_TIMEOUT = 7,
  TERN_INVALID_ARGUMENT = 8,
  TERN_FAILED = 9,
  TERN_IO = 10,
  TERN_QUOTA_EXCEEDED = 11,
  TERN_FAULT = 12,
} tern_status_t;

typedef enum {
  TERN_LOG_DEBUG = 0,
  TERN_LOG_INFO = 1,
  TERN_LOG_WARN = 2,
  TERN_LOG_ERROR = 3,
} tern_log_level_t;

/* ---- Raw imports: pointers are offsets in linear memory, lengths in bytes. ---- */

#define TERN_IMPORT(name) __attribute__((import_module("tern"), import_name(#name)))

TERN_IMPORT(host_api_version) uint32_t tern_raw_host_api_version(void);
TERN_IMPORT(last_error) uint32_t tern_raw_last_error(uint8_t* buf, uint32_t cap);
TERN_IMPORT(log) uint32_t tern_raw_log(uint32_t level, const uint8_t* msg, uint32_t len);
TERN_IMPORT(kv_get)
uint32_t tern_raw_kv_get(const uint8_t* key, uint32_t key_len, uint8_t* buf, uint32_t cap,
                         uint32_t* len_out);
TERN_IMPORT(kv_set)
uint32_t tern_raw_kv_set(const uint8_t* key, uint32_t key_len, const uint8_t* value,
                         uint32_t value_len);
TERN_IMPORT(kv_delete) uint32_t tern_raw_kv_delete(const uint8_t* key, uint32_t key_len);
TERN_IMPORT(kv_list)
uint32_t tern_raw_kv_list(const uint8_t* prefix, uint32_t prefix_len, const uint8_t* after,
                          uint32_t after_len, uint8_t* buf, uint32_t cap, uint32_t* result);
TERN_IMPORT(publish)
uint32_t tern_raw_publish(const uint8_t* topic, uint32_t topic_len, const uint8_t* payload,
                          uint32_t payload_len);
TERN_IMPORT(stream_publish)
uint32_t tern_raw_stream_publish(const uint8_t* topic, uint32_t topic_len, const uint8_t* payload,
                                 uint32_t payload_len, uint64_t* seq_out);
TERN_IMPORT(invoke)
uint32_t tern_raw_invoke(const uint8_t* name, uint32_t name_len, const uint8_t* input,
                         uint32_t input_len, uint8_t* buf, uint32_t cap, uint32_t* len_out);
TERN_IMPORT(last_output) uint32_t tern_raw_last_output(uint8_t* buf, uint32_t cap,
                                                       uint32_t* len_out);

#undef TERN_IMPORT

/* ---- Wrappers ---- */

static inline const char* tern_status_name(tern_status_t s) {
  static const char* const names[] = {
      "ok",      "not_found",        "denied",     "too_large", "buffer_too_small",
      "unavailable", "depth_exceeded", "timeout", "invalid_argument", "failed",
      "io",      "quota_exceeded",   "fault"};
  return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "unknown";
}

/* The text of the last failed call, NUL-terminated in a static buffer (cut at 1023 bytes). */
static inline const char* tern_last_error(void) {
  static char text[1024];
  uint32_t n = tern_raw_last_error((uint8_t*)text, sizeof text - 1);
  if (n == UINT32_MAX) n = 0;
  text[n < sizeof text - 1 ? n : sizeof text - 1] = '\0';
  return text;
}

/* One line in the function's log: "[warn] message". */
static inline tern_status_t tern_log(tern_log_level_t level, const char* msg) {
  return (tern_status_t)tern_raw_log((uint32_t)level, (const uint8_t*)msg, (uint32_t)strlen(msg));
}

/* Reads a value into caller storage. On TERN_BUFFER_TOO_SMALL *len is the size needed. */
static inline tern_status_t tern_kv_get_into(const void* key, size_t key_len, void* buf,
                                             size_t cap, size_t* len) {
  uint32_t n = 0;
  tern_status_t s = (tern_status_t)tern_raw_kv_get((const uint8_t*)key, (uint32_t)key_len,
                                                   (uint8_t*)buf, (uint32_t)cap, &n);
  if (len) *len = n;
  return s;
}

/* Reads a value into a malloc'ed buffer (NUL-terminated for convenience; *len excludes the
 * NUL). The caller frees *out. Retries while the value grows between calls. */
static inline tern_status_t tern_kv_get(const void* key, size_t key_len, char** out,
                                        size_t* len) {
  size_t cap = 256;
  *out = NULL;
  for (;;) {
    char* buf = (char*)malloc(cap + 1);
    if (!buf) return TERN_TOO_LARGE;
    size_t n = 0;
    tern_status_t s = tern_kv_get_into(key, key_len, buf, cap, &n);
    if (s == TERN_BUFFER_TOO_SMALL) {
      free(buf);
      cap = n;
      continue;
    }
    if (s != TERN_OK) {
      free(buf);
      return s;
    }
    buf[n] = '\0';
    *out = buf;
    if (len) *len = n;
    return TERN_OK;
  }
}

static inline tern_status_t tern_kv_set(const void* key, size_t key_len, const void* value,
                                        size_t value_len) {
  return (tern_status_t)tern_raw_kv_set((const uint8_t*)key, (uint32_t)key_len,
                                        (const uint8_t*)value, (uint32_t)value_len);
}

static inline tern_status_t tern_kv_delete(const void* key, size_t key_len) {
  return (tern_status_t)tern_raw_kv_delete((const uint8_t*)key, (uint32_t)key_len);
}

/* One page of keys starting with `prefix` that sort after `after` (NULL/0: from the first).
 * Records in buf are [u32 little-endian length][key bytes]; walk them with
 * tern_kv_list_next. */
typedef struct {
  uint32_t used;  /* bytes of records in the buffer */
  uint32_t count; /* records */
  uint32_t more;  /* 1: call again with after = the last key */
} tern_kv_page_t;

static inline tern_status_t tern_kv_list(const void* prefix, size_t prefix_len,
                                         const void* after, size_t after_len, void* buf,
                                         size_t cap, tern_kv_page_t* page) {
  return (tern_status_t)tern_raw_kv_list((const uint8_t*)prefix, (uint32_t)prefix_len,
                                         (const uint8_t*)after, (uint32_t)after_len,
                                         (uint8_t*)buf, (uint32_t)cap, (uint32_t*)page);
}

/* Iterates the records of a page: *pos starts at 0; returns 0 at the end. */
static inline int tern_kv_list_next(const void* buf, const tern_kv_page_t* page, uint32_t* pos,
                                    const char** key, uint32_t* key_len) {
  if (*pos + 4 > page->used) return 0;
  uint32_t n;
  memcpy(&n, (const char*)buf + *pos, 4);
  *key = (const char*)buf + *pos + 4;
  *key_len = n;
  *pos += 4 + n;
  return 1;
}

static inline tern_status_t tern_publish(const char* topic, const void* payload, size_t len) {
  return (tern_status_t)tern_raw_publish((const uint8_t*)topic, (uint32_t)strlen(topic),
                                         (const uint8_t*)payload, (uint32_t)len);
}

/* Appends an update to the stream topic `topic` (1 to 64 of A-Z, a-z, 0-9, '_', '-'):
 * devices following the topic receive it. The payload must be UTF-8 (JSON or text).
 * On TERN_OK *seq (when not NULL) is the update's sequence number in the topic. Needs the
 * capability "stream:TOPIC" or "stream:*". (Host API version 2.) */
static inline tern_status_t tern_stream_publish(const char* topic, const void* payload, size_t len,
                                                uint64_t* seq) {
  uint64_t n = 0;
  tern_status_t s = (tern_status_t)tern_raw_stream_publish(
      (const uint8_t*)topic, (uint32_t)strlen(topic), (const uint8_t*)payload, (uint32_t)len, &n);
  if (s == TERN_OK && seq) *seq = n;
  return s;
}

/* Invokes another function on this node with `input` as its stdin; its stdout lands in a
 * malloc'ed buffer (NUL-terminated; *len excludes the NUL) that the caller frees. The
 * callee runs once: a large output is fetched with last_output, not by running it again.
 * On TERN_FAILED the callee's output is still returned. */
static inline tern_status_t tern_invoke(const char* function, const void* input,
                                        size_t input_len, char** out, size_t* len) {
  uint32_t cap = 4096, n = 0;
  *out = NULL;
  char* buf = (char*)malloc(cap + 1);
  if (!buf) return TERN_TOO_LARGE;
  tern_status_t s = (tern_status_t)tern_raw_invoke(
      (const uint8_t*)function, (uint32_t)strlen(function), (const uint8_t*)input,
      (uint32_t)input_len, (uint8_t*)buf, cap, &n);
  if (s == TERN_BUFFER_TOO_SMALL || s == TERN_FAILED) {
    /* The output is kept by the host: fetch it without running the callee again. */
    free(buf);
    buf = (char*)malloc((size_t)n + 1);
    if (!buf) return TERN_TOO_LARGE;
    uint32_t got = 0;
    if (tern_raw_last_output((uint8_t*)buf, n, &got) != TERN_OK) got = 0;
    n = got;
    if (s == TERN_BUFFER_TOO_SMALL) s = TERN_OK;
  } else if (s != TERN_OK) {
    free(buf);
    return s;
  }
  buf[n] = '\0';
  *out = buf;
  if (len) *len = n;
  return s;
}

#ifdef __cplusplus
}
#endif

#endif /* TERN_GUEST_H_ */
