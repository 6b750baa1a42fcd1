#pragma once
// A structural reader for WebAssembly binaries: the header, types, imports, functions,
// tables, memories, globals, exports and start sections. It is what tern needs to know
// about a module before compiling it (import policy, memory declarations, export
// signatures); the full validation of code bodies is wasm2c's. Every read is bounds-checked:
// a truncated or garbage file produces an error naming the section and byte offset.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "util/error.h"

namespace tern::wasm {

// Value types, written as one letter each in signatures: i32 'i', i64 'I', f32 'f',
// f64 'F', v128 'v', funcref 'r', externref 'e'.
enum class ValType : uint8_t { kI32, kI64, kF32, kF64, kV128, kFuncRef, kExternRef };

char valTypeLetter(ValType t);
const char* valTypeName(ValType t);

struct FuncType {
  std::vector<ValType> params;
  std::vector<ValType> results;
  // "ii:i" for (i32, i32) -> i32.
  std::string signature() const;
};

struct Limits {
  uint64_t initial = 0;
  std::optional<uint64_t> maximum;
};

enum class ExternKind : uint8_t { kFunc = 0, kTable = 1, kMemory = 2, kGlobal = 3 };

const char* externKindName(ExternKind k);

struct GlobalType {
  ValType type = ValType::kI32;
  bool mutable_ = false;
};

struct TableType {
  ValType elemType = ValType::kFuncRef;
  Limits limits;
};

struct Import {
  std::string module;
  std::string name;
  ExternKind kind = ExternKind::kFunc;
  uint32_t typeIndex = 0;  // functions
  TableType table;         // tables
  Limits memory;           // memories
  GlobalType global;       // globals
};

struct Export {
  std::string name;
  ExternKind kind = ExternKind::kFunc;
  uint32_t index = 0;
};

struct ModuleInfo {
  std::vector<FuncType> types;
  std::vector<Import> imports;
  std::vector<uint32_t> functionTypes;  // type index of every function, imports first
  std::vector<TableType> tables;        // imports first
  std::vector<Limits> memories;         // imports first
  std::vector<GlobalType> globals;      // imports first
  std::vector<Export> exports;
  std::optional<uint32_t> start;

  const FuncType* functionType(uint32_t funcIndex) const;
  const Export* findExport(std::string_view name) const;
};

// Reads the module's structure. Errors are ErrorCode::kInvalidModule with a message such as
// "truncated import section at offset 0x1f".
Result<ModuleInfo> readModuleInfo(std::span<const uint8_t> bytes);

}  // namespace tern::wasm
