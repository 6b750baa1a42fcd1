#pragma once
// The pool of pre-reserved linear-memory slots. Each slot is an 8 GiB + guard reservation
// (PROT_NONE, no swap reservation) so that wasm2c's compiled loads and stores, whose
// effective address is a 32-bit index plus a 32-bit offset, always land inside the slot:
// anything beyond the accessible prefix faults and becomes an out-of-bounds trap. Slots are
// reserved in chunks on first need, never unmapped, and recycled: releasing a slot discards
// its contents: the few pages a small invocation touched are zeroed in place and stay
// resident (within a pool-wide budget), larger ones are discarded with madvise. Steady-state
// invocations of small functions make no system call at all where tern fills the slots'
// pages itself (MemoryReset::kPageFills), and none that changes mappings otherwise, so no
// TLB shootdowns. A thread keeps the slot it released last and takes it back
// on its next acquire without touching the pool's lock or any shared cache line
// (docs/design/sandbox.md, "Per-thread fast paths").

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "util/thread_annotations.h"

namespace tern::wasm {

struct MemoryPoolStats {
  size_t slotsReserved = 0;  // slots whose address space is reserved
  size_t slotsInUse = 0;
  size_t maxSlots = 0;
  uint64_t acquires = 0;
  uint64_t warmBytes = 0;  // zeroed pages kept resident in free slots
  uint64_t residencyScans = 0;  // releases that asked the kernel which pages are resident
  uint64_t pageFills = 0;       // missing pages filled by tern (MemoryReset::kPageFills)
  bool fillsPages = false;      // this pool's slots are filled by tern
};

// How a pool knows which pages of a slot have become resident, and so must be zeroed.
enum class MemoryReset : uint8_t {
  // The kernel gives tern every missing page of a slot to fill (userfaultfd, SIGBUS mode):
  // tern records each page it fills and a release zeroes those, with no system call. Where
  // the kernel refuses userfaultfd (an unprivileged process, vm.unprivileged_userfaultfd
  // off, a seccomp filter, valgrind, qemu-user), the pool uses kFaultCount.
  kPageFills,
  // Page faults are counted with getrusage at each release; a release that saw none
  // zeroes the pages the last one found, any other asks the kernel (mincore).
  kFaultCount,
};

// Who may have touched a slot's memory while it was held, as the caller of release() knows.
enum class SlotUse : uint8_t {
  // Only the thread that acquired the slot and releases it now (Engine::invoke: the
  // sandbox lives within one call on one thread).
  kThisThreadOnly,
  // Possibly other threads too (an Instance called from several threads).
  kAnyThread,
};

class MemoryPool {
 public:
  static constexpr uint64_t kWasmPageSize = 65536;
  // 4 GiB of index space + 4 GiB of static offset + one guard page for access widths.
  static constexpr uint64_t kSlotBytes = (8ull << 30) + kWasmPageSize;
  static constexpr size_t kSlotsPerChunk = 32;  // fewer where the address space is limited
  static constexpr size_t kMaxChunks = 512;
  static constexpr uint64_t kOsPage = 4096;
  // Memories up to this size are scanned for resident pages on release.
  static constexpr uint64_t kWarmScanBytes = 16u << 20;
  // At most this many resident bytes per slot are zeroed in place rather than discarded.
  static constexpr uint64_t kWarmSlotBytes = 1u << 20;
  // Pool-wide bound on zeroed pages kept resident in free slots.
  static constexpr uint64_t kWarmBudgetBytes = 64u << 20;

  // maxSlots bounds how many memories may be alive at once (each costs 8 GiB of address
  // space, none of RAM until touched).
  explicit MemoryPool(size_t maxSlots, MemoryReset reset = MemoryReset::kPageFills);
  ~MemoryPool();
  MemoryPool(const MemoryPool&) = delete;
  MemoryPool& operator=(const MemoryPool&) = delete;

  // A slot with its first `bytes` readable and writable and zero-filled, the rest
  // inaccessible. nullptr when every slot is in use or the address space is exhausted.
  // The calling thread's own released slot comes first, without a lock (see release).
  uint8_t* acquire(uint64_t bytes);
  // Makes [0, newBytes) accessible; false if the kernel refuses.
  bool grow(uint8_t* slot, uint64_t oldBytes, uint64_t newBytes);
  // Returns the slot; its contents are discarded. The slot stays with the calling thread
  // (one per thread), which takes it back on its next acquire without a lock; other
  // threads take it only when every other slot is in use.
  //
  // Which pages to zero: a page the guest wrote is resident. With kPageFills every
  // resident page is one tern filled and recorded, and the release zeroes them with no
  // system call (docs/design/sandbox.md, "Pages tern fills itself"). Otherwise: the
  // kernel can say which are (mincore), but that system call allocates a page, walks the
  // page tables and takes the address-space lock that every thread of the process shares.
  // So each slot remembers the resident pages its last release found; with
  // kThisThreadOnly, when the thread has taken no page fault since it acquired the slot
  // (its fault count, from getrusage), no page became resident, and those pages are zeroed
  // without asking the kernel ("Resetting memory without a scan").
  void release(uint8_t* slot, uint64_t usedBytes, SlotUse use = SlotUse::kAnyThread);

  // Whether `addr` lies inside any slot reserved by this pool. Async-signal-safe.
  bool contains(const void* addr) const;

  // For the SIGBUS handler: fills the missing page at `addr` with zeros and records it (after
  // a use's first few fills, the rest of its wasm page too, up to the slot's accessible
  // size), when `addr` is in an accessible part of a slot of a pool that fills its pages.
  // True when it did (or the page is there now): the faulting access can run again.
  // Async-signal-safe; keeps errno.
  static bool fillMissingPage(void* addr);

  // Counts every slot; for metrics and tests, not the invocation path.
  MemoryPoolStats stats() const;

 private:
  enum SlotState : uint8_t {
    kShared,  // on the shared free list
    kCached,  // free, kept by the thread that released it last
    kInUse,
  };
  // One cache line per slot: two threads each using their own slot must not write to a
  // shared line (each invocation writes its slot's state, size and counters).
  struct alignas(64) Slot {
    uint8_t* base = nullptr;
    // Owned by the thread that holds the slot (in use or cached); handed over with it.
    uint64_t accessible = 0;  // bytes currently mapped read/write
    uint64_t warm = 0;        // resident zeroed bytes kept from the last use
    // Taking a cached slot is a compare-and-swap kCached -> kInUse, by its thread (no
    // contention) or by another one when the pool is otherwise exhausted.
    std::atomic<uint8_t> state{kShared};
    // Times the slot was acquired; written only by its holder, summed by stats().
    std::atomic<uint64_t> uses{0};
    // Releases that scanned residency; written only by its holder, summed by stats().
    std::atomic<uint64_t> scans{0};
    // Every page of the slot known to be resident (zeroed by the last release), by index,
    // ascending, including pages past `accessible` left from a larger use. A fresh slot
    // has none; every release keeps the list exact. Owned like `accessible`.
    std::vector<uint32_t> residentPages;
    // The fault watch of the thread that acquired the slot, and its generation then.
    const void* acquiredBy = nullptr;
    uint64_t acquiredGeneration = 0;
    // Its chunk is registered with userfaultfd (MemoryReset::kPageFills). Set before the
    // chunk is published; never changes.
    bool fillsPages = false;
    // kPageFills: `accessible` as the signal handler reads it (it never fills past it).
    std::atomic<uint64_t> fillLimit{0};
    // kPageFills: the runs of pages filled since the last release, in the order filled;
    // more than kMaxFills runs and the release discards the whole slot instead.
    static constexpr uint32_t kMaxFills = 32;
    struct Fill {
      std::atomic<uint32_t> page{0};
      std::atomic<uint32_t> pages{0};
    };
    std::atomic<uint32_t> fillCount{0};
    Fill fills[kMaxFills];
    // Pages filled over the slot's life; summed by stats().
    std::atomic<uint64_t> filled{0};
  };
  // The slot whose base is `base`, or nullptr. Lock-free: slots never move (the array is
  // allocated up front) and slotCount_ publishes each chunk's slots.
  Slot* slotFor(uint8_t* base);
  bool reserveChunk() TERN_REQUIRES(mu_);
  bool fillIn(void* addr);
  // release() for a slot whose pages tern fills: zeroes the known and filled pages, or
  // discards the slot when they are too many. False when the slot had to be retired.
  bool resetFilled(Slot& slot, uint64_t dirty);
  void setWarm(Slot& slot, uint64_t resident);
  // Hands a released slot to the calling thread's cache, or to the shared list.
  void keep(Slot& slot);
  // A slot from the shared list (reserving a chunk when it is empty), else one cached by a
  // thread; nullptr when all are in use.
  Slot* takeShared() TERN_REQUIRES(mu_);
  uint8_t* prepare(Slot& slot, uint64_t bytes);

  // A reserved range of slots. first and slots are written before chunkCount_ publishes
  // the chunk and never change.
  struct Chunk {
    std::atomic<uint8_t*> base{nullptr};
    size_t first = 0;  // index of its first slot
    size_t slots = 0;
    bool fillsPages = false;  // registered with userfaultfd
  };

  const size_t maxSlots_;
  const uint64_t id_;  // unique per pool in the process: keys the threads' slot caches
  bool fillsPages_ = false;  // MemoryReset::kPageFills granted; set once in the constructor
  Chunk chunks_[kMaxChunks];
  std::atomic<size_t> chunkCount_{0};
  mutable Mutex mu_;
  // Every slot, by index; the first slotCount_ are reserved. The array itself never
  // changes; a slot's fields belong to whoever holds it (see Slot).
  const std::unique_ptr<Slot[]> slots_;
  size_t reserved_ TERN_GUARDED_BY(mu_) = 0;
  std::vector<uint32_t> free_ TERN_GUARDED_BY(mu_);  // free slot indices, most recent last
  std::atomic<size_t> slotCount_{0};
  // Changed only when a released slot keeps more or fewer warm pages than before, which a
  // steady workload does not do: kept off the cache line of the lock.
  alignas(64) std::atomic<uint64_t> warmBytes_{0};
};

}  // namespace tern::wasm
