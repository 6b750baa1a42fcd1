/* {{name}}: a tern function. It reads its input as its trigger delivers it (the request
 * body or the MQTT payload on stdin; TERN_TRIGGER, MQTT_TOPIC and TERN_SCHEDULED_AT in
 * the environment), counts its calls in the node's key-value store, logs a line and
 * answers on stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "greeting.h"
#include "tern.h"

/* Reads stdin up to cap bytes; the rest is ignored. */
static size_t readInput(char* buf, size_t cap) {
  size_t len = 0;
  ssize_t n;
  while (len < cap && (n = read(0, buf + len, cap - len)) > 0) len += (size_t)n;
  return len;
}

/* Adds one to the counter under "calls" and returns its new value, 0 on failure. */
static long countCall(void) {
  char value[24];
  size_t len = 0;
  long count = 0;
  tern_status_t s = tern_kv_get_into("calls", 5, value, sizeof value - 1, &len);
  if (s == TERN_OK) {
    value[len] = '\0';
    count = atol(value);
  } else if (s != TERN_NOT_FOUND) {
    tern_log(TERN_LOG_ERROR, tern_last_error());
    return 0;
  }
  ++count;
  int n = snprintf(value, sizeof value, "%ld", count);
  if (tern_kv_set("calls", 5, value, (size_t)n) != TERN_OK) {
    tern_log(TERN_LOG_ERROR, tern_last_error());
    return 0;
  }
  return count;
}

int main(void) {
  static char input[4096];
  size_t len = readInput(input, sizeof input);
  const char* trigger = getenv("TERN_TRIGGER");
  if (!trigger) trigger = "http";
  const char* origin = getenv("MQTT_TOPIC");
  if (!origin) origin = getenv("TERN_SCHEDULED_AT");
  if (!origin) origin = "";

  long count = countCall();
  if (count == 0) return 1;
  char answer[256];
  greeting(answer, sizeof answer, input, len, trigger, origin, count);
  tern_log(TERN_LOG_INFO, answer);
  if (strcmp(trigger, "http") == 0) printf("Content-Type: text/plain\r\n\r\n");
  printf("%s\n", answer);
  return 0;
}
