#pragma once
// A spec-test script as wast2json writes it: a JSON list of commands plus one .wasm (or
// .wat) file per module. This is the harness's model of that list; parsing it is the only
// place the harness throws (on JSON that does not have the documented shape).

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "wasm/module_info.h"

namespace tern::conformance {

using wasm::ValType;

// What an expected float result accepts besides exact bits.
enum class NanPattern : uint8_t { kNone, kCanonical, kArithmetic };

// An argument or an expected result.
//
// Numbers hold their bit pattern (i32/f32 in the low 32 bits). References are null or not;
// an externref carries the script's host-reference number. A value may give only its type
// (the result types of assert_trap).
struct Value {
  ValType type = ValType::kI32;
  uint64_t bits = 0;
  NanPattern nan = NanPattern::kNone;
  bool isNull = false;
  bool typeOnly = false;
};

enum class ActionKind : uint8_t { kInvoke, kGet };

struct Action {
  ActionKind kind = ActionKind::kInvoke;
  std::optional<std::string> module;  // a `$name` of an earlier module; nullopt: the latest
  std::string field;
  std::vector<Value> args;
};

enum class CommandKind : uint8_t {
  kModule,
  kRegister,
  kAction,
  kAssertReturn,
  kAssertTrap,
  kAssertExhaustion,
  kAssertInvalid,
  kAssertMalformed,
  kAssertUnlinkable,
  kAssertUninstantiable,
};

const char* commandKindName(CommandKind kind);

// How an assertion's module is written: a binary module, or text that wast2json could only
// copy (a module that is malformed as text).
enum class ModuleFormat : uint8_t { kBinary, kText };

struct Command {
  CommandKind kind = CommandKind::kModule;
  int line = 0;
  std::optional<std::string> name;   // module: its `$name`; register: the module registered
  std::string registerAs;            // register: the import-module name it becomes
  std::filesystem::path moduleFile;  // module and module assertions
  ModuleFormat format = ModuleFormat::kBinary;
  std::optional<Action> action;  // action, assert_return, assert_trap, assert_exhaustion
  std::vector<Value> expected;
  std::string text;                  // the failure an assertion expects, e.g. "unreachable"
  bool hasUnsupportedValue = false;  // uses v128, which tern does not support
};

struct Script {
  std::filesystem::path sourceFile;  // the .wast the script came from
  std::vector<Command> commands;
};

// Reads wast2json's output; module file names are resolved against the JSON's directory.
// Throws std::runtime_error (or nlohmann::json's exceptions) on unexpected JSON.
Script readScript(const std::filesystem::path& jsonFile);

// "i32:42", "f32:nan:canonical", "externref:null", ... for messages.
std::string describeValue(const Value& v);

}  // namespace tern::conformance
