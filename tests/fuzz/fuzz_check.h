#pragma once
// The invariant check of the fuzz targets: on failure it names the file, line and condition
// and aborts, so libFuzzer saves the input and the corpus replay (ctest) fails.

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                                   \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      std::fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                        \
    }                                                                                      \
  } while (0)
