#pragma once
// WebAssembly modules written byte by byte, for tests that need modules too large or too odd
// to write as text: 50,000,000 locals in one function, 100,000 nested blocks, 100,000
// functions.

#include <cstdint>
#include <vector>

namespace tern::test {

inline void appendUleb(std::vector<uint8_t>& out, uint64_t v) {
  do {
    uint8_t b = v & 0x7f;
    v >>= 7;
    out.push_back(v ? (b | 0x80) : b);
  } while (v);
}

// A function body: `i32Locals` locals of type i32 (one declaration), then `depth` nested
// `block`s (each empty), closed again, and the function's `end`.
inline std::vector<uint8_t> functionBody(uint64_t i32Locals, uint64_t depth = 0) {
  std::vector<uint8_t> b;
  if (i32Locals == 0) {
    b.push_back(0);
  } else {
    b.push_back(1);
    appendUleb(b, i32Locals);
    b.push_back(0x7f);
  }
  for (uint64_t i = 0; i < depth; ++i) b.insert(b.end(), {0x02, 0x40});
  b.insert(b.end(), depth + 1, 0x0b);
  return b;
}

// A module of `functions` functions of type [] -> [], each with `body`; function 0 is
// exported as `_start`.
inline std::vector<uint8_t> moduleOfFunctions(uint32_t functions,
                                              const std::vector<uint8_t>& body) {
  auto section = [](std::vector<uint8_t>& out, uint8_t id, const std::vector<uint8_t>& s) {
    out.push_back(id);
    appendUleb(out, s.size());
    out.insert(out.end(), s.begin(), s.end());
  };
  std::vector<uint8_t> m = {0x00, 'a', 's', 'm', 1, 0, 0, 0};
  section(m, 1, {1, 0x60, 0, 0});  // one type: [] -> []
  std::vector<uint8_t> funcs;
  appendUleb(funcs, functions);
  funcs.insert(funcs.end(), functions, 0);
  section(m, 3, funcs);
  section(m, 7, {1, 6, '_', 's', 't', 'a', 'r', 't', 0, 0});
  std::vector<uint8_t> code;
  appendUleb(code, functions);
  for (uint32_t i = 0; i < functions; ++i) {
    appendUleb(code, body.size());
    code.insert(code.end(), body.begin(), body.end());
  }
  section(m, 10, code);
  return m;
}

}  // namespace tern::test
