#include "linker.h"

#include <fmt/format.h>

namespace tern::conformance {

using wasm::ExternKind;

// The resolved imports of one instance, by import index; the engine's glue calls these.
class ImportBindings final : public wasm::ForeignImports {
 public:
  struct Binding {
    wasm::Instance* exporter = nullptr;       // functions: the instance to call
    const tern_export_t* function = nullptr;  // functions: its export
    void* address = nullptr;                  // memories, tables, globals: the object
  };

  explicit ImportBindings(size_t importCount) : bindings_(importCount) {}

  Binding& at(uint32_t importIndex) { return bindings_[importIndex]; }

  // Runs on the guest's stack, between wasm frames: a trap in the callee is re-raised in
  // the caller with trapNow, which leaves this frame with longjmp. Nothing here has a
  // destructor.
  void call(uint32_t importIndex, const uint64_t* args, uint64_t* results) override {
    const Binding& b = bindings_[importIndex];
    const int trap = b.exporter->call(*b.function, args, results);
    if (trap != wasm::kTrapNone) wasm::trapNow(trap);
  }

  void* address(uint32_t importIndex) override { return bindings_[importIndex].address; }

 private:
  std::vector<Binding> bindings_;
};

LinkedInstance::LinkedInstance(std::unique_ptr<ImportBindings> bindings,
                               std::unique_ptr<wasm::Instance> instance)
    : bindings_(std::move(bindings)), instance_(std::move(instance)) {}

LinkedInstance::~LinkedInstance() = default;

namespace {

// The current size of a shared memory (pages) or table (elements).
uint64_t currentSize(ExternKind kind, const void* object) {
  if (kind == ExternKind::kMemory) return static_cast<const wasm_rt_memory_t*>(object)->pages;
  // Funcref and externref tables share the layout {data, max_size, size}.
  return static_cast<const wasm_rt_funcref_table_t*>(object)->size;
}

// Limits matching: the actual size is at least the import's minimum, and if the import has
// a maximum, the object has one no larger.
bool limitsMatch(uint64_t actualSize, const wasm::Limits& actual, const wasm::Limits& wanted) {
  if (actualSize < wanted.initial) return false;
  if (!wanted.maximum) return true;
  return actual.maximum && *actual.maximum <= *wanted.maximum;
}

// The trap named by Engine::instantiate's error message (it carries trapName(code)).
int trapFromMessage(const std::string& message) {
  for (int code : {wasm::kTrapOobExplicit, wasm::kTrapIntOverflow, wasm::kTrapDivByZero,
                   wasm::kTrapInvalidConversion, wasm::kTrapUnreachable, wasm::kTrapCallIndirect,
                   wasm::kTrapUncaughtException, wasm::kTrapExhaustion, wasm::kTrapOobMemory,
                   wasm::kTrapTimeout, wasm::kTrapMemoryLimit, wasm::kTrapPoolExhausted,
                   wasm::kTrapTableLimit}) {
    if (message == wasm::trapName(code)) return code;
  }
  return wasm::kTrapNone;
}

}  // namespace

Linker::Linker(wasm::Engine& engine, LinkerOptions options) : engine_(engine), options_(options) {}

Linker::~Linker() {
  while (!instances_.empty()) instances_.pop_back();
}

void Linker::registerAs(const std::string& moduleName, LinkedInstance* instance) {
  registered_[moduleName] = instance;
}

bool Linker::resolve(const wasm::ModuleInfo& importer, uint32_t importIndex,
                     ImportBindings& bindings, std::string& error) {
  const wasm::Import& import = importer.imports[importIndex];
  const std::string what = fmt::format("{}.{}", import.module, import.name);
  auto it = registered_.find(import.module);
  LinkedInstance* exporter = it == registered_.end() ? nullptr : it->second;
  const tern_export_t* exp = exporter ? exporter->module().findExport(import.name) : nullptr;
  const wasm::Export* declared = exp ? exporter->module().info().findExport(import.name) : nullptr;
  if (!declared) {
    error = "unknown import " + what;
    return false;
  }
  auto incompatible = [&](const std::string& why) {
    error = fmt::format("incompatible import type for {}: {}", what, why);
    return false;
  };
  if (declared->kind != import.kind) {
    return incompatible(fmt::format("a {} is imported, the export is a {}",
                                    wasm::externKindName(import.kind),
                                    wasm::externKindName(declared->kind)));
  }

  ImportBindings::Binding& binding = bindings.at(importIndex);
  if (import.kind == ExternKind::kFunc) {
    const std::string wanted = importer.types.at(import.typeIndex).signature();
    if (!exp->call) return incompatible("the export has no trampoline (v128 signature)");
    if (wanted != exp->signature) {
      return incompatible(
          fmt::format("signature {} is imported, the export is {}", wanted, exp->signature));
    }
    binding.exporter = &exporter->instance();
    binding.function = exp;
    return true;
  }

  void* object = exporter->instance().exportAddress(*exp);
  auto known = objectTypes_.find(object);
  if (!object || known == objectTypes_.end()) {
    return incompatible("the exported object is unknown to the linker");
  }
  const ObjectType& actual = known->second;
  switch (import.kind) {
    case ExternKind::kMemory:
      if (!limitsMatch(currentSize(ExternKind::kMemory, object), actual.limits, import.memory)) {
        return incompatible("memory limits do not match");
      }
      break;
    case ExternKind::kTable:
      if (import.table.elemType != actual.type) {
        return incompatible(fmt::format("a table of {} is imported, the export holds {}",
                                        wasm::valTypeName(import.table.elemType),
                                        wasm::valTypeName(actual.type)));
      }
      if (!limitsMatch(currentSize(ExternKind::kTable, object), actual.limits,
                       import.table.limits)) {
        return incompatible("table limits do not match");
      }
      break;
    case ExternKind::kGlobal:
      if (import.global.type != actual.type || import.global.mutable_ != actual.mutable_) {
        return incompatible(fmt::format(
            "a {} {} global is imported, the export is {} {}",
            import.global.mutable_ ? "mutable" : "immutable", wasm::valTypeName(import.global.type),
            actual.mutable_ ? "mutable" : "immutable", wasm::valTypeName(actual.type)));
      }
      break;
    case ExternKind::kFunc: break;
  }
  binding.address = object;
  return true;
}

void Linker::recordExportedObjects(LinkedInstance& instance) {
  const wasm::ModuleInfo& info = instance.module().info();
  for (const wasm::Export& e : info.exports) {
    if (e.kind == ExternKind::kFunc) continue;
    const tern_export_t* exp = instance.module().findExport(e.name);
    void* object = exp ? instance.instance().exportAddress(*exp) : nullptr;
    if (!object) continue;
    ObjectType type{e.kind, {}, wasm::ValType::kI32, false};
    if (e.kind == ExternKind::kMemory) {
      type.limits = info.memories.at(e.index);
    } else if (e.kind == ExternKind::kTable) {
      type.limits = info.tables.at(e.index).limits;
      type.type = info.tables.at(e.index).elemType;
    } else {
      type.type = info.globals.at(e.index).type;
      type.mutable_ = info.globals.at(e.index).mutable_;
    }
    // A re-exported import is already known, with the type of the module that defines it.
    objectTypes_.try_emplace(object, type);
  }
}

LinkedInstance* Linker::instantiate(std::shared_ptr<const wasm::CompiledModule> module,
                                    InstantiateFailure& failure) {
  const wasm::ModuleInfo& info = module->info();
  auto bindings = std::make_unique<ImportBindings>(info.imports.size());
  for (uint32_t i = 0; i < info.imports.size(); ++i) {
    std::string error;
    if (!resolve(info, i, *bindings, error)) {
      failure = {FailureStage::kLink, wasm::kTrapNone, std::move(error)};
      return nullptr;
    }
  }
  wasm::Engine::InstantiateOptions options;
  options.limits = options_.limits;
  options.foreign = bindings.get();
  options.timeout = options_.timeout;
  auto instance = engine_.instantiate(std::move(module), options);
  if (!instance.ok()) {
    failure = {FailureStage::kInstantiate, trapFromMessage(instance.error().message()),
               instance.error().describe()};
    return nullptr;
  }
  instances_.push_back(
      std::make_unique<LinkedInstance>(std::move(bindings), std::move(instance).value()));
  recordExportedObjects(*instances_.back());
  return instances_.back().get();
}

}  // namespace tern::conformance
