#include "script.h"

#include <fmt/format.h>

#include <bit>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace tern::conformance {

namespace {

using nlohmann::json;

CommandKind parseCommandKind(const std::string& type) {
  static const std::pair<const char*, CommandKind> kKinds[] = {
      {"module", CommandKind::kModule},
      {"register", CommandKind::kRegister},
      {"action", CommandKind::kAction},
      {"assert_return", CommandKind::kAssertReturn},
      {"assert_trap", CommandKind::kAssertTrap},
      {"assert_exhaustion", CommandKind::kAssertExhaustion},
      {"assert_invalid", CommandKind::kAssertInvalid},
      {"assert_malformed", CommandKind::kAssertMalformed},
      {"assert_unlinkable", CommandKind::kAssertUnlinkable},
      {"assert_uninstantiable", CommandKind::kAssertUninstantiable},
  };
  for (const auto& [name, kind] : kKinds) {
    if (type == name) return kind;
  }
  throw std::runtime_error("unknown command type \"" + type + "\"");
}

// A value as wast2json writes it: {"type": "i32", "value": "4294967295"}. Returns nullopt for
// v128, which the harness does not run.
std::optional<Value> parseValue(const json& j) {
  const std::string type = j.at("type").get<std::string>();
  Value v;
  if (type == "i32") {
    v.type = ValType::kI32;
  } else if (type == "i64") {
    v.type = ValType::kI64;
  } else if (type == "f32") {
    v.type = ValType::kF32;
  } else if (type == "f64") {
    v.type = ValType::kF64;
  } else if (type == "funcref") {
    v.type = ValType::kFuncRef;
  } else if (type == "externref") {
    v.type = ValType::kExternRef;
  } else if (type == "v128") {
    return std::nullopt;
  } else {
    throw std::runtime_error("unknown value type \"" + type + "\"");
  }

  if (!j.contains("value")) {
    v.typeOnly = true;
    return v;
  }
  const std::string text = j.at("value").get<std::string>();
  if (text == "null") {
    if (v.type != ValType::kFuncRef && v.type != ValType::kExternRef) {
      throw std::runtime_error("null value of type " + type);
    }
    v.isNull = true;
  } else if (text == "nan:canonical") {
    v.nan = NanPattern::kCanonical;
  } else if (text == "nan:arithmetic") {
    v.nan = NanPattern::kArithmetic;
  } else {
    size_t used = 0;
    v.bits = std::stoull(text, &used, 10);
    if (used != text.size()) throw std::runtime_error("bad number \"" + text + "\"");
  }
  return v;
}

// Parses a list of values; `unsupported` is set if any of them is a v128.
std::vector<Value> parseValues(const json& list, bool& unsupported) {
  std::vector<Value> out;
  for (const auto& j : list) {
    if (auto v = parseValue(j)) {
      out.push_back(*v);
    } else {
      unsupported = true;
    }
  }
  return out;
}

Action parseAction(const json& j, bool& unsupported) {
  Action a;
  const std::string type = j.at("type").get<std::string>();
  if (type == "invoke") {
    a.kind = ActionKind::kInvoke;
  } else if (type == "get") {
    a.kind = ActionKind::kGet;
  } else {
    throw std::runtime_error("unknown action type \"" + type + "\"");
  }
  if (j.contains("module")) a.module = j.at("module").get<std::string>();
  a.field = j.at("field").get<std::string>();
  if (j.contains("args")) a.args = parseValues(j.at("args"), unsupported);
  return a;
}

}  // namespace

const char* commandKindName(CommandKind kind) {
  switch (kind) {
    case CommandKind::kModule: return "module";
    case CommandKind::kRegister: return "register";
    case CommandKind::kAction: return "action";
    case CommandKind::kAssertReturn: return "assert_return";
    case CommandKind::kAssertTrap: return "assert_trap";
    case CommandKind::kAssertExhaustion: return "assert_exhaustion";
    case CommandKind::kAssertInvalid: return "assert_invalid";
    case CommandKind::kAssertMalformed: return "assert_malformed";
    case CommandKind::kAssertUnlinkable: return "assert_unlinkable";
    case CommandKind::kAssertUninstantiable: return "assert_uninstantiable";
  }
  return "?";
}

Script readScript(const std::filesystem::path& jsonFile) {
  std::ifstream in(jsonFile);
  if (!in) throw std::runtime_error("cannot read " + jsonFile.string());
  const json doc = json::parse(in);
  const std::filesystem::path dir = jsonFile.parent_path();

  Script script;
  script.sourceFile = doc.at("source_filename").get<std::string>();
  for (const auto& j : doc.at("commands")) {
    Command c;
    c.kind = parseCommandKind(j.at("type").get<std::string>());
    c.line = j.at("line").get<int>();
    if (j.contains("name")) c.name = j.at("name").get<std::string>();
    if (j.contains("as")) c.registerAs = j.at("as").get<std::string>();
    if (j.contains("filename")) c.moduleFile = dir / j.at("filename").get<std::string>();
    if (j.contains("module_type")) {
      c.format = j.at("module_type").get<std::string>() == "text" ? ModuleFormat::kText
                                                                  : ModuleFormat::kBinary;
    }
    if (j.contains("action")) c.action = parseAction(j.at("action"), c.hasUnsupportedValue);
    if (j.contains("expected")) c.expected = parseValues(j.at("expected"), c.hasUnsupportedValue);
    if (j.contains("text")) c.text = j.at("text").get<std::string>();
    script.commands.push_back(std::move(c));
  }
  return script;
}

std::string describeValue(const Value& v) {
  const char* type = wasm::valTypeName(v.type);
  if (v.typeOnly) return type;
  if (v.nan == NanPattern::kCanonical) return fmt::format("{}:nan:canonical", type);
  if (v.nan == NanPattern::kArithmetic) return fmt::format("{}:nan:arithmetic", type);
  switch (v.type) {
    case ValType::kI32:
      return fmt::format("i32:{} (0x{:08x})", static_cast<int32_t>(v.bits), v.bits);
    case ValType::kI64:
      return fmt::format("i64:{} (0x{:016x})", static_cast<int64_t>(v.bits), v.bits);
    case ValType::kF32:
      return fmt::format("f32:{} (0x{:08x})", std::bit_cast<float>(static_cast<uint32_t>(v.bits)),
                         v.bits);
    case ValType::kF64:
      return fmt::format("f64:{} (0x{:016x})", std::bit_cast<double>(v.bits), v.bits);
    case ValType::kFuncRef: return v.isNull ? "funcref:null" : "funcref:<function>";
    case ValType::kExternRef:
      return v.isNull ? "externref:null" : fmt::format("externref:{}", v.bits);
    case ValType::kV128: return "v128";
  }
  return "?";
}

}  // namespace tern::conformance
