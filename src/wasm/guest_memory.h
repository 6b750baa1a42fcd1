#pragma once
// A bounds-checked view of a sandbox's memory 0, for host functions (WASI, the tern host
// API). Every check uses 64-bit arithmetic, so a pointer plus a length never wraps around.

#include <cstdint>
#include <cstring>
#include <string_view>

#include "wasm/runtime.h"

namespace tern::wasm {

class GuestMemory {
 public:
  explicit GuestMemory(const Sandbox& sb)
      : data_(sb.memory ? sb.memory->data : nullptr),
        size_(sb.memory ? uint64_t{sb.memory->size} : 0) {}

  bool contains(uint32_t ptr, uint64_t len) const {
    return data_ && uint64_t{ptr} + len <= size_;
  }
  uint8_t* at(uint32_t ptr) const { return data_ + ptr; }
  uint64_t size() const { return size_; }

  // The bytes [ptr, ptr + len); call only after contains(ptr, len).
  std::string_view view(uint32_t ptr, uint32_t len) const {
    return {reinterpret_cast<const char*>(data_ + ptr), len};
  }

  template <typename T>
  bool load(uint32_t ptr, T& out) const {
    if (!contains(ptr, sizeof(T))) return false;
    memcpy(&out, data_ + ptr, sizeof(T));
    return true;
  }
  template <typename T>
  bool store(uint32_t ptr, T value) const {
    if (!contains(ptr, sizeof(T))) return false;
    memcpy(data_ + ptr, &value, sizeof(T));
    return true;
  }

 private:
  uint8_t* data_;
  uint64_t size_;
};

}  // namespace tern::wasm
