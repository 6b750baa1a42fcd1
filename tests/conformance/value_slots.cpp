#include "value_slots.h"

#include <wasm-rt.h>

#include <cstring>

namespace tern::conformance {

namespace {

constexpr uint32_t kF32Exponent = 0x7f800000u;
constexpr uint32_t kF32Quiet = 0x00400000u;
constexpr uint32_t kF32Abs = 0x7fffffffu;
constexpr uint64_t kF64Exponent = 0x7ff0000000000000ull;
constexpr uint64_t kF64Quiet = 0x0008000000000000ull;
constexpr uint64_t kF64Abs = 0x7fffffffffffffffull;

bool matchesNan(ValType type, NanPattern pattern, uint64_t bits) {
  if (type == ValType::kF32) {
    auto b = static_cast<uint32_t>(bits);
    // Canonical: only the quiet bit of the payload set; arithmetic: the quiet bit set.
    return pattern == NanPattern::kCanonical
               ? (b & kF32Abs) == (kF32Exponent | kF32Quiet)
               : (b & (kF32Exponent | kF32Quiet)) == (kF32Exponent | kF32Quiet);
  }
  if (type == ValType::kF64) {
    return pattern == NanPattern::kCanonical
               ? (bits & kF64Abs) == (kF64Exponent | kF64Quiet)
               : (bits & (kF64Exponent | kF64Quiet)) == (kF64Exponent | kF64Quiet);
  }
  return false;
}

uint64_t widthMask(ValType type) {
  return type == ValType::kI32 || type == ValType::kF32 ? 0xffffffffull : ~0ull;
}

}  // namespace

uint64_t toSlot(const Value& v) {
  switch (v.type) {
    case ValType::kFuncRef: return 0;  // only null function references can be written in a script
    case ValType::kExternRef: return v.isNull ? 0 : v.bits + 1;
    default: return v.bits & widthMask(v.type);
  }
}

Value fromSlot(ValType type, uint64_t slot) {
  Value v;
  v.type = type;
  switch (type) {
    case ValType::kFuncRef: v.isNull = slot == 0; break;
    case ValType::kExternRef:
      v.isNull = slot == 0;
      v.bits = slot == 0 ? 0 : slot - 1;
      break;
    default: v.bits = slot & widthMask(type); break;
  }
  return v;
}

Value readGlobal(ValType type, const void* storage) {
  switch (type) {
    case ValType::kI32:
    case ValType::kF32: {
      uint32_t bits;
      std::memcpy(&bits, storage, sizeof bits);
      return fromSlot(type, bits);
    }
    case ValType::kI64:
    case ValType::kF64: {
      uint64_t bits;
      std::memcpy(&bits, storage, sizeof bits);
      return fromSlot(type, bits);
    }
    case ValType::kFuncRef: {
      wasm_rt_funcref_t ref;
      std::memcpy(&ref, storage, sizeof ref);
      return fromSlot(type, reinterpret_cast<uintptr_t>(ref.func));
    }
    case ValType::kExternRef: {
      wasm_rt_externref_t ref;
      std::memcpy(&ref, storage, sizeof ref);
      return fromSlot(type, reinterpret_cast<uintptr_t>(ref));
    }
    case ValType::kV128: break;
  }
  Value v;
  v.type = type;
  return v;
}

bool matches(const Value& expected, const Value& actual) {
  if (expected.type != actual.type) return false;
  if (expected.typeOnly) return true;
  if (expected.nan != NanPattern::kNone)
    return matchesNan(expected.type, expected.nan, actual.bits);
  switch (expected.type) {
    case ValType::kFuncRef: return expected.isNull == actual.isNull;
    case ValType::kExternRef:
      return expected.isNull ? actual.isNull : !actual.isNull && expected.bits == actual.bits;
    default: return (expected.bits & widthMask(expected.type)) == actual.bits;
  }
}

bool typeFromLetter(char letter, ValType& type) {
  switch (letter) {
    case 'i': type = ValType::kI32; return true;
    case 'I': type = ValType::kI64; return true;
    case 'f': type = ValType::kF32; return true;
    case 'F': type = ValType::kF64; return true;
    case 'r': type = ValType::kFuncRef; return true;
    case 'e': type = ValType::kExternRef; return true;
    default: return false;
  }
}

}  // namespace tern::conformance
