/* crc32: table-driven CRC-32 (IEEE, reflected) of a scale KiB pseudo-random
 * buffer. Measures byte loads and table lookups. */
#include <stdlib.h>

#include "kernels.h"

uint64_t kernel_crc32(uint32_t scale) {
  uint32_t table[256];
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int j = 0; j < 8; j++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  size_t len = (size_t)scale * 1024;
  unsigned char *buf = malloc(len ? len : 1);
  if (!buf) return 0;
  uint32_t state = 54321;
  for (size_t i = 0; i < len; i++) buf[i] = (unsigned char)(kernel_lcg(&state) >> 24);
  uint32_t crc = 0xffffffffu;
  for (size_t i = 0; i < len; i++) crc = table[(crc ^ buf[i]) & 0xff] ^ (crc >> 8);
  free(buf);
  return crc ^ 0xffffffffu;
}
