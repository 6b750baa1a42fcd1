#pragma once
// The engine: compiled modules, instances in fresh sandboxes, and invocations.
//
// An invocation is one fresh sandbox: instantiate the module (linear memory from the
// pool, data and element segments, start function), run `_start` with the request as
// stdin, collect stdout/stderr and the exit code, tear everything down. Nothing survives
// from one invocation to the next. See docs/design/sandbox.md.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "util/error.h"
#include "wasm/compiler.h"
#include "wasm/memory_pool.h"
#include "wasm/runtime.h"
#include "wasm/watchdog.h"

namespace tern::wasm {

struct EngineConfig {
  CompilerConfig compiler;
  size_t maxSandboxes = 4096;  // linear memories alive at once
};

// The default on-disk cache: $TERN_CACHE_DIR, else $XDG_CACHE_HOME/tern, else ~/.cache/tern.
std::filesystem::path defaultCacheDir();

struct InvocationRequest {
  std::string_view input;          // the guest's stdin
  std::vector<std::string> args;   // argv; argv[0] is conventionally the function name
  Environment env;                 // "KEY=VALUE" entries (util/environment.h)
  std::chrono::milliseconds timeout{10000};  // 0: none
  int64_t deadlineNs = 0;  // CLOCK_MONOTONIC; when set, the earlier of it and timeout applies
  // CLOCK_MONOTONIC, when the caller read it just before (the invocation's timeout and
  // duration count from it); 0: the engine reads the clock.
  int64_t startNs = 0;
  SandboxLimits limits;
  HostHandler* host = nullptr;  // services behind the "tern" host API; null: none
};

enum class Outcome : uint8_t {
  kOk,              // returned from _start or exited with code 0
  kExited,          // exited with a non-zero code
  kTrap,
  kTimeout,
  kMemoryLimit,
  kOutputLimit,
  kResourceExhausted,
  kInvalid,         // the module cannot be invoked (no _start)
};

const char* outcomeName(Outcome o);

struct InvocationResult {
  Outcome outcome = Outcome::kOk;
  int exitCode = 0;
  int trapCode = kTrapNone;
  std::string stdoutData;
  std::string stderrData;
  uint64_t stderrDropped = 0;
  uint64_t peakMemoryBytes = 0;
  int64_t durationNs = 0;
  std::string detail;  // what went wrong, for non-OK outcomes

  // For kOk and kExited: nullopt; otherwise the error to report.
  std::optional<Error> error() const;
};

// Resolves imports from modules other than tern's host modules, by import index
// (ModuleInfo::imports). Used by the conformance harness to link modules to each other.
class ForeignImports {
 public:
  virtual ~ForeignImports() = default;
  // May trap (trapNow) but must not leave live C++ objects behind when it does.
  virtual void call(uint32_t importIndex, const uint64_t* args, uint64_t* results) = 0;
  virtual void* address(uint32_t importIndex) = 0;
};

class Engine;

// A live instance of a module. invoke() uses one per invocation; embedders that call
// exports directly (the conformance harness) keep one across calls.
class Instance {
 public:
  ~Instance();
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;

  // Calls an export through its trampoline. Returns the trap code, kTrapNone on success.
  int call(const tern_export_t& fn, const uint64_t* args, uint64_t* results,
           std::chrono::milliseconds timeout = std::chrono::milliseconds(0));
  void* exportAddress(const tern_export_t& e);

  Sandbox& sandbox() { return *sandbox_; }
  const CompiledModule& module() const { return *module_; }

 private:
  friend class Engine;
  Instance() = default;
  Engine* engine_ = nullptr;
  std::shared_ptr<const CompiledModule> module_;
  std::unique_ptr<Sandbox> sandbox_;
  void* memory_ = nullptr;  // the wasm2c instance struct
  tern_import_env_t foreignEnv_{};
};

class Engine {
 public:
  explicit Engine(EngineConfig config);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  Result<std::shared_ptr<const CompiledModule>> load(std::span<const uint8_t> wasm,
                                                     const CompileOptions& options = {});
  Result<std::shared_ptr<const CompiledModule>> loadFile(const std::filesystem::path& path,
                                                         const CompileOptions& options = {});

  // Runs one invocation in a fresh sandbox.
  InvocationResult invoke(const std::shared_ptr<const CompiledModule>& module,
                          const InvocationRequest& request);

  // Instantiates a module (runs its start function). On a trap the error carries the trap.
  struct InstantiateOptions {
    SandboxLimits limits;
    ForeignImports* foreign = nullptr;
    std::chrono::milliseconds timeout{0};
  };
  Result<std::unique_ptr<Instance>> instantiate(std::shared_ptr<const CompiledModule> module,
                                                const InstantiateOptions& options);

  Compiler& compiler() { return compiler_; }
  MemoryPool& pool() { return pool_; }

  // Runs fn(arg) as guest code on the calling thread, with `sandbox` current and the
  // watchdog armed for `deadlineNs` (0: none). Returns the trap code or kTrapNone.
  // Nesting-safe: a host call may run another guest (the host API's invoke); the nested
  // call has its own trap point and preemption epoch, runs until the earlier of its own and
  // the enclosing call's deadline, and restores the enclosing call's state when it ends.
  int runGuest(Sandbox& sandbox, void (*fn)(void*), void* arg, int64_t deadlineNs);

 private:
  friend class Instance;
  void teardown(Sandbox& sandbox, void* instanceMemory, SlotUse use);

  Compiler compiler_;
  MemoryPool pool_;
  Watchdog watchdog_;
};

}  // namespace tern::wasm
