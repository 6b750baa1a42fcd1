/* recurse: unbounded, non-tail recursion.
 *
 * By default each call keeps nothing in linear memory, so the recursion exhausts
 * the engine's call stack (tern must trap, not crash). With RECURSE_FRAME_BYTES=N
 * in the environment each call also keeps an N-byte volatile array on the C shadow
 * stack in linear memory, which overflows that stack instead (linked with
 * --stack-first, so it runs off the bottom of memory and traps out of bounds). */
#include <stdint.h>
#include <stdlib.h>

/* Never reached; volatile so the compiler cannot see that the recursion is endless. */
static volatile uint32_t limit = UINT32_MAX;
static volatile uint32_t depth;

__attribute__((noinline)) static uint32_t recurse_calls(uint32_t n) {
  depth = n;
  if (n == limit) return n;
  return recurse_calls(n + 1) * 3 + depth;
}

__attribute__((noinline)) static uint32_t recurse_frames(uint32_t n, uint32_t bytes) {
  volatile unsigned char frame[bytes];
  frame[0] = (unsigned char)n;
  frame[bytes - 1] = (unsigned char)(n >> 8);
  depth = n;
  if (n == limit) return n;
  return recurse_frames(n + 1, bytes) * 3 + frame[0] + frame[bytes - 1];
}

int main(void) {
  const char *frame_bytes = getenv("RECURSE_FRAME_BYTES");
  uint32_t bytes = frame_bytes ? (uint32_t)strtoul(frame_bytes, NULL, 10) : 0;
  uint32_t r = bytes > 0 ? recurse_frames(0, bytes) : recurse_calls(0);
  return (int)(r & 1);
}
