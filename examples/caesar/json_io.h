/* A few JSON helpers for the Caesar example functions (wasi-libc, no JSON library): read the
 * request from stdin, find a top-level field, write escaped strings. Enough for the flat
 * objects of an AFCL task's input; not a general JSON parser. */
#ifndef CAESAR_JSON_IO_H
#define CAESAR_JSON_IO_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The whole of stdin, NUL-terminated; NULL when it cannot be read. */
static char *read_input(size_t *len) {
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (!buf) return NULL;
    if (n + 1 >= cap) buf = realloc(buf, cap *= 2);
    if (!buf) return NULL;
    size_t got = fread(buf + n, 1, cap - n - 1, stdin);
    n += got;
    if (got == 0) break;
  }
  buf[n] = 0;
  if (len) *len = n;
  return buf;
}

/* Where the value of "key" starts (after the colon and spaces), or NULL. */
static const char *field(const char *json, const char *key) {
  size_t klen = strlen(key);
  for (const char *p = json; (p = strchr(p, '"')) != NULL; ++p) {
    if (strncmp(p + 1, key, klen) == 0 && p[klen + 1] == '"') {
      const char *q = p + klen + 2;
      while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r') ++q;
      if (*q != ':') continue;
      ++q;
      while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r') ++q;
      return q;
    }
  }
  return NULL;
}

/* Decodes the JSON string starting at `p` (at its quote) into `out` (capacity `cap`);
 * returns the position after the closing quote, or NULL. \uXXXX below 0x80 is decoded,
 * others become '?'. */
static const char *string_at(const char *p, char *out, size_t cap) {
  if (!p || *p != '"') return NULL;
  size_t n = 0;
  for (++p; *p && *p != '"'; ++p) {
    char c = *p;
    if (c == '\\') {
      ++p;
      switch (*p) {
        case 'n': c = '\n'; break;
        case 't': c = '\t'; break;
        case 'r': c = '\r'; break;
        case 'b': c = '\b'; break;
        case 'f': c = '\f'; break;
        case 'u': {
          char hex[5] = {0};
          for (int i = 0; i < 4; ++i) {
            if (!p[1 + i]) return NULL;
            hex[i] = p[1 + i];
          }
          long v = strtol(hex, NULL, 16);
          c = v < 0x80 ? (char)v : '?';
          p += 4;
          break;
        }
        case 0: return NULL;
        default: c = *p;
      }
    }
    if (n + 1 < cap) out[n++] = c;
  }
  if (*p != '"') return NULL;
  out[n] = 0;
  return p + 1;
}

/* Writes `s` (n bytes) as a JSON string. */
static void put_string(const char *s, size_t n) {
  putchar('"');
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      putchar('\\');
      putchar(c);
    } else if (c < 0x20) {
      printf("\\u%04x", c);
    } else {
      putchar(c);
    }
  }
  putchar('"');
}

#endif
