/* The logic of {{name}}, free of I/O and of the host API, so that tests/greeting_test.c
 * checks it natively and tern runs the same code in the function. */
#ifndef GREETING_H_
#define GREETING_H_

#include <stddef.h>

/* Writes the answer to one call into out (at most cap bytes, NUL-terminated) and returns
 * the answer's length, as snprintf does. `input` is the request body or the MQTT payload
 * (len bytes, possibly empty), `trigger` how the call came ("http", "mqtt", "cron"),
 * `origin` the MQTT topic or the scheduled time ("" for none) and `count` the call's
 * number. */
int greeting(char* out, size_t cap, const char* input, size_t len, const char* trigger,
             const char* origin, long count);

#endif
