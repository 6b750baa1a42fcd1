// Exercises every call of the tern host API. The request (stdin) is one command:
//
//   version                 host_api_version()
//   set KEY VALUE           kv_set            get KEY      kv_get
//   del KEY                 kv_delete         list PREFIX [AFTER]   kv_list (all pages)
//   big N                   kv_set of N bytes under "big"
//   publish TOPIC PAYLOAD   publish
//   stream TOPIC PAYLOAD    stream_publish; prints the update's sequence number
//   stream-binary TOPIC     stream_publish of bytes that are not UTF-8
//   invoke NAME [INPUT]     invoke; prints the callee's output
//   forward                 invokes $NEXT with this request (a chain); "leaf" without NEXT
//   caller                  prints $TERN_CALLER ("-" when not invoked by a function)
//   log LEVEL MESSAGE       log
//   bad-pointers            every call with a pointer range outside linear memory
//
// Answers "ok", the result, or "STATUS: last_error" on stdout; always exits 0.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tern.h>

static char request[1 << 16];

static int fail(tern_status_t s) {
  printf("%s: %s\n", tern_status_name(s), tern_last_error());
  return 0;
}

static char* word(char** rest) {
  char* s = *rest;
  while (*s == ' ') ++s;
  if (!*s) return NULL;
  char* end = strchr(s, ' ');
  if (end) {
    *end = '\0';
    *rest = end + 1;
  } else {
    *rest = s + strlen(s);
  }
  return s;
}

static int list(const char* prefix, const char* after) {
  static char buf[256];  // small on purpose: several pages
  static char last[600];
  size_t last_len = after ? strlen(after) : 0;
  if (after) memcpy(last, after, last_len);
  for (;;) {
    tern_kv_page_t page;
    tern_status_t s =
        tern_kv_list(prefix, strlen(prefix), last, last_len, buf, sizeof buf, &page);
    if (s != TERN_OK) return fail(s);
    uint32_t pos = 0, n;
    const char* key;
    while (tern_kv_list_next(buf, &page, &pos, &key, &n)) {
      printf("%.*s\n", (int)n, key);
      memcpy(last, key, n);
      last_len = n;
    }
    if (!page.more) return 0;
  }
}

static int badPointers(void) {
  // Far beyond the end of a small linear memory; lengths that would wrap in 32 bits.
  uint8_t* far = (uint8_t*)(uintptr_t)0xFFFFFF00u;
  uint32_t len = 0;
  uint64_t seq = 0;
  uint8_t ok[8] = "k";
  tern_kv_page_t page;
  uint32_t statuses[] = {
      tern_raw_kv_set(far, 0x200, ok, 1),
      tern_raw_kv_set(ok, 1, far, 0x200),
      tern_raw_kv_get(ok, 1, far, 0x1000, &len),
      tern_raw_kv_get(ok, 1, ok, sizeof ok, (uint32_t*)far),
      tern_raw_kv_delete(far, 0x200),
      tern_raw_kv_list(far, 0x200, ok, 0, ok, sizeof ok, (uint32_t*)&page),
      tern_raw_kv_list(ok, 0, ok, 0, ok, sizeof ok, (uint32_t*)far),
      tern_raw_publish(far, 0x200, ok, 1),
      tern_raw_stream_publish(far, 0x200, ok, 1, &seq),
      tern_raw_stream_publish(ok, 1, ok, 1, (uint64_t*)far),
      tern_raw_invoke(far, 0x200, ok, 0, ok, sizeof ok, &len),
      tern_raw_invoke(ok, 1, ok, 0, far, 0x1000, &len),
      tern_raw_last_output(far, 0x1000, &len),
      tern_raw_log(TERN_LOG_INFO, far, 0x200),
  };
  for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; ++i) {
    printf("%s ", tern_status_name((tern_status_t)statuses[i]));
  }
  printf("\nlast_error(bad buffer)=%d\n", (int)tern_raw_last_error(far, 0x1000));
  printf("%s\n", tern_last_error());
  return 0;
}

int main(void) {
  size_t n = fread(request, 1, sizeof request - 1, stdin);
  request[n] = '\0';
  while (n > 0 && (request[n - 1] == '\n' || request[n - 1] == '\r')) request[--n] = '\0';
  char* rest = request;
  char* cmd = word(&rest);
  if (!cmd) {
    printf("no command\n");
    return 0;
  }
  tern_status_t s;
  if (strcmp(cmd, "version") == 0) {
    printf("%u\n", tern_raw_host_api_version());
  } else if (strcmp(cmd, "set") == 0) {
    char* key = word(&rest);
    if (!key) return printf("usage: set KEY VALUE\n"), 0;
    s = tern_kv_set(key, strlen(key), rest, strlen(rest));
    if (s != TERN_OK) return fail(s);
    printf("ok\n");
  } else if (strcmp(cmd, "get") == 0) {
    char* key = word(&rest);
    if (!key) return printf("usage: get KEY\n"), 0;
    char* value;
    size_t len;
    s = tern_kv_get(key, strlen(key), &value, &len);
    if (s != TERN_OK) return fail(s);
    fwrite(value, 1, len, stdout);
    printf("\n");
    free(value);
  } else if (strcmp(cmd, "del") == 0) {
    char* key = word(&rest);
    if (!key) return printf("usage: del KEY\n"), 0;
    s = tern_kv_delete(key, strlen(key));
    if (s != TERN_OK) return fail(s);
    printf("ok\n");
  } else if (strcmp(cmd, "list") == 0) {
    char* prefix = word(&rest);
    char* after = word(&rest);
    return list(prefix ? prefix : "", after);
  } else if (strcmp(cmd, "big") == 0) {
    char* count = word(&rest);
    size_t size = count ? (size_t)strtoul(count, NULL, 10) : 0;
    char* value = malloc(size ? size : 1);
    memset(value, 'x', size);
    s = tern_kv_set("big", 3, value, size);
    free(value);
    if (s != TERN_OK) return fail(s);
    printf("ok\n");
  } else if (strcmp(cmd, "publish") == 0) {
    char* topic = word(&rest);
    if (!topic) return printf("usage: publish TOPIC PAYLOAD\n"), 0;
    s = tern_publish(topic, rest, strlen(rest));
    if (s != TERN_OK) return fail(s);
    printf("ok\n");
  } else if (strcmp(cmd, "stream") == 0) {
    char* topic = word(&rest);
    if (!topic) return printf("usage: stream TOPIC PAYLOAD\n"), 0;
    uint64_t seq = 0;
    s = tern_stream_publish(topic, rest, strlen(rest), &seq);
    if (s != TERN_OK) return fail(s);
    printf("%llu\n", (unsigned long long)seq);
  } else if (strcmp(cmd, "stream-binary") == 0) {
    char* topic = word(&rest);
    if (!topic) return printf("usage: stream-binary TOPIC\n"), 0;
    s = tern_stream_publish(topic, "\xff\xfe", 2, NULL);
    if (s != TERN_OK) return fail(s);
    printf("ok\n");
  } else if (strcmp(cmd, "invoke") == 0) {
    char* name = word(&rest);
    if (!name) return printf("usage: invoke NAME [INPUT]\n"), 0;
    char* out;
    size_t len;
    s = tern_invoke(name, rest, strlen(rest), &out, &len);
    if (s != TERN_OK) return fail(s);
    fwrite(out, 1, len, stdout);
    free(out);
  } else if (strcmp(cmd, "forward") == 0) {
    const char* next = getenv("NEXT");
    const char* me = getenv("ME");
    if (!next) {
      printf("leaf\n");
      return 0;
    }
    char* out;
    size_t len;
    s = tern_invoke(next, "forward", 7, &out, &len);
    if (s != TERN_OK) return fail(s);
    printf("%s(", me ? me : "?");
    fwrite(out, 1, len && out[len - 1] == '\n' ? len - 1 : len, stdout);
    printf(")\n");
    free(out);
  } else if (strcmp(cmd, "caller") == 0) {
    const char* caller = getenv("TERN_CALLER");
    printf("%s\n", caller ? caller : "-");
  } else if (strcmp(cmd, "log") == 0) {
    char* level = word(&rest);
    if (!level) return printf("usage: log LEVEL MESSAGE\n"), 0;
    s = tern_log((tern_log_level_t)atoi(level), rest);
    if (s != TERN_OK) return fail(s);
    printf("ok\n");
  } else if (strcmp(cmd, "bad-pointers") == 0) {
    return badPointers();
  } else {
    printf("unknown command %s\n", cmd);
  }
  return 0;
}
