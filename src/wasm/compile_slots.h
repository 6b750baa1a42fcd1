#pragma once
// The concurrency limit of the compile sandbox: at most N compiles run at once, the rest
// wait for a slot in the order they asked for one. A compile of an untrusted module may take
// the whole memory and CPU budget of CompileLimits, so the number running at once bounds
// what compiling can take from the node as a whole.

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "util/thread_annotations.h"

namespace tern::wasm {

class CompileSlots {
 public:
  explicit CompileSlots(unsigned slots) : slots_(std::max(1u, slots)) {}
  CompileSlots(const CompileSlots&) = delete;
  CompileSlots& operator=(const CompileSlots&) = delete;

  // A slot, held until the object is destroyed.
  class Held {
   public:
    explicit Held(CompileSlots& owner) : owner_(&owner) {}
    Held(Held&& other) noexcept : owner_(other.owner_) { other.owner_ = nullptr; }
    Held& operator=(Held&&) = delete;
    Held(const Held&) = delete;
    Held& operator=(const Held&) = delete;
    ~Held() {
      if (owner_) owner_->release();
    }

   private:
    CompileSlots* owner_;
  };

  // Waits until a slot is free and every earlier caller has had one.
  [[nodiscard]] Held acquire() TERN_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    const uint64_t ticket = nextTicket_++;
    auto myTurn = [&]() TERN_REQUIRES(mu_) { return ticket == nextServed_ && running_ < slots_; };
    if (!myTurn()) {
      ++waited_;
      lock.wait(cv_, myTurn);
    }
    ++nextServed_;
    ++running_;
    peakRunning_ = std::max(peakRunning_, running_);
    cv_.notify_all();  // the next ticket may find a free slot too
    return Held(*this);
  }

  struct Stats {
    unsigned slots = 0;
    unsigned running = 0;      // slots held now
    uint64_t waiting = 0;      // callers waiting for a slot now
    unsigned peakRunning = 0;  // the most slots ever held at once
    uint64_t waited = 0;       // callers that had to wait, in total
  };
  Stats stats() const TERN_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    return Stats{slots_, running_, nextTicket_ - nextServed_, peakRunning_, waited_};
  }

 private:
  void release() TERN_EXCLUDES(mu_) {
    {
      MutexLock lock(mu_);
      --running_;
    }
    cv_.notify_all();
  }

  mutable Mutex mu_;
  std::condition_variable cv_;
  const unsigned slots_;
  unsigned running_ TERN_GUARDED_BY(mu_) = 0;
  unsigned peakRunning_ TERN_GUARDED_BY(mu_) = 0;
  uint64_t nextTicket_ TERN_GUARDED_BY(mu_) = 0;  // handed to the next caller
  uint64_t nextServed_ TERN_GUARDED_BY(mu_) = 0;  // the ticket whose turn it is
  uint64_t waited_ TERN_GUARDED_BY(mu_) = 0;
};

}  // namespace tern::wasm
