#pragma once
// Linking spec-test modules to each other, as a WebAssembly embedder does: a module's
// imports resolve, by (module, name), to the exports of instances registered under that
// module name. Each import is checked against the export's type (the spec's import
// matching rules) before the module is instantiated; a mismatch is a link error, which is
// what assert_unlinkable expects.
//
// Linked functions are called through the exporter's Instance::call; memories, tables and
// globals are shared by address (the importer's wasm2c code uses the exporter's objects).

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "wasm/engine.h"

namespace tern::conformance {

class ImportBindings;

// An instance created by the linker, with the bindings its imports call through.
class LinkedInstance {
 public:
  LinkedInstance(std::unique_ptr<ImportBindings> bindings,
                 std::unique_ptr<wasm::Instance> instance);
  ~LinkedInstance();
  LinkedInstance(const LinkedInstance&) = delete;
  LinkedInstance& operator=(const LinkedInstance&) = delete;

  wasm::Instance& instance() { return *instance_; }
  const wasm::CompiledModule& module() const { return instance_->module(); }

 private:
  // Declared first so that it outlives the instance, whose generated code points at it.
  std::unique_ptr<ImportBindings> bindings_;
  std::unique_ptr<wasm::Instance> instance_;
};

// Why an instantiation failed: at link time (an import is missing or has the wrong type) or
// while instantiating (a trap in a segment initialiser or the start function).
enum class FailureStage : uint8_t { kLink, kInstantiate };

struct InstantiateFailure {
  FailureStage stage = FailureStage::kLink;
  int trapCode = wasm::kTrapNone;  // kInstantiate: the trap, when there was one
  std::string message;             // "unknown import M.f", "incompatible import type ..."
};

struct LinkerOptions {
  wasm::SandboxLimits limits;
  std::chrono::milliseconds timeout{0};  // for the start function; 0: none
};

// The instances of one script. They live until the linker is destroyed (in reverse order
// of creation), because later modules may hold their memories, tables and functions.
class Linker {
 public:
  Linker(wasm::Engine& engine, LinkerOptions options);
  ~Linker();
  Linker(const Linker&) = delete;
  Linker& operator=(const Linker&) = delete;

  // Resolves the module's imports and instantiates it. On failure `failure` says why and
  // nullptr is returned.
  LinkedInstance* instantiate(std::shared_ptr<const wasm::CompiledModule> module,
                              InstantiateFailure& failure);

  // Makes the instance's exports importable under `moduleName`.
  void registerAs(const std::string& moduleName, LinkedInstance* instance);

 private:
  // The type of a memory, table or global object, from the module that defines it.
  struct ObjectType {
    wasm::ExternKind kind;
    wasm::Limits limits;    // memories and tables (the declared limits)
    wasm::ValType type;     // tables: the element type; globals: the value type
    bool mutable_ = false;  // globals
  };

  // Checks one import against the export it resolves to; on success fills the binding.
  bool resolve(const wasm::ModuleInfo& importer, uint32_t importIndex, ImportBindings& bindings,
               std::string& error);
  void recordExportedObjects(LinkedInstance& instance);

  wasm::Engine& engine_;
  LinkerOptions options_;
  std::map<std::string, LinkedInstance*> registered_;
  // Types of the shared objects, by address: an object re-exported by an importer keeps
  // the type of the module that defined it.
  std::map<const void*, ObjectType> objectTypes_;
  std::vector<std::unique_ptr<LinkedInstance>> instances_;
};

}  // namespace tern::conformance
