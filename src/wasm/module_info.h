#pragma once
// A structural reader for WebAssembly binaries: the header, types, imports, functions,
// tables, memories, globals, exports and start sections, and of the code section the local
// declarations and the nesting of blocks. It is what tern needs to know about a module
// before compiling it (import policy, memory declarations, export signatures, whether the
// module is within the limits a compile may take on); the full validation of code bodies is
// wasm2c's. Every read is bounds-checked: a truncated or garbage file produces an error
// naming the section and byte offset.

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

// Bounds on what a module may declare, checked while it is read, before any compiler
// starts. Each bounds the time and memory that translating and compiling a module takes:
// wasm2c turns every wasm local into a C local and every function into a C function (the C
// compiler's memory grows with both), and it recurses once per nested block. The defaults
// are far above what compilers emit for real programs and are documented in
// docs/security-model.md ("Compiling untrusted modules").
struct ModuleLimits {
  uint32_t functions = 30000;          // functions, imported ones included
  uint32_t localsPerFunction = 50000;  // locals a function declares, parameters not included
  uint32_t blockNesting = 5000;        // block, loop, if and try inside one another
};

// Reads the module's structure. Errors are ErrorCode::kInvalidModule with a message such as
// "truncated import section at offset 0x1f", or one naming the limit a module exceeds.
Result<ModuleInfo> readModuleInfo(std::span<const uint8_t> bytes,
                                  const ModuleLimits& limits = {});

}  // namespace tern::wasm
