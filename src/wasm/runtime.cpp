// tern's implementation of wasm2c's runtime interface (the C functions declared in
// wasm-rt.h), plus the thread state, trap delivery and signal handling behind it.

#include "wasm/runtime.h"

#include <malloc.h>
#include <pthread.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>

#include <fmt/format.h>

#include "util/sanitizers.h"
#include "util/signal_chain.h"
#include "util/thread_annotations.h"
#include "wasm/memory_pool.h"
#include "wasm/watchdog.h"

namespace tern::wasm {

namespace {

// The signal handlers read this without locks; it must not need allocation on access.
__attribute__((tls_model("initial-exec"))) thread_local ThreadState* tState = nullptr;

constexpr size_t kAltStackBytes = 64 * 1024;
// A fault this far below the stack's lowest usable address is a stack overflow.
constexpr uintptr_t kStackGuardZone = 64u << 20;
// Host functions refuse to start with less stack than this left.
constexpr uintptr_t kHostStackReserve = 128 * 1024;

struct sigaction gPrevSegv;
struct sigaction gPrevBus;

// Owns the thread's state and tears down its signal stack when the thread exits.
struct ThreadStateOwner {
  std::unique_ptr<ThreadState> state;
  ~ThreadStateOwner() {
    if (!state) return;
    Watchdog::forgetThread(*state);
    if (state->altStack) {
      stack_t ss{};
      ss.ss_flags = SS_DISABLE;
      sigaltstack(&ss, nullptr);
      munmap(state->altStack, state->altStackSize);
    }
    tState = nullptr;
  }
};
thread_local ThreadStateOwner tOwner;

ThreadState* createThreadState() {
  installSignalHandlers();
  auto ts = std::make_unique<ThreadState>();
  ts->thread = pthread_self();
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    void* addr = nullptr;
    size_t size = 0;
    pthread_attr_getstack(&attr, &addr, &size);
    ts->stackLow = reinterpret_cast<uintptr_t>(addr);
    ts->stackHigh = ts->stackLow + size;
    pthread_attr_destroy(&attr);
  }
  // Stack overflow is detected by the fault on the guard page, and the handler needs a
  // stack of its own to run on. Keep an alternate stack someone else installed.
  stack_t current{};
  if (sigaltstack(nullptr, &current) == 0 && (current.ss_flags & SS_DISABLE)) {
    void* mem = mmap(nullptr, kAltStackBytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem != MAP_FAILED) {
      stack_t ss{};
      ss.ss_sp = mem;
      ss.ss_size = kAltStackBytes;
      if (sigaltstack(&ss, nullptr) == 0) {
        ts->altStack = mem;
        ts->altStackSize = kAltStackBytes;
      } else {
        munmap(mem, kAltStackBytes);
      }
    }
  }
  tOwner.state = std::move(ts);
  tState = tOwner.state.get();
  return tState;
}

void onFault(int sig, siginfo_t* info, void* uctx) {
  // A missing page of a memory slot, touched by the guest or by tern on its behalf: filled,
  // and the access runs again (memory_pool.h, MemoryReset::kPageFills).
  if (sig == SIGBUS && info->si_code == BUS_ADRERR &&
      MemoryPool::fillMissingPage(info->si_addr)) {
    return;
  }
  ThreadState* ts = tState;
  if (ts && ts->inWasm) {
    auto addr = reinterpret_cast<uintptr_t>(info->si_addr);
    Sandbox* sb = ts->sandbox;
    if (ts->hostDepth == 0 && sb && sb->pool && sb->pool->contains(info->si_addr)) {
      trapNow(kTrapOobMemory);
    }
    if (ts->stackLow && addr < ts->stackLow + 4096 && addr + kStackGuardZone >= ts->stackLow) {
      trapNow(kTrapExhaustion);
    }
  }
  chainSignal(sig == SIGBUS ? gPrevBus : gPrevSegv, sig, info, uctx);
}

void onPreempt(int, siginfo_t*, void*) {
  ThreadState* ts = tState;
  if (!ts || !ts->inWasm || ts->killEpoch.load(std::memory_order_relaxed) !=
                                     ts->epoch.load(std::memory_order_relaxed)) return;
  if (ts->hostDepth > 0) {
    ts->preemptPending = 1;
    return;
  }
  trapNow(kTrapTimeout);
}

// wasm2c function-type ids must agree across every module in the process (call_indirect
// compares them), so the registry is process-wide by necessity.
struct FuncTypeRegistry {
  Mutex mu;
  std::vector<std::string> signatures TERN_GUARDED_BY(mu);  // id - 1 -> signature
};
FuncTypeRegistry& funcTypes() {
  static FuncTypeRegistry registry;
  return registry;
}

// Exception-handling state (only used by modules compiled with exceptions enabled).
constexpr uint32_t kMaxExceptionSize = 65536;
struct ExceptionState {
  uint32_t tag = 0;
  uint32_t size = 0;
  uint8_t data[kMaxExceptionSize];
  jmp_buf* unwindTarget = nullptr;
};
thread_local std::unique_ptr<ExceptionState> tException;
ExceptionState& exceptionState() {
  if (!tException) tException = std::make_unique<ExceptionState>();
  return *tException;
}

Sandbox* currentSandbox() { return tState ? tState->sandbox : nullptr; }

}  // namespace

ThreadState& currentThread() {
  ThreadState* ts = tState;
  return ts ? *ts : *createThreadState();
}

// ThreadSanitizer holds back asynchronous signals until the thread next enters its runtime
// (an intercepted call), which code compiled by wasm2c never does: a guest spinning in wasm
// would never see SIGURG. It delivers the signals it deems synchronous at once; of those,
// a tsan build preempts with SIGPIPE, which tern does not otherwise use (ternd ignores it;
// when the handler returns, a write to a closed pipe fails with EPIPE as under SIG_IGN).
int preemptSignal() {
#if TERN_THREAD_SANITIZER
  return SIGPIPE;
#else
  return SIGURG;
#endif
}

void installSignalHandlers() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_sigaction = onFault;
    // The signal stays blocked while its handler runs (no re-entry); handlers that trap
    // leave with longjmp, which keeps that mask, so runGuest unblocks it after a trap
    // (unblockTrapSignals).
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    // No preemption inside it either: a timeout must not end a page fill half made.
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, preemptSignal());
    sigaction(SIGSEGV, &sa, &gPrevSegv);
    sigaction(SIGBUS, &sa, &gPrevBus);
    struct sigaction pre {};
    pre.sa_sigaction = onPreempt;
    pre.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigemptyset(&pre.sa_mask);
    sigaction(preemptSignal(), &pre, nullptr);
  });
}

void unblockTrapSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGSEGV);
  sigaddset(&set, SIGBUS);
  sigaddset(&set, preemptSignal());
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

void trapNow(int code) {
  ThreadState* ts = tState;
  if (!ts) abort();  // a trap outside any guest call is a bug in tern
  ts->inWasm = 0;
  ts->hostDepth = 0;
  // glibc's longjmp and _longjmp are one function, which restores the signal mask only if
  // the buffer saved it (engine.cpp's _setjmp does not). The sanitizers intercept longjmp
  // (ThreadSanitizer not _longjmp) to unwind their shadow stacks.
  longjmp(ts->jmp, code);
}

void checkPreemption() {
  ThreadState* ts = tState;
  if (!ts) return;
  if (ts->preemptPending && ts->hostDepth == 0) {
    ts->preemptPending = 0;
    if (ts->killEpoch.load(std::memory_order_relaxed) == ts->epoch.load(std::memory_order_relaxed)) {
      trapNow(kTrapTimeout);
    }
  }
}

void checkHostStack() {
  ThreadState* ts = tState;
  char probe;
  auto sp = reinterpret_cast<uintptr_t>(&probe);
  if (ts && ts->stackLow && sp < ts->stackLow + kHostStackReserve) trapNow(kTrapExhaustion);
}

int64_t monotonicNs() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
}

namespace {

constexpr size_t kRecycledBlockBytes = 64u << 10;

// The blocks a thread's teardowns gave back (zeroedAlloc, recycleBlock).
struct RecycledBlocks {
  static constexpr size_t kMax = 4;
  struct Block {
    void* data;
    size_t bytes;
  };
  Block blocks[kMax];
  size_t count = 0;
  RecycledBlocks() = default;
  RecycledBlocks(const RecycledBlocks&) = delete;
  RecycledBlocks& operator=(const RecycledBlocks&) = delete;
  ~RecycledBlocks() {
    for (size_t i = 0; i < count; ++i) free(blocks[i].data);
  }
};
thread_local RecycledBlocks tRecycled;

}  // namespace

void* zeroedAlloc(size_t count, size_t size) {
  size_t bytes = 0;
  if (__builtin_mul_overflow(count, size, &bytes)) return nullptr;
  // Large blocks come from mmap, already zero: calloc touches none of their pages.
  if (bytes > kRecycledBlockBytes) return calloc(count, size);
  // A kept block fits when it is not more than twice the size asked for, so that a small
  // table never holds on to a large block.
  RecycledBlocks& kept = tRecycled;
  for (size_t i = kept.count; i-- > 0;) {
    RecycledBlocks::Block b = kept.blocks[i];
    if (b.bytes < bytes || b.bytes > 2 * bytes + 64) continue;
    kept.blocks[i] = kept.blocks[--kept.count];
    if (bytes) memset(b.data, 0, bytes);
    return b.data;
  }
  void* p = malloc(bytes);
  // Hides that p came from malloc: GCC would otherwise turn malloc and memset into calloc.
  __asm__("" : "+r"(p));
  if (p) memset(p, 0, bytes);
  return p;
}

void recycleBlock(void* block) {
  if (!block) return;
  RecycledBlocks& kept = tRecycled;
  size_t bytes = malloc_usable_size(block);
  if (bytes > kRecycledBlockBytes || kept.count == RecycledBlocks::kMax) return free(block);
  kept.blocks[kept.count++] = {block, bytes};
}

Result<void> checkInstantiable(const ModuleInfo& info, const SandboxLimits& limits) {
  auto mib = [](uint64_t pages) { return static_cast<double>(pages) / 16; };  // 64 KiB pages
  for (size_t i = 0; i < info.memories.size(); ++i) {
    uint64_t pages = info.memories[i].initial;
    if (pages > limits.memoryPages) {
      return Error(ErrorCode::kInvalidModule,
                   fmt::format("memory {} starts at {} pages ({:g} MiB), more than the memory "
                               "limit of {:g} MiB: no instance of this module could start",
                               i, pages, mib(pages), mib(limits.memoryPages)));
    }
  }
  for (size_t i = 0; i < info.tables.size(); ++i) {
    uint64_t elements = info.tables[i].limits.initial;
    if (elements > limits.tableElements) {
      return Error(ErrorCode::kInvalidModule,
                   fmt::format("table {} starts with {} elements, more than the limit of {}: no "
                               "instance of this module could start",
                               i, elements, limits.tableElements));
    }
  }
  return {};
}

const char* trapName(int code) {
  switch (code) {
    case kTrapNone: return "none";
    case kTrapOobExplicit: return "out-of-bounds memory or table access";
    case kTrapOobMemory: return "out-of-bounds memory access";
    case kTrapIntOverflow: return "integer overflow";
    case kTrapDivByZero: return "integer divide by zero";
    case kTrapInvalidConversion: return "invalid conversion to integer";
    case kTrapUnreachable: return "unreachable executed";
    case kTrapCallIndirect: return "indirect call to a null, out-of-range or mistyped function";
    case kTrapUncaughtException: return "uncaught exception";
    case kTrapExhaustion: return "call stack exhausted";
    case kTrapTimeout: return "timeout";
    case kTrapExit: return "exit";
    case kTrapOutputLimit: return "output limit exceeded";
    case kTrapMemoryLimit: return "memory limit exceeded";
    case kTrapPoolExhausted: return "no linear-memory slot available";
    case kTrapTableLimit: return "table limit exceeded";
    case kTrapHostFailure: return "internal error in a host call";
    default: return "unknown trap";
  }
}

}  // namespace tern::wasm

using tern::wasm::currentSandbox;
using tern::wasm::HostScope;
using tern::wasm::MemoryPool;
using tern::wasm::Sandbox;
using tern::wasm::trapNow;

// ---- The wasm-rt.h interface, called by compiled modules. ----

extern "C" {

void wasm_rt_init(void) { tern::wasm::installSignalHandlers(); }

bool wasm_rt_is_initialized(void) { return true; }

void wasm_rt_free(void) {}

void wasm_rt_trap(wasm_rt_trap_t code) { trapNow(code); }

const char* wasm_rt_strerror(wasm_rt_trap_t trap) { return tern::wasm::trapName(trap); }

uint32_t wasm_rt_register_func_type(uint32_t params, uint32_t results, ...) {
  std::string sig;
  va_list ap;
  va_start(ap, results);
  for (uint32_t i = 0; i < params + results; ++i) {
    if (i == params) sig.push_back(':');
    sig.push_back(static_cast<char>('a' + va_arg(ap, int)));
  }
  va_end(ap);
  if (results == 0) sig.push_back(':');
  auto& reg = tern::wasm::funcTypes();
  tern::MutexLock lock(reg.mu);
  for (size_t i = 0; i < reg.signatures.size(); ++i) {
    if (reg.signatures[i] == sig) return static_cast<uint32_t>(i + 1);
  }
  reg.signatures.push_back(std::move(sig));
  return static_cast<uint32_t>(reg.signatures.size());
}

uint32_t wasm_rt_register_tag(uint32_t size) {
  static std::atomic<uint32_t> next{0};
  if (size > tern::wasm::kMaxExceptionSize) trapNow(WASM_RT_TRAP_EXHAUSTION);
  return next++;
}

void wasm_rt_load_exception(uint32_t tag, uint32_t size, const void* values) {
  auto& ex = tern::wasm::exceptionState();
  ex.tag = tag;
  ex.size = std::min(size, tern::wasm::kMaxExceptionSize);
  if (ex.size) memcpy(ex.data, values, ex.size);
}

void wasm_rt_throw(void) {
  auto& ex = tern::wasm::exceptionState();
  if (!ex.unwindTarget) trapNow(WASM_RT_TRAP_UNCAUGHT_EXCEPTION);
  longjmp(*ex.unwindTarget, WASM_RT_TRAP_UNCAUGHT_EXCEPTION);
}

WASM_RT_UNWIND_TARGET* wasm_rt_get_unwind_target(void) {
  return tern::wasm::exceptionState().unwindTarget;
}

void wasm_rt_set_unwind_target(WASM_RT_UNWIND_TARGET* target) {
  tern::wasm::exceptionState().unwindTarget = target;
}

uint32_t wasm_rt_exception_tag(void) { return tern::wasm::exceptionState().tag; }
uint32_t wasm_rt_exception_size(void) { return tern::wasm::exceptionState().size; }
void* wasm_rt_exception(void) { return tern::wasm::exceptionState().data; }

void wasm_rt_allocate_memory(wasm_rt_memory_t* memory, uint32_t initial, uint32_t max) {
  int trap = 0;
  {
    HostScope scope;
    Sandbox* sb = currentSandbox();
    if (!sb || !sb->pool) {
      trap = tern::wasm::kTrapPoolExhausted;
    } else if (initial > sb->limits.memoryPages) {
      sb->memoryLimitWanted = uint64_t{initial} * MemoryPool::kWasmPageSize;
      trap = tern::wasm::kTrapMemoryLimit;
    } else {
      uint64_t bytes = uint64_t{initial} * MemoryPool::kWasmPageSize;
      uint8_t* data = sb->pool->acquire(bytes);
      if (!data) {
        trap = tern::wasm::kTrapPoolExhausted;
      } else {
        memory->data = data;
        memory->pages = initial;
        memory->max_pages = std::min(max, sb->limits.memoryPages);
        // A 4 GiB memory does not fit the 32-bit size field (see wasm_rt_grow_memory).
        memory->size = bytes >= (4ull << 30) ? UINT32_MAX : static_cast<uint32_t>(bytes);
        sb->memories.push_back(memory);
        if (!sb->memory) sb->memory = memory;
        sb->peakMemoryBytes = std::max(sb->peakMemoryBytes, bytes);
      }
    }
  }
  if (trap) trapNow(trap);
  tern::wasm::checkPreemption();
}

uint32_t wasm_rt_grow_memory(wasm_rt_memory_t* memory, uint32_t delta) {
  uint32_t result;
  {
    HostScope scope;
    Sandbox* sb = currentSandbox();
    uint32_t old = memory->pages;
    uint64_t want = uint64_t{old} + delta;
    if (want > memory->max_pages) {
      // Tell "the limit refused it" apart from "the module's own maximum refused it".
      if (sb && want > sb->limits.memoryPages && want <= 65536) {
        sb->memoryLimitHit = true;
        sb->memoryLimitWanted = want * MemoryPool::kWasmPageSize;
      }
      result = UINT32_MAX;
    } else if (delta == 0) {
      result = old;
    } else if (!sb || !sb->pool ||
               !sb->pool->grow(memory->data, memory->size, want * MemoryPool::kWasmPageSize)) {
      result = UINT32_MAX;
    } else {
      memory->pages = static_cast<uint32_t>(want);
      // 65536 pages (4 GiB) does not fit the 32-bit size field; wasm2c then relies on the
      // guard region alone, which still covers every reachable address.
      memory->size = want >= 65536 ? UINT32_MAX
                                   : static_cast<uint32_t>(want * MemoryPool::kWasmPageSize);
      sb->peakMemoryBytes = std::max(sb->peakMemoryBytes, want * MemoryPool::kWasmPageSize);
      result = old;
    }
  }
  tern::wasm::checkPreemption();
  return result;
}

void wasm_rt_free_memory(wasm_rt_memory_t* memory) {
  HostScope scope;
  Sandbox* sb = currentSandbox();
  if (!sb) return;
  auto it = std::find(sb->memories.begin(), sb->memories.end(), memory);
  if (it == sb->memories.end()) return;
  sb->pool->release(memory->data, memory->size);
  sb->memories.erase(it);
  if (sb->memory == memory) sb->memory = nullptr;
}

#define TERN_DEFINE_TABLE_OPS(type, list)                                                  \
  void wasm_rt_allocate_##type##_table(wasm_rt_##type##_table_t* table, uint32_t elements, \
                                       uint32_t max_elements) {                            \
    int trap = 0;                                                                          \
    {                                                                                      \
      HostScope scope;                                                                     \
      Sandbox* sb = currentSandbox();                                                      \
      uint32_t limit = sb ? sb->limits.tableElements : 0;                                  \
      if (elements > limit) {                                                              \
        trap = tern::wasm::kTrapTableLimit;                                                \
      } else {                                                                             \
        table->size = elements;                                                            \
        table->max_size = std::min(max_elements, limit);                                   \
        table->data = static_cast<wasm_rt_##type##_t*>(                                    \
            tern::wasm::zeroedAlloc(std::max<uint32_t>(elements, 1),                       \
                                    sizeof(wasm_rt_##type##_t)));                          \
        if (!table->data) {                                                                \
          trap = tern::wasm::kTrapTableLimit;                                              \
        } else {                                                                           \
          sb->list.push_back(table);                                                       \
        }                                                                                  \
      }                                                                                    \
    }                                                                                      \
    if (trap) trapNow(trap);                                                               \
    tern::wasm::checkPreemption();                                                         \
  }                                                                                        \
  void wasm_rt_free_##type##_table(wasm_rt_##type##_table_t* table) {                      \
    HostScope scope;                                                                       \
    Sandbox* sb = currentSandbox();                                                        \
    if (!sb) return;                                                                       \
    auto it = std::find(sb->list.begin(), sb->list.end(), table);                          \
    if (it == sb->list.end()) return;                                                      \
    tern::wasm::recycleBlock(table->data);                                                 \
    table->data = nullptr;                                                                 \
    sb->list.erase(it);                                                                    \
  }                                                                                        \
  uint32_t wasm_rt_grow_##type##_table(wasm_rt_##type##_table_t* table, uint32_t delta,    \
                                       wasm_rt_##type##_t init) {                          \
    uint32_t result = UINT32_MAX;                                                          \
    {                                                                                      \
      HostScope scope;                                                                     \
      uint32_t old = table->size;                                                          \
      uint64_t want = uint64_t{old} + delta;                                               \
      if (delta == 0) {                                                                    \
        result = old;                                                                      \
      } else if (want <= table->max_size) {                                                \
        void* grown = realloc(table->data, want * sizeof(wasm_rt_##type##_t));             \
        if (grown) {                                                                       \
          table->data = static_cast<wasm_rt_##type##_t*>(grown);                           \
          for (uint64_t i = old; i < want; ++i) table->data[i] = init;                     \
          table->size = static_cast<uint32_t>(want);                                       \
          result = old;                                                                    \
        }                                                                                  \
      }                                                                                    \
    }                                                                                      \
    tern::wasm::checkPreemption();                                                         \
    return result;                                                                         \
  }

TERN_DEFINE_TABLE_OPS(funcref, funcTables)
TERN_DEFINE_TABLE_OPS(externref, externTables)

}  // extern "C"
