#pragma once
// Script values in tern's calling convention (module_abi.h: every argument and result is a
// 64-bit slot), and the comparison of actual results with expected ones.
//
// Slots hold a number's bits; a funcref slot holds the function pointer (0 for null) and
// only null can be passed in; an externref slot holds a pointer, which the harness makes
// from the script's host-reference number N as N + 1 so that `ref.extern 0` is not null.

#include <cstdint>

#include "script.h"

namespace tern::conformance {

uint64_t toSlot(const Value& v);

Value fromSlot(ValType type, uint64_t slot);

// The value of a global of type `type` stored at `storage` (as wasm2c lays it out).
Value readGlobal(ValType type, const void* storage);

// Whether `actual` is acceptable for `expected` (bits, NaN patterns, null-ness; a type-only
// expectation accepts any value of the type).
bool matches(const Value& expected, const Value& actual);

// The type a signature letter ("ii:i") stands for; false for letters the harness does not
// handle (v128).
bool typeFromLetter(char letter, ValType& type);

}  // namespace tern::conformance
