#pragma once
// Ahead-of-time compilation: wasm -> C (wasm2c, with a module name unique to the content
// hash) -> shared object (the system C compiler) -> dlopen. Compiled objects are cached on
// disk under a key of module hash + toolchain identity + flags + runtime ABI version, so
// they are reused across processes; concurrent requests for the same key, in this process
// or another, compile once (an in-process table of pending compiles plus an flock on disk).
//
// Modules are untrusted, so compiling one is bounded twice: the reader refuses modules
// beyond ModuleLimits before any compiler starts, and wasm2c and the C compiler run in a
// sandbox of CompileLimits (address space, CPU time, wall time, compiles at once). See
// docs/security-model.md, "Compiling untrusted modules".

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>

#include "util/error.h"
#include "wasm/compile_slots.h"
#include "wasm/module_abi.h"
#include "wasm/module_info.h"
#include "wasm/runtime.h"
#include "util/thread_annotations.h"

namespace tern::wasm {

enum class OptLevel : uint8_t { kO0, kO1, kO2 };

// Which compiler builds a module's object (docs/design/tiers.md). The optimized tier is the
// system C compiler at CompileOptions::opt; the baseline tier is TinyCC, which compiles
// the same wasm2c output 20-40x faster into code about 10x slower, so a new module is
// served at once while its optimized object is built in the background.
enum class Tier : uint8_t { kOptimized, kBaseline };
// "optimized" or "baseline".
const char* tierName(Tier tier);

// Which imports a module may have. Functions may import only tern's host modules; the
// conformance harness links spec-test modules to each other through tern_import_env.
enum class ImportPolicy : uint8_t { kHostOnly, kLinkForeign };

struct CompileOptions {
  OptLevel opt = OptLevel::kO2;  // the optimized tier's level; the baseline tier has none
  ImportPolicy imports = ImportPolicy::kHostOnly;
  // When set, a module that no instance could start under these limits (its initial linear
  // memory or a table is larger than they allow) is refused before it is compiled.
  std::optional<SandboxLimits> instanceLimits{};
  Tier tier = Tier::kOptimized;
};

// The sandbox wasm2c and the C compiler run in. The memory and CPU limits apply to each
// process of a compile on its own (wasm2c, the cc driver, and cc1, as and ld that it
// starts), as rlimits set before the process starts.
struct CompileLimits {
  uint64_t memoryBytes = 2ull << 30;  // address space of each compiler process
  uint32_t cpuSeconds = 240;          // CPU time of each compiler process
  std::chrono::seconds timeout{300};  // wall-clock time of each tool run (wasm2c, then cc)
  unsigned concurrency = 1;           // compiles at once; more wait in arrival order
};

// The machines objects are built for: this one (hostTarget), and others with a cross
// compiler, for devices that run functions without a compiler of their own.
inline constexpr std::string_view kObjectTargets[] = {"x86_64", "aarch64"};
// This process's target: "x86_64", "aarch64", or "unsupported".
std::string_view hostTarget();
// The target an ELF shared object was built for (its e_machine), or "" when the bytes are
// not a 64-bit little-endian ELF file for one of kObjectTargets.
std::string objectTarget(std::span<const uint8_t> bytes);

struct CompilerConfig {
  std::filesystem::path cacheDir;
  std::string cc = "cc";  // builds objects for hostTarget()
  // The baseline tier's compiler (Debian package tcc), for hostTarget() only; "" or a
  // compiler that is not installed: no baseline tier (baselineAvailable() is false).
  std::string baselineCc = "tcc";
  // The C compilers for other targets; a target not named here uses Debian's cross
  // compiler "<target>-linux-gnu-gcc" (crossbuild-essential-arm64 for aarch64).
  std::map<std::string, std::string> targetCc;
  std::string wasm2c = "wasm2c";
  size_t maxModuleBytes = 64u << 20;
  ModuleLimits moduleLimits;    // what a module may declare, checked before compiling
  CompileLimits compileLimits;  // the sandbox of every compile
};

// A module's compiled code, loaded into this process.
class CompiledModule {
 public:
  ~CompiledModule();
  CompiledModule(const CompiledModule&) = delete;
  CompiledModule& operator=(const CompiledModule&) = delete;

  const tern_module_t& abi() const { return *abi_; }
  const ModuleInfo& info() const { return info_; }
  const std::string& hash() const { return hash_; }  // SHA-256 of the wasm bytes
  Tier tier() const { return tier_; }  // which compiler built the object
  const std::filesystem::path& objectPath() const { return objectPath_; }
  // The export with that name, or nullptr.
  const tern_export_t* findExport(std::string_view name) const;
  // findExport("_start"), found once when the module is loaded: every invocation asks.
  const tern_export_t* startExport() const { return start_; }

 private:
  friend class Compiler;
  CompiledModule() = default;
  void* handle_ = nullptr;
  const tern_module_t* abi_ = nullptr;
  const tern_export_t* start_ = nullptr;
  ModuleInfo info_;
  std::string hash_;
  Tier tier_ = Tier::kOptimized;
  std::filesystem::path objectPath_;
};

struct CompileStats {
  uint64_t compiles = 0;    // objects built by this process, both tiers
  uint64_t baselineCompiles = 0;  // of which by the baseline compiler
  double baselineCompileSeconds = 0;
  uint64_t cacheHits = 0;   // objects found on disk or in memory
  double compileSeconds = 0;
  uint64_t stoppedByLimits = 0;  // compiles the sandbox stopped (memory or CPU limit)
  CompileSlots::Stats slots;     // optimized compiles running and waiting
  CompileSlots::Stats baselineSlots;  // baseline compiles running and waiting
};

class Compiler {
 public:
  explicit Compiler(CompilerConfig config);

  // Checks, compiles (or finds in the cache) and loads a module. Errors: kModuleTooLarge
  // (the file is larger than maxModuleBytes, or the compile sandbox stopped the compile),
  // kInvalidModule (beyond the module limits, cannot be instantiated under
  // options.instanceLimits, or wasm2c's message for invalid code), kCompileFailed, kIo.
  Result<std::shared_ptr<const CompiledModule>> load(std::span<const uint8_t> wasm,
                                                     const CompileOptions& options = {});

  // The module loaded from an object already compiled (in this process or in the on-disk
  // cache) for these options, or null when there is none: compiles nothing. Errors: as
  // load() for the module's checks, kCompileFailed when the cached object does not load.
  Result<std::shared_ptr<const CompiledModule>> loadIfCached(std::span<const uint8_t> wasm,
                                                             const CompileOptions& options = {});

  // Whether the baseline tier's compiler is installed (config().baselineCc).
  bool baselineAvailable() const;

  // Builds (or finds in the cache) a module's object for `target` without loading it: what
  // a node serves to devices. The host's own target is the object load() uses. Errors: as
  // load(), plus kInvalidArgument (not one of kObjectTargets) and kUnavailable (no C
  // compiler for that target on this machine).
  Result<std::filesystem::path> objectFor(std::span<const uint8_t> wasm, const std::string& target,
                                          const CompileOptions& options = {});

  // Loads an object built elsewhere (by a node) for `wasm`, compiling nothing. The object
  // must be for this machine, this module ABI and this module's SHA-256 (the hash the
  // object names); the module is checked as load() checks it. Errors: kInvalidModule (the
  // module), kInvalidArgument (an object for another machine, ABI or module), kIo.
  Result<std::shared_ptr<const CompiledModule>> loadPrebuilt(std::span<const uint8_t> wasm,
                                                             const std::filesystem::path& object,
                                                             const CompileOptions& options = {});

  // The cache key of a module's compiled object for `target` (objects/<key>.so under the
  // cache directory; "" is the host's): the module's SHA-256 with the identity of the
  // target's C compiler and wasm2c, the flags and the module ABI version. The node's
  // garbage collection keeps the keys of live modules.
  std::string cacheKey(const std::string& hash, const CompileOptions& options = {},
                       const std::string& target = "");

  // The C compiler that builds objects for `target` ("" or hostTarget(): config().cc).
  std::string ccFor(const std::string& target) const;
  // The compiler of a tier for the host: config().cc or config().baselineCc.
  const std::string& ccForTier(Tier tier) const;

  CompileStats stats() const;
  const CompilerConfig& config() const { return config_; }

 private:
  // A module checked before any compiler starts: its description and SHA-256.
  struct Checked {
    ModuleInfo info;
    std::string hash;
  };
  Result<Checked> check(std::span<const uint8_t> wasm, const CompileOptions& options) const;
  // The object for `key`, built with `cc` once however many ask at the same time.
  Result<std::filesystem::path> objectOnce(std::span<const uint8_t> wasm, const Checked& module,
                                           const std::string& key, const std::string& cc,
                                           const CompileOptions& options);
  Result<std::filesystem::path> buildObject(std::span<const uint8_t> wasm,
                                            const ModuleInfo& info, const std::string& hash,
                                            const std::string& key, const std::string& cc,
                                            const CompileOptions& options);
  Result<std::shared_ptr<const CompiledModule>> open(const std::filesystem::path& object,
                                                     ModuleInfo info, std::string hash,
                                                     Tier tier);
  // The identity of `cc` with wasm2c; "" when `cc` is not installed.
  std::string toolchainId(const std::string& cc);

  CompilerConfig config_;
  mutable Mutex mu_;
  std::map<std::string, std::string> toolchainIds_ TERN_GUARDED_BY(mu_);  // by C compiler
  // Compiles in flight and modules loaded, by cache key.
  std::map<std::string, std::shared_future<Result<std::filesystem::path>>> pending_
      TERN_GUARDED_BY(mu_);
  std::map<std::string, std::weak_ptr<const CompiledModule>> loaded_ TERN_GUARDED_BY(mu_);
  CompileStats stats_ TERN_GUARDED_BY(mu_);
  CompileSlots slots_;
  // Baseline compiles have slots of their own (as many), so a deploy's baseline compile
  // never waits behind another module's long optimized one.
  CompileSlots baselineSlots_;
};

// wasm2c's name mangling for module, import and export names.
std::string wasm2cMangle(std::string_view name);

// wasm2c's output with its float negations, `-(w2c_fN)` (f32) and `-(w2c_dN)` (f64) of a
// stack variable, made calls of the baseline prelude's sign-bit flips: TinyCC compiles the
// unary minus as arithmetic, which keeps a NaN's sign and quiets a signaling NaN, where
// wasm's f32.neg and f64.neg flip the sign bit only. Other text is left as it is.
std::string flipFloatNegations(std::string_view wasm2cOutput);

// A line-by-line flipFloatNegations for wasm2c's output as it arrives: `add` appends to
// `out` the flipped text of every complete line received so far, `finish` the rest (a
// negation never spans lines).
class FloatNegationFlipper {
 public:
  void add(std::string_view piece, std::string& out);
  void finish(std::string& out);

 private:
  std::string partial_;  // the text after the last newline received
};

// Where the glue finds wasm2c's output: it includes module.c, or it is compiled right after
// it in one translation unit (the baseline tier streams wasm2c's output to the compiler).
enum class GlueSource { kIncludesModule, kFollowsModule };

// The glue C source for the module with SHA-256 `hash` compiled by wasm2c under `moduleName`.
std::string generateGlue(const ModuleInfo& info, const std::string& moduleName,
                         const std::string& hash, ImportPolicy imports,
                         GlueSource source = GlueSource::kIncludesModule);

}  // namespace tern::wasm
