#include "wasm/memory_pool.h"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "util/signal_chain.h"

namespace tern::wasm {

namespace {

std::atomic<uint64_t> gNextPoolId{1};

// The slot the calling thread released last: its pool's id (0: none) and index. One entry
// per thread, so a thread that runs one invocation at a time reuses one slot, whose pages
// and page tables stay warm in its core's caches, and never touches the pool's lock.
struct ThreadSlotCache {
  uint64_t pool = 0;
  uint32_t index = 0;
};
thread_local ThreadSlotCache tSlotCache;

constexpr uint64_t kUnknownFaults = UINT64_MAX;

// The page faults the calling thread has taken (minor and major), as the kernel counts
// them: a guest's first write to a page that is not resident faults on the guest's thread,
// and so does the kernel's own write into guest memory on that thread's behalf (fd_read).
uint64_t threadFaults() {
  rusage ru{};
  if (getrusage(RUSAGE_THREAD, &ru) != 0) return kUnknownFaults;
  return static_cast<uint64_t>(ru.ru_minflt) + static_cast<uint64_t>(ru.ru_majflt);
}

// A thread's fault count as read at its releases. `generation` moves on whenever a reading
// differs from the one before (or cannot be made), so a slot acquired at generation G has
// seen no fault of this thread, between its acquire and the latest reading, while the
// generation is still G.
struct FaultWatch {
  uint64_t lastFaults = kUnknownFaults;
  uint64_t generation = 1;

  void read() {
    uint64_t now = threadFaults();
    if (now == kUnknownFaults || now != lastFaults) {
      lastFaults = now;
      ++generation;
    }
  }
};
thread_local FaultWatch tFaultWatch;

// The process's userfaultfd, in SIGBUS mode: an access to a missing page of a registered
// range raises SIGBUS in the accessing thread instead of the kernel allocating the page,
// and a system call that would write into such a page fails with EFAULT (no kernel-mode
// fault is served silently: the descriptor is not user-mode-only). -1 when the kernel
// refuses it; nothing reads the descriptor, the handler fills pages with UFFDIO_COPY.
int userfaultFd() {
  static const int fd = [] {
#if defined(SYS_userfaultfd) && defined(UFFD_FEATURE_SIGBUS)
    int f = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
#ifdef USERFAULTFD_IOC_NEW
    // Refused to an unprivileged process (vm.unprivileged_userfaultfd = 0): the device
    // gives one to whoever may open it (an administrator's grant to the service's user).
    if (f < 0 && errno == EPERM) {
      int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
      if (dev >= 0) {
        f = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
        close(dev);
      }
    }
#endif
    if (f < 0) return -1;
    uffdio_api api{};
    api.api = UFFD_API;
    api.features = UFFD_FEATURE_SIGBUS;
    if (ioctl(f, UFFDIO_API, &api) != 0 || !(api.features & UFFD_FEATURE_SIGBUS) ||
        !(api.ioctls & (1ull << _UFFDIO_REGISTER))) {
      close(f);
      return -1;
    }
    return f;
#else
    return -1;
#endif
  }();
  return fd;
}

// Fills of one page each, per use of a slot, before fills take the rest of the wasm page.
constexpr uint32_t kSinglePageFills = 8;

// What a fill copies from: a wasm page of zeros.
alignas(4096) const uint8_t kZeros[MemoryPool::kWasmPageSize] = {};

// The pools that fill their slots' pages, for the handler to search. A pool takes an entry
// when it is made and gives it back when destroyed; a process with more such pools at once
// than entries makes the rest count faults instead.
constexpr size_t kMaxFillingPools = 64;
std::atomic<MemoryPool*> gFillingPools[kMaxFillingPools];

struct sigaction gPrevBus;

void onMissingPage(int sig, siginfo_t* info, void* uctx) {
  if (info->si_code == BUS_ADRERR && MemoryPool::fillMissingPage(info->si_addr)) return;
  // Not a page of a slot: whoever handled SIGBUS before, or the default action (the
  // access runs again and the process ends with SIGBUS).
  chainSignal(gPrevBus, sig, info, uctx);
}

// The handler serves pools whatever else handles SIGBUS: installed once, by the first pool
// that fills pages, with every signal blocked while it runs so that nothing interrupts a
// fill between recording it and making it. (The engine's own fault handler, installed
// later, asks fillMissingPage first as well.)
void installMissingPageHandler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_sigaction = onMissingPage;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigfillset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &gPrevBus);
  });
}

}  // namespace

bool MemoryPool::fillMissingPage(void* addr) {
  for (auto& entry : gFillingPools) {
    MemoryPool* pool = entry.load(std::memory_order_acquire);
    if (pool && pool->contains(addr)) return pool->fillIn(addr);
  }
  return false;
}

bool MemoryPool::fillIn(void* addr) {
  auto* p = static_cast<uint8_t*>(addr);
  size_t n = chunkCount_.load(std::memory_order_acquire);
  for (size_t c = 0; c < n; ++c) {
    const Chunk& chunk = chunks_[c];
    uint8_t* start = chunk.base.load(std::memory_order_relaxed);
    if (p < start || p >= start + kSlotBytes * chunk.slots) continue;
    if (!chunk.fillsPages) return false;
    size_t index = chunk.first + static_cast<size_t>(p - start) / kSlotBytes;
    Slot& slot = slots_[index];
    uint64_t offset = static_cast<uint64_t>(p - slot.base);
    uint64_t limit = slot.fillLimit.load(std::memory_order_relaxed);
    if (offset >= limit) return false;
    int savedErrno = errno;
    // Recorded before it is made: a release never misses a page that a fill made resident.
    uint32_t i = slot.fillCount.fetch_add(1, std::memory_order_relaxed);
    // The missing page alone, since every page filled is zeroed at each release from then
    // on; but a use that keeps filling (a large memory touched in runs: data, heap, stack)
    // gets the rest of the wasm page with it, one signal for up to 16 pages.
    uint64_t from = offset / kOsPage * kOsPage;
    uint64_t to = i < kSinglePageFills
                      ? from + kOsPage
                      : std::min(limit, (offset / kWasmPageSize + 1) * kWasmPageSize);
    if (i < Slot::kMaxFills) {
      slot.fills[i].page.store(static_cast<uint32_t>(from / kOsPage), std::memory_order_relaxed);
      slot.fills[i].pages.store(static_cast<uint32_t>((to - from) / kOsPage),
                                std::memory_order_relaxed);
    }
    uffdio_copy copy{};
    copy.dst = reinterpret_cast<uint64_t>(slot.base + from);
    copy.src = reinterpret_cast<uint64_t>(kZeros);
    copy.len = to - from;
    bool ok = ioctl(userfaultFd(), UFFDIO_COPY, &copy) == 0;
    // EEXIST: a page of the run was resident already (filled by another thread, or kept
    // from an earlier use); the copy stopped there, and the access can run again.
    // EAGAIN: the address space was changing; the access runs again and faults again.
    if (!ok && errno != EEXIST && errno != EAGAIN) {
      errno = savedErrno;
      return false;
    }
    uint64_t copied = ok ? to - from : (copy.copy > 0 ? static_cast<uint64_t>(copy.copy) : 0);
    if (i < Slot::kMaxFills) {
      slot.fills[i].pages.store(static_cast<uint32_t>(copied / kOsPage),
                                std::memory_order_relaxed);
    }
    slot.filled.fetch_add(copied / kOsPage, std::memory_order_relaxed);
    errno = savedErrno;
    return true;
  }
  return false;
}

MemoryPool::MemoryPool(size_t maxSlots, MemoryReset reset)
    : maxSlots_(std::min(maxSlots, kSlotsPerChunk * kMaxChunks)),
      id_(gNextPoolId.fetch_add(1)),
      slots_(new Slot[std::max<size_t>(maxSlots_, 1)]) {
  {
    MutexLock lock(mu_);
    free_.reserve(maxSlots_);
  }
  if (reset == MemoryReset::kPageFills && userfaultFd() >= 0) {
    installMissingPageHandler();
    for (auto& entry : gFillingPools) {
      MemoryPool* expected = nullptr;
      if (entry.compare_exchange_strong(expected, this, std::memory_order_acq_rel)) {
        fillsPages_ = true;
        break;
      }
    }
  }
}

MemoryPool::~MemoryPool() {
  for (auto& entry : gFillingPools) {
    MemoryPool* self = this;
    entry.compare_exchange_strong(self, nullptr, std::memory_order_acq_rel);
  }
  size_t n = chunkCount_.load();
  for (size_t i = 0; i < n; ++i) munmap(chunks_[i].base.load(), kSlotBytes * chunks_[i].slots);
}

bool MemoryPool::reserveChunk() {
  size_t n = chunkCount_.load();
  if (n >= kMaxChunks || reserved_ >= maxSlots_) return false;
  // A chunk of kSlotsPerChunk slots, or fewer where the address space is limited (an
  // RLIMIT_AS, valgrind's 32 GiB mappings): halve until one fits.
  size_t add = std::min(kSlotsPerChunk, maxSlots_ - reserved_);
  void* p = MAP_FAILED;
  for (; add > 0; add /= 2) {
    p = mmap(nullptr, kSlotBytes * add, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
             -1, 0);
    if (p != MAP_FAILED) break;
  }
  if (p == MAP_FAILED) return false;
  // No transparent huge pages: khugepaged could fill a range's missing pages while
  // collapsing it, making pages resident without a fault on the guest's thread, which
  // release() relies on seeing. (EINVAL where the kernel has no THP: nothing to turn off.)
  (void)madvise(p, kSlotBytes * add, MADV_NOHUGEPAGE);
  bool fills = false;
  if (fillsPages_) {
    uffdio_register reg{};
    reg.range.start = reinterpret_cast<uint64_t>(p);
    reg.range.len = kSlotBytes * add;
    reg.mode = UFFDIO_REGISTER_MODE_MISSING;
    // Refused (a kernel without anonymous-memory support): this chunk counts faults.
    fills = ioctl(userfaultFd(), UFFDIO_REGISTER, &reg) == 0;
  }
  auto* base = static_cast<uint8_t*>(p);
  size_t first = reserved_;
  chunks_[n].first = first;
  chunks_[n].slots = add;
  chunks_[n].fillsPages = fills;
  for (size_t i = 0; i < add; ++i) slots_[first + i].fillsPages = fills;
  chunks_[n].base.store(base);
  chunkCount_.store(n + 1);
  for (size_t i = 0; i < add; ++i) slots_[first + i].base = base + i * kSlotBytes;
  reserved_ += add;
  slotCount_.store(reserved_, std::memory_order_release);
  // The free list pops from the back: push in reverse so low addresses go out first.
  for (size_t i = add; i-- > 0;) free_.push_back(static_cast<uint32_t>(first + i));
  return true;
}

MemoryPool::Slot* MemoryPool::slotFor(uint8_t* base) {
  size_t count = slotCount_.load(std::memory_order_acquire);
  size_t n = chunkCount_.load(std::memory_order_acquire);
  for (size_t c = 0; c < n; ++c) {
    const Chunk& chunk = chunks_[c];
    uint8_t* start = chunk.base.load(std::memory_order_relaxed);
    if (base >= start && base < start + kSlotBytes * chunk.slots) {
      size_t index = chunk.first + static_cast<size_t>(base - start) / kSlotBytes;
      return index < count ? &slots_[index] : nullptr;
    }
  }
  return nullptr;
}

MemoryPool::Slot* MemoryPool::takeShared() {
  if (free_.empty()) reserveChunk();
  if (!free_.empty()) {
    uint32_t index = free_.back();
    free_.pop_back();
    slots_[index].state.store(kInUse, std::memory_order_relaxed);
    return &slots_[index];
  }
  // Every slot is in use or kept by a thread: take one a thread keeps.
  for (size_t i = 0; i < reserved_; ++i) {
    uint8_t expected = kCached;
    if (slots_[i].state.compare_exchange_strong(expected, kInUse, std::memory_order_acquire)) {
      return &slots_[i];
    }
  }
  return nullptr;
}

uint8_t* MemoryPool::acquire(uint64_t bytes) {
  if (bytes > (4ull << 30)) return nullptr;
  Slot* slot = nullptr;
  if (tSlotCache.pool == id_) {
    tSlotCache.pool = 0;
    Slot& cached = slots_[tSlotCache.index];
    uint8_t expected = kCached;
    // Fails only if another thread took it because the pool was otherwise exhausted.
    if (cached.state.compare_exchange_strong(expected, kInUse, std::memory_order_acquire)) {
      slot = &cached;
    }
  }
  if (!slot) {
    MutexLock lock(mu_);
    slot = takeShared();
    if (!slot) return nullptr;
  }
  return prepare(*slot, bytes);
}

uint8_t* MemoryPool::prepare(Slot& slot, uint64_t bytes) {
  // Only this thread touches the slot now. Adjust the accessible prefix if the last user
  // had a different size; the same module reusing the slot needs no system call.
  bool ok = true;
  if (slot.accessible > bytes) {
    ok = mprotect(slot.base + bytes, slot.accessible - bytes, PROT_NONE) == 0;
  } else if (slot.accessible < bytes) {
    ok = mprotect(slot.base + slot.accessible, bytes - slot.accessible,
                  PROT_READ | PROT_WRITE) == 0;
  }
  if (!ok) {
    MutexLock relock(mu_);
    slot.state.store(kShared, std::memory_order_relaxed);
    free_.push_back(static_cast<uint32_t>(&slot - slots_.get()));
    return nullptr;
  }
  slot.accessible = bytes;
  slot.fillLimit.store(bytes, std::memory_order_relaxed);
  slot.uses.store(slot.uses.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  slot.acquiredBy = &tFaultWatch;
  slot.acquiredGeneration = tFaultWatch.generation;
  return slot.base;
}

bool MemoryPool::grow(uint8_t* base, uint64_t oldBytes, uint64_t newBytes) {
  Slot* slot = slotFor(base);
  if (!slot || newBytes > (4ull << 30)) return false;
  if (newBytes > slot->accessible) {
    if (mprotect(base + slot->accessible, newBytes - slot->accessible,
                 PROT_READ | PROT_WRITE) != 0) {
      return false;
    }
    slot->accessible = newBytes;
    slot->fillLimit.store(newBytes, std::memory_order_relaxed);
  }
  (void)oldBytes;
  return true;
}

void MemoryPool::release(uint8_t* base, uint64_t usedBytes, SlotUse use) {
  Slot* slot = slotFor(base);
  if (!slot) return;

  // Reset the contents to zero. Discarding pages with madvise costs a TLB shootdown on
  // every core the process runs on (an IPI round, tens of microseconds on a VM) and a page
  // fault per page on the next use; zeroing the few pages a small invocation touched costs
  // far less. So: know the resident pages; if they are few and the pool's budget of warm
  // pages allows, zero them in place and keep them; otherwise discard them.
  uint64_t dirty = std::max(usedBytes, slot->accessible);
  if (slot->fillsPages) {
    if (!resetFilled(*slot, dirty)) return;  // retired
    return keep(*slot);
  }
  bool scanned = true;
  if (use == SlotUse::kThisThreadOnly && slot->acquiredBy == &tFaultWatch) {
    tFaultWatch.read();
    // No fault on this thread since the acquire, and nobody else touched the memory: no
    // page became resident, so the resident pages are the ones the last release left.
    scanned = !(tFaultWatch.generation == slot->acquiredGeneration && dirty <= kWarmScanBytes);
  }
  uint64_t resident = 0;
  bool zeroInPlace = false;
  if (!scanned) {
    // Pages past `accessible` were inaccessible all along (it only grows while the slot is
    // held): nothing wrote them, and they were zeroed when they were last in use.
    size_t accessiblePages = slot->accessible / kOsPage;
    for (uint32_t page : slot->residentPages) {
      if (page >= accessiblePages) break;
      memset(base + uint64_t{page} * kOsPage, 0, kOsPage);
    }
    resident = slot->warm;
    zeroInPlace = true;
  } else {
    slot->scans.store(slot->scans.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    size_t pages = (dirty + kOsPage - 1) / kOsPage;
    // What is known of the pages past the scanned range stays known.
    std::vector<uint32_t> beyond;
    for (uint32_t page : slot->residentPages) {
      if (page >= pages) beyond.push_back(page);
    }
    if (dirty > 0 && dirty <= kWarmScanBytes) {
      unsigned char vec[kWarmScanBytes / kOsPage];
      if (mincore(base, pages * kOsPage, vec) == 0) {
        for (size_t i = 0; i < pages; ++i) resident += (vec[i] & 1) ? kOsPage : 0;
        uint64_t warmAfter = warmBytes_.load(std::memory_order_relaxed) - slot->warm + resident;
        if (resident <= kWarmSlotBytes && warmAfter <= kWarmBudgetBytes) {
          zeroInPlace = true;
          slot->residentPages.clear();
          for (size_t i = 0; i < pages; ++i) {
            if (!(vec[i] & 1)) continue;
            memset(base + i * kOsPage, 0, kOsPage);
            slot->residentPages.push_back(static_cast<uint32_t>(i));
          }
        }
      }
    }
    if (!zeroInPlace) {
      resident = 0;
      slot->residentPages.clear();
      if (dirty > 0 && madvise(base, dirty, MADV_DONTNEED) != 0) {
        // Not seen on the pool's own mapping; but a slot whose contents could not be
        // discarded must never be handed out again: it stays "in use", retired.
        if (slot->warm != 0) warmBytes_.fetch_sub(slot->warm, std::memory_order_relaxed);
        slot->warm = 0;
        return;
      }
    }
    slot->residentPages.insert(slot->residentPages.end(), beyond.begin(), beyond.end());
  }
  setWarm(*slot, resident);
  keep(*slot);
}

void MemoryPool::setWarm(Slot& slot, uint64_t resident) {
  // A slot that keeps as many warm pages as before (the usual case) leaves the shared
  // count alone.
  if (resident != slot.warm) {
    warmBytes_.fetch_add(resident - slot.warm, std::memory_order_relaxed);
    slot.warm = resident;
  }
}

void MemoryPool::keep(Slot& slot) {
  auto index = static_cast<uint32_t>(&slot - slots_.get());
  if (tSlotCache.pool != id_) {
    tSlotCache = ThreadSlotCache{id_, index};
    slot.state.store(kCached, std::memory_order_release);
    return;
  }
  // This thread already keeps a slot (it ran nested invocations or holds instances).
  MutexLock lock(mu_);
  slot.state.store(kShared, std::memory_order_relaxed);
  free_.push_back(index);
}

bool MemoryPool::resetFilled(Slot& slot, uint64_t dirty) {
  // Every resident page of the slot is one tern filled: the known ones, and the runs
  // filled since the last release. Nothing else can be: the kernel fills no page of the
  // slot itself, for the guest, for tern or for a system call.
  uint32_t fills = slot.fillCount.load(std::memory_order_acquire);
  bool recorded = fills <= Slot::kMaxFills;
  if (recorded && fills > 0) {
    for (uint32_t i = 0; i < fills; ++i) {
      uint32_t first = slot.fills[i].page.load(std::memory_order_relaxed);
      uint32_t count = slot.fills[i].pages.load(std::memory_order_relaxed);
      for (uint32_t k = 0; k < count; ++k) slot.residentPages.push_back(first + k);
    }
    std::sort(slot.residentPages.begin(), slot.residentPages.end());
    slot.residentPages.erase(std::unique(slot.residentPages.begin(), slot.residentPages.end()),
                             slot.residentPages.end());
  }
  slot.fillCount.store(0, std::memory_order_relaxed);
  uint64_t known = slot.residentPages.size() * kOsPage;
  uint64_t warmAfter = warmBytes_.load(std::memory_order_relaxed) - slot.warm + known;
  if (recorded && known <= kWarmSlotBytes && warmAfter <= kWarmBudgetBytes) {
    // Pages past `accessible` were inaccessible all along: nothing wrote them since the
    // release that zeroed them.
    size_t accessiblePages = slot.accessible / kOsPage;
    for (uint32_t page : slot.residentPages) {
      if (page >= accessiblePages) break;
      memset(slot.base + uint64_t{page} * kOsPage, 0, kOsPage);
    }
    setWarm(slot, known);
    return true;
  }
  // Too many to keep, or more runs than were recorded: discard the slot's accessible part.
  // What lies past it (zeroed pages left by a larger use) stays resident and known.
  size_t dirtyPages = (dirty + kOsPage - 1) / kOsPage;
  auto firstBeyond = std::lower_bound(slot.residentPages.begin(), slot.residentPages.end(),
                                      static_cast<uint32_t>(std::min<size_t>(dirtyPages,
                                                                             UINT32_MAX)));
  slot.residentPages.erase(slot.residentPages.begin(), firstBeyond);
  if (dirty > 0 && madvise(slot.base, dirty, MADV_DONTNEED) != 0) {
    // As in release(): a slot that could not be discarded is never handed out again.
    if (slot.warm != 0) warmBytes_.fetch_sub(slot.warm, std::memory_order_relaxed);
    slot.warm = 0;
    return false;
  }
  setWarm(slot, slot.residentPages.size() * kOsPage);
  return true;
}

bool MemoryPool::contains(const void* addr) const {
  auto* p = static_cast<const uint8_t*>(addr);
  size_t n = chunkCount_.load(std::memory_order_acquire);
  for (size_t c = 0; c < n; ++c) {
    const uint8_t* start = chunks_[c].base.load(std::memory_order_relaxed);
    if (p >= start && p < start + kSlotBytes * chunks_[c].slots) return true;
  }
  return false;
}

MemoryPoolStats MemoryPool::stats() const {
  MutexLock lock(mu_);
  MemoryPoolStats s;
  s.slotsReserved = reserved_;
  s.maxSlots = maxSlots_;
  for (size_t i = 0; i < reserved_; ++i) {
    if (slots_[i].state.load(std::memory_order_relaxed) == kInUse) ++s.slotsInUse;
    s.acquires += slots_[i].uses.load(std::memory_order_relaxed);
    s.residencyScans += slots_[i].scans.load(std::memory_order_relaxed);
    s.pageFills += slots_[i].filled.load(std::memory_order_relaxed);
  }
  s.fillsPages = fillsPages_;
  s.warmBytes = warmBytes_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace tern::wasm
