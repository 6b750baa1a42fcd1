#pragma once
// tern's implementation of wasm2c's runtime interface (wasm-rt.h) and the per-thread and
// per-sandbox state behind it. Compiled modules call the C functions defined in
// runtime.cpp (wasm_rt_*), wasi.cpp (Z_wasi_snapshot_preview1Z_*) and host_api.cpp
// (Z_ternZ_*); those reach the current sandbox through the calling thread's ThreadState
// or their import instance.
//
// Traps unwind with longjmp to the thread's entry point (ThreadState::jmp). Nothing that
// owns resources may be live in a frame that a trap can skip: host functions finish their
// C++ work before they may trap (see HostScope).

#include <atomic>
#include <csetjmp>
#include <csignal>
#include <exception>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/container/small_vector.hpp>
#include <wasm-rt.h>

#include "util/environment.h"
#include "util/error.h"
#include "wasm/module_info.h"

namespace tern::wasm {

class MemoryPool;

// Why a sandbox stopped early. Values 1..8 are wasm2c's wasm_rt_trap_t.
enum TrapCode : int {
  kTrapNone = 0,
  kTrapOobExplicit = WASM_RT_TRAP_OOB,  // bounds check in generated code (tables, bulk ops)
  kTrapIntOverflow = WASM_RT_TRAP_INT_OVERFLOW,
  kTrapDivByZero = WASM_RT_TRAP_DIV_BY_ZERO,
  kTrapInvalidConversion = WASM_RT_TRAP_INVALID_CONVERSION,
  kTrapUnreachable = WASM_RT_TRAP_UNREACHABLE,
  kTrapCallIndirect = WASM_RT_TRAP_CALL_INDIRECT,
  kTrapUncaughtException = WASM_RT_TRAP_UNCAUGHT_EXCEPTION,
  kTrapExhaustion = WASM_RT_TRAP_EXHAUSTION,
  kTrapOobMemory = 100,   // a load or store hit the guard region of linear memory
  kTrapTimeout = 101,     // preempted at its deadline
  kTrapExit = 102,        // proc_exit: not an error, the exit code is in the sandbox
  kTrapOutputLimit = 103, // stdout grew past its limit
  kTrapMemoryLimit = 104, // instantiation needs more memory than the limit allows
  kTrapPoolExhausted = 105,  // no linear-memory slot available
  kTrapTableLimit = 106,  // a table larger than the table limit
  kTrapHostFailure = 107,  // a host call failed inside tern (an exception): an internal error
};

// Human name of a trap, e.g. "out-of-bounds memory access".
const char* trapName(int code);


struct SandboxLimits {
  uint32_t memoryPages = 2048;          // 128 MiB
  uint32_t tableElements = 1u << 20;
  uint64_t stdoutBytes = 16u << 20;
  uint64_t stderrBytes = 64u << 10;
};

// Whether an instance of the module could start under `limits` at all: every linear memory
// starts within memoryPages and every table within tableElements (wasm_rt_allocate_memory
// and wasm_rt_allocate_*_table trap otherwise, on every instantiation). Errors:
// kInvalidModule naming the memory or table and the limit.
Result<void> checkInstantiable(const ModuleInfo& info, const SandboxLimits& limits);

struct Sandbox;
class HostHandler;
class Watchdog;

inline const std::vector<std::string> kNoStrings;
inline const Environment kNoEnvironment;

// What wasm2c receives as a host module's import instance (struct
// Z_wasi_snapshot_preview1_instance_t* for WASI, struct Z_tern_instance_t* for tern's host
// API). wasm2c 1.0.32 passes an import function either
// this object's address (direct calls) or the address of the instance field that points
// to it (calls through a table: the funcref's module_instance is that field's address), so
// the object starts with a pointer to itself and WASI functions resolve whatever address
// they get by reading its first word. See wasiSandbox().
struct WasiInstance {
  WasiInstance* self;
  Sandbox* sandbox;
};

// The sandbox of a host call's instance argument (see WasiInstance).
inline Sandbox* wasiSandbox(void* instance) {
  return (*static_cast<WasiInstance**>(instance))->sandbox;
}

// Everything one invocation owns.
struct Sandbox {
  Sandbox() = default;
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  WasiInstance wasiInstance{&wasiInstance, this};
  WasiInstance ternInstance{&ternInstance, this};  // the "tern" host module's instance
  MemoryPool* pool = nullptr;
  SandboxLimits limits;
  int64_t deadlineNs = 0;  // CLOCK_MONOTONIC; 0 = none
  int64_t startNs = 0;

  // Linear memories and tables allocated for this instance, released at teardown. A module
  // has one or two of each at most, in practice: kept inline, not allocated per invocation.
  boost::container::small_vector<wasm_rt_memory_t*, 2> memories;
  boost::container::small_vector<wasm_rt_funcref_table_t*, 2> funcTables;
  boost::container::small_vector<wasm_rt_externref_table_t*, 2> externTables;
  wasm_rt_memory_t* memory = nullptr;  // memory 0, which WASI reads and writes
  uint64_t peakMemoryBytes = 0;
  bool memoryLimitHit = false;  // a memory.grow was refused because of the limit
  uint64_t memoryLimitWanted = 0;  // bytes the refused grow asked for

  // WASI state. args and env belong to the caller and outlive the invocation.
  const std::vector<std::string>* args = &kNoStrings;
  const Environment* env = &kNoEnvironment;
  std::string_view stdinData;
  size_t stdinPos = 0;
  std::string stdoutData;
  std::string stderrData;
  uint64_t stderrDropped = 0;
  int exitCode = 0;

  // tern host API state: the services behind the calls (null: kv, publish, stream_publish
  // and invoke answer "unavailable"), the text of the last failed call, and the stdout of
  // the last function run by invoke (read with last_output).
  HostHandler* host = nullptr;
  std::string lastError;
  // What a host call that failed inside tern threw (kTrapHostFailure).
  std::string hostFailure;
  std::string invokeOutput;
};

// Per-thread execution state; lives as long as the thread. Written on every invocation
// (the jump buffer, the published epoch and deadline): cache-line aligned, so two threads'
// states never share a line.
struct alignas(64) ThreadState {
  jmp_buf jmp;
  volatile sig_atomic_t inWasm = 0;     // guest code (or a runtime call from it) is running
  volatile sig_atomic_t hostDepth = 0;  // inside a host function: preemption is deferred
  volatile sig_atomic_t preemptPending = 0;
  volatile sig_atomic_t faultWasGuard = 0;
  Sandbox* sandbox = nullptr;
  uintptr_t stackLow = 0;   // lowest usable address of this thread's stack
  uintptr_t stackHigh = 0;
  void* altStack = nullptr;
  size_t altStackSize = 0;
  // Preemption handshake with the watchdog: it sets killEpoch to the epoch it wants
  // stopped; the signal handler acts only if that is still the running invocation. The
  // watchdog's thread writes killEpoch while this one reads it, hence an atomic (lock-free,
  // so the signal handler may read it).
  std::atomic<uint64_t> killEpoch{0};
  static_assert(std::atomic<uint64_t>::is_always_lock_free);
  // The running invocation's epoch and deadline (CLOCK_MONOTONIC, 0: none), written only
  // by this thread and read by the watchdog without a lock: watchSeq is a sequence count
  // (odd while the pair changes), so the watchdog reads a consistent pair or skips the
  // thread, which then checks the watchdog's wake time itself (Watchdog::publish and the
  // scan in watchdog.cpp).
  std::atomic<uint64_t> watchSeq{0};
  std::atomic<uint64_t> epoch{0};
  std::atomic<int64_t> deadlineNs{0};
  uint64_t lastEpoch = 0;  // the last epoch handed out on this thread; epochs never repeat
  pthread_t thread{};
  // The watchdog this thread is registered with (null: none). Set under the watchdogs'
  // registration lock; read without it by this thread, to skip registering again.
  std::atomic<Watchdog*> watchdog{nullptr};
  ThreadState* prev = nullptr;  // the registered watchdog's list, under its lock
  ThreadState* next = nullptr;
};

// The calling thread's state, created on first use (with its signal stack).
ThreadState& currentThread();

// Installs tern's SIGSEGV/SIGBUS and preemption handlers, once per process. The handlers
// act only on faults inside guest code and chain to the previous handler otherwise.
void installSignalHandlers();

// The signal the watchdog uses to preempt a thread.
int preemptSignal();

// After a trap raised from a signal handler: the handler's signal is still blocked (the
// jump out of the handler keeps the mask); unblock the signals tern's handlers use.
void unblockTrapSignals();

// Leaves guest code with a trap. Must not be called with live C++ objects that own
// resources in the frames between here and the entry point.
[[noreturn]] void trapNow(int code);

// Marks a host function (WASI, runtime allocation) as running: preemption is deferred until
// leave(), which then traps if the deadline passed meanwhile.
class HostScope {
 public:
  HostScope() : ts_(currentThread()) { ts_.hostDepth = ts_.hostDepth + 1; }
  ~HostScope() { ts_.hostDepth = ts_.hostDepth - 1; }
  ThreadState& thread() { return ts_; }
  HostScope(const HostScope&) = delete;
  HostScope& operator=(const HostScope&) = delete;

 private:
  ThreadState& ts_;
};

// Call after a HostScope ended: traps now if a preemption arrived during the host call.
void checkPreemption();

// Traps with "call stack exhausted" when too little stack is left for a host function.
void checkHostStack();

int64_t monotonicNs();

// `count` zeroed elements of `size` bytes, or nullptr (also when the product overflows): the
// instance and tables of every invocation are allocated this way, and given back with
// recycleBlock. A block of up to 64 KiB comes from the few the thread's last teardowns gave
// back, zeroed again, or else from malloc; the allocator's free and malloc of blocks this
// size, one of each per invocation, cost several times the lookup. Larger blocks come from
// calloc (mmap'ed, zero without being touched).
void* zeroedAlloc(size_t count, size_t size);
// Gives back a block from zeroedAlloc (or one realloc'ed from it): kept for the thread's next
// invocation when it is small and the thread keeps fewer than a few, freed otherwise.
void recycleBlock(void* block);

// Runs a host call's body inside a catch-all: an exception never unwinds through the
// generated code's frames. Returns the body's result, or nullopt with the failure recorded
// in the sandbox; the caller then traps the guest (kTrapHostFailure) once the body's C++
// objects are gone.
template <typename F>
std::optional<uint32_t> guardedHostCall(Sandbox& sb, F&& body) noexcept {
  try {
    return body();
  } catch (const std::exception& e) {
    sb.hostFailure = e.what();
  } catch (...) {
    sb.hostFailure = "an unknown exception";
  }
  return std::nullopt;
}

}  // namespace tern::wasm
