#include "wasm/engine.h"

#include <fmt/format.h>

#include <cstdlib>
#include <cstring>
#include <iterator>

#include "util/file.h"
#include "wasm/host_imports.h"

namespace tern::wasm {

namespace fs = std::filesystem;

fs::path defaultCacheDir() {
  if (const char* d = std::getenv("TERN_CACHE_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return fs::path(x) / "tern";
  if (const char* h = std::getenv("HOME"); h && *h) return fs::path(h) / ".cache" / "tern";
  return fs::temp_directory_path() / "tern-cache";
}

const char* outcomeName(Outcome o) {
  switch (o) {
    case Outcome::kOk: return "ok";
    case Outcome::kExited: return "exited";
    case Outcome::kTrap: return "trap";
    case Outcome::kTimeout: return "timeout";
    case Outcome::kMemoryLimit: return "memory_limit";
    case Outcome::kOutputLimit: return "output_limit";
    case Outcome::kResourceExhausted: return "resource_exhausted";
    case Outcome::kInvalid: return "invalid";
  }
  return "?";
}

std::optional<Error> InvocationResult::error() const {
  switch (outcome) {
    case Outcome::kOk:
    case Outcome::kExited: return std::nullopt;
    case Outcome::kTrap: return Error(ErrorCode::kTrap, detail);
    case Outcome::kTimeout: return Error(ErrorCode::kTimeout, detail);
    case Outcome::kMemoryLimit: return Error(ErrorCode::kMemoryLimit, detail);
    case Outcome::kOutputLimit: return Error(ErrorCode::kOutputLimit, detail);
    case Outcome::kResourceExhausted: return Error(ErrorCode::kResourceExhausted, detail);
    case Outcome::kInvalid: return Error(ErrorCode::kInvalidModule, detail);
  }
  return Error(ErrorCode::kInternal, detail);
}

namespace {

std::string mib(uint64_t bytes) {
  double m = static_cast<double>(bytes) / (1 << 20);
  return m == static_cast<double>(static_cast<uint64_t>(m)) ? fmt::format("{} MiB", bytes >> 20)
                                                            : fmt::format("{:.2f} MiB", m);
}

// The import instance of each of the module's import modules, into out[0..count).
void importInstances(const tern_module_t& abi, Sandbox* sandbox, tern_import_env_t* foreign,
                     void** out) {
  for (uint32_t i = 0; i < abi.import_module_count; ++i) {
    std::string_view name = abi.import_modules[i];
    out[i] = name == kWasiModule   ? static_cast<void*>(&sandbox->wasiInstance)
             : name == kTernModule ? static_cast<void*>(&sandbox->ternInstance)
                                   : static_cast<void*>(foreign);
  }
}

struct GuestEntry {
  const tern_module_t* abi;
  void* instance;
  void* const* imports;
  const tern_export_t* start;  // run after instantiation when set
};

void instantiateAndStart(void* p) {
  auto* e = static_cast<GuestEntry*>(p);
  e->abi->instantiate(e->instance, e->imports);
  if (e->start) e->start->call(e->instance, nullptr, nullptr);
}

void foreignCall(void* user, uint32_t index, const uint64_t* args, uint64_t* results) {
  static_cast<ForeignImports*>(user)->call(index, args, results);
}
void* foreignAddress(void* user, uint32_t index) {
  return static_cast<ForeignImports*>(user)->address(index);
}

}  // namespace

Engine::Engine(EngineConfig config)
    : compiler_(std::move(config.compiler)), pool_(config.maxSandboxes) {
  installSignalHandlers();
}

Engine::~Engine() = default;

Result<std::shared_ptr<const CompiledModule>> Engine::load(std::span<const uint8_t> wasm,
                                                           const CompileOptions& options) {
  return compiler_.load(wasm, options);
}

Result<std::shared_ptr<const CompiledModule>> Engine::loadFile(const fs::path& path,
                                                               const CompileOptions& options) {
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  if (ec) return Error(ErrorCode::kIo, "cannot read " + path.string() + ": " + ec.message());
  if (size > compiler_.config().maxModuleBytes) {
    return Error(ErrorCode::kModuleTooLarge,
                 fmt::format("{} is {} bytes, the limit is {} bytes", path.string(), size,
                             compiler_.config().maxModuleBytes));
  }
  auto bytes = readFile(path);
  if (!bytes.ok()) return bytes.error();
  return load(std::span(reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size()), options);
}

int Engine::runGuest(Sandbox& sandbox, void (*fn)(void*), void* arg, int64_t deadlineNs) {
  ThreadState& ts = currentThread();
  // Saved state of an enclosing guest call on this thread (none for a top-level call).
  struct Saved {
    jmp_buf jmp;
    Sandbox* sandbox;
    sig_atomic_t inWasm;
    sig_atomic_t hostDepth;
  } saved;
  memcpy(&saved.jmp, &ts.jmp, sizeof(jmp_buf));
  saved.sandbox = ts.sandbox;
  saved.inWasm = ts.inWasm;
  saved.hostDepth = ts.hostDepth;
  const bool outermost = saved.sandbox == nullptr;

  sandbox.deadlineNs = deadlineNs;
  Watchdog::Outer outer{};
  if (outermost) {
    watchdog_.begin(ts, deadlineNs);
  } else {
    outer = watchdog_.enterNested(ts, deadlineNs);
  }
  ts.sandbox = &sandbox;
  ts.hostDepth = 0;
  int code = _setjmp(ts.jmp);
  if (code == 0) {
    ts.inWasm = 1;
    fn(arg);
    ts.inWasm = 0;
  } else if (code == kTrapOobMemory || code == kTrapExhaustion || code == kTrapTimeout) {
    unblockTrapSignals();  // these may come from a signal handler
  }
  if (outermost) {
    watchdog_.end(ts);
    ts.preemptPending = 0;
  } else {
    watchdog_.leaveNested(ts, outer);
  }
  memcpy(&ts.jmp, &saved.jmp, sizeof(jmp_buf));
  ts.sandbox = saved.sandbox;
  ts.inWasm = saved.inWasm;
  ts.hostDepth = saved.hostDepth;
  return code;
}

void Engine::teardown(Sandbox& sandbox, void* instanceMemory, SlotUse use) {
  for (wasm_rt_memory_t* m : sandbox.memories) pool_.release(m->data, m->size, use);
  for (auto* t : sandbox.funcTables) recycleBlock(t->data);
  for (auto* t : sandbox.externTables) recycleBlock(t->data);
  sandbox.memories.clear();
  sandbox.funcTables.clear();
  sandbox.externTables.clear();
  sandbox.memory = nullptr;
  recycleBlock(instanceMemory);
}

InvocationResult Engine::invoke(const std::shared_ptr<const CompiledModule>& module,
                                const InvocationRequest& request) {
  InvocationResult result;
  const tern_export_t* start = module->startExport();
  if (!start || start->kind != TERN_EXTERN_FUNC || std::strcmp(start->signature, ":") != 0) {
    result.outcome = Outcome::kInvalid;
    result.detail = "module has no `_start` function export: it is not a WASI command";
    return result;
  }
  const tern_module_t& abi = module->abi();

  Sandbox sandbox;
  sandbox.pool = &pool_;
  sandbox.limits = request.limits;
  sandbox.args = &request.args;
  sandbox.env = &request.env;
  sandbox.stdinData = request.input;
  sandbox.host = request.host;
  sandbox.startNs = request.startNs ? request.startNs : monotonicNs();
  void* instance = zeroedAlloc(1, abi.instance_size);
  if (!instance) {
    result.outcome = Outcome::kResourceExhausted;
    result.detail = "out of host memory for the instance";
    return result;
  }
  // Modules import from at most a few modules (WASI, tern): no allocation for those.
  void* importsInline[4];
  std::vector<void*> importsMore;
  void** imports = importsInline;
  if (abi.import_module_count > std::size(importsInline)) {
    importsMore.resize(abi.import_module_count);
    imports = importsMore.data();
  }
  importInstances(abi, &sandbox, nullptr, imports);
  GuestEntry entry{&abi, instance, imports, start};
  int64_t deadline = request.timeout.count() > 0
                         ? sandbox.startNs + request.timeout.count() * 1000000
                         : 0;
  if (request.deadlineNs && (!deadline || request.deadlineNs < deadline)) {
    deadline = request.deadlineNs;
  }
  int code = runGuest(sandbox, instantiateAndStart, &entry, deadline);
  result.durationNs = monotonicNs() - sandbox.startNs;
  result.trapCode = code;
  result.peakMemoryBytes = sandbox.peakMemoryBytes;
  // The sandbox lived within this call on this thread.
  teardown(sandbox, instance, SlotUse::kThisThreadOnly);

  const uint64_t limitBytes = uint64_t{request.limits.memoryPages} * MemoryPool::kWasmPageSize;
  std::string limitNote;
  if (sandbox.memoryLimitHit) {
    limitNote = fmt::format("memory.grow to {} refused, the limit is {}",
                            mib(sandbox.memoryLimitWanted), mib(limitBytes));
  }
  switch (code) {
    case kTrapNone:
      break;
    case kTrapExit:
      result.exitCode = sandbox.exitCode;
      if (sandbox.exitCode != 0) {
        result.outcome = sandbox.memoryLimitHit ? Outcome::kMemoryLimit : Outcome::kExited;
        if (sandbox.memoryLimitHit) {
          result.detail = fmt::format("{} (the function then exited with code {})", limitNote,
                                      sandbox.exitCode);
        }
      }
      break;
    case kTrapTimeout:
      result.outcome = Outcome::kTimeout;
      result.detail = fmt::format("stopped after {} ms (limit {} ms)", result.durationNs / 1000000,
                                  request.timeout.count());
      break;
    case kTrapOutputLimit:
      result.outcome = Outcome::kOutputLimit;
      result.detail = fmt::format("stdout exceeded {} bytes", request.limits.stdoutBytes);
      break;
    case kTrapMemoryLimit:
      result.outcome = Outcome::kMemoryLimit;
      result.detail = fmt::format("the module needs {} of linear memory to start, the limit is {}",
                                  mib(sandbox.memoryLimitWanted), mib(limitBytes));
      break;
    case kTrapPoolExhausted:
      result.outcome = Outcome::kResourceExhausted;
      result.detail = "all linear-memory slots are in use";
      break;
    case kTrapHostFailure:
      result.outcome = Outcome::kTrap;
      result.detail = fmt::format("internal error in a host call: {}", sandbox.hostFailure);
      break;
    case kTrapTableLimit:
      result.outcome = Outcome::kResourceExhausted;
      result.detail = fmt::format("a table exceeds the limit of {} elements",
                                  request.limits.tableElements);
      break;
    default:
      if (sandbox.memoryLimitHit) {
        result.outcome = Outcome::kMemoryLimit;
        result.detail = fmt::format("{} (the function then trapped: {})", limitNote, trapName(code));
      } else {
        result.outcome = Outcome::kTrap;
        result.detail = trapName(code);
      }
      break;
  }
  result.stdoutData = std::move(sandbox.stdoutData);
  result.stderrData = std::move(sandbox.stderrData);
  result.stderrDropped = sandbox.stderrDropped;
  return result;
}

Result<std::unique_ptr<Instance>> Engine::instantiate(std::shared_ptr<const CompiledModule> module,
                                                      const InstantiateOptions& options) {
  std::unique_ptr<Instance> inst(new Instance());
  inst->engine_ = this;
  inst->module_ = std::move(module);
  inst->sandbox_ = std::make_unique<Sandbox>();
  Sandbox& sb = *inst->sandbox_;
  sb.pool = &pool_;
  sb.limits = options.limits;
  sb.startNs = monotonicNs();
  const tern_module_t& abi = inst->module_->abi();
  inst->memory_ = zeroedAlloc(1, abi.instance_size);
  if (!inst->memory_) return Error(ErrorCode::kResourceExhausted, "out of host memory");
  inst->foreignEnv_ =
      tern_import_env_t{&inst->foreignEnv_, options.foreign, foreignCall, foreignAddress};
  std::vector<void*> imports(abi.import_module_count);
  importInstances(abi, &sb, options.foreign ? &inst->foreignEnv_ : nullptr, imports.data());
  for (uint32_t i = 0; i < abi.import_module_count; ++i) {
    if (!imports[i]) {
      return Error(ErrorCode::kInvalidModule,
                   fmt::format("no provider for import module {}", abi.import_modules[i]));
    }
  }
  GuestEntry entry{&abi, inst->memory_, imports.data(), nullptr};
  int64_t deadline = options.timeout.count() > 0 ? sb.startNs + options.timeout.count() * 1000000 : 0;
  int code = runGuest(sb, instantiateAndStart, &entry, deadline);
  if (code != kTrapNone) {
    ErrorCode ec = code == kTrapTimeout        ? ErrorCode::kTimeout
                   : code == kTrapMemoryLimit  ? ErrorCode::kMemoryLimit
                   : code == kTrapPoolExhausted ? ErrorCode::kResourceExhausted
                                                : ErrorCode::kTrap;
    return Error(ec, trapName(code));
  }
  return inst;
}

Instance::~Instance() {
  // An instance may have been called from other threads.
  if (engine_ && sandbox_) engine_->teardown(*sandbox_, memory_, SlotUse::kAnyThread);
}

namespace {
struct CallEntry {
  const tern_export_t* fn;
  void* instance;
  const uint64_t* args;
  uint64_t* results;
};
void callExport(void* p) {
  auto* c = static_cast<CallEntry*>(p);
  c->fn->call(c->instance, c->args, c->results);
}
}  // namespace

int Instance::call(const tern_export_t& fn, const uint64_t* args, uint64_t* results,
                   std::chrono::milliseconds timeout) {
  if (!fn.call) return kTrapCallIndirect;
  CallEntry entry{&fn, memory_, args, results};
  int64_t deadline = timeout.count() > 0 ? monotonicNs() + timeout.count() * 1000000 : 0;
  return engine_->runGuest(*sandbox_, callExport, &entry, deadline);
}

void* Instance::exportAddress(const tern_export_t& e) {
  return e.address ? e.address(memory_) : nullptr;
}

}  // namespace tern::wasm
