#include "greeting.h"

#include <ctype.h>
#include <stdio.h>

/* Names longer than this are cut. */
#define MAX_NAME 64

int greeting(char* out, size_t cap, const char* input, size_t len, const char* trigger,
             const char* origin, long count) {
  size_t begin = 0, end = len;
  while (begin < end && isspace((unsigned char)input[begin])) ++begin;
  while (end > begin && isspace((unsigned char)input[end - 1])) --end;
  if (end - begin > MAX_NAME) end = begin + MAX_NAME;
  const char* who = end > begin ? input + begin : "world";
  int whoLen = end > begin ? (int)(end - begin) : 5;
  const char* joiner = origin[0] == '\0' ? "" : (trigger[0] == 'm' ? " on " : " at ");
  return snprintf(out, cap, "Hello, %.*s! This is call %ld of {{name}}, by %s%s%s.", whoLen, who,
                  count, trigger, joiner, origin);
}
