#pragma once
// Preemption of runaway guests. One watchdog thread scans the threads registered with it
// and signals those whose running invocation is past its deadline, then sleeps until the
// earliest deadline it saw (every millisecond while a signalled invocation has not yet
// stopped). An invocation whose deadline is earlier than the watchdog's next wake wakes
// it; with no deadline for a while it sleeps until the next invocation with one. The
// signal handler stops the guest at once, or, when the guest is inside a host function, at
// the moment that function returns.
//
// The invocation path takes no lock and writes no shared cache line: a thread registers
// once (its first invocation under this watchdog, under a lock), and from then on each
// invocation publishes its epoch and deadline in the thread's own ThreadState under a
// sequence count that the watchdog reads (docs/design/sandbox.md, "Preemption").

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "wasm/runtime.h"
#include "util/thread_annotations.h"

namespace tern::wasm {

class Watchdog {
 public:
  Watchdog();
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Starts watching the calling thread's invocation; deadlineNs is CLOCK_MONOTONIC,
  // 0 for none. `ts` is the calling thread's state.
  void begin(ThreadState& ts, int64_t deadlineNs) TERN_EXCLUDES(mu_);
  void end(ThreadState& ts);

  // A guest call nested in a running one on the same thread (a host call that runs another
  // function): it gets its own epoch, so a preemption aimed at it never stops the caller,
  // and the earlier of the two deadlines. leaveNested restores the caller's epoch and
  // deadline.
  struct Outer {
    uint64_t epoch;
    int64_t deadlineNs;
  };
  Outer enterNested(ThreadState& ts, int64_t deadlineNs) TERN_EXCLUDES(mu_);
  void leaveNested(ThreadState& ts, const Outer& outer);

  // Unregisters a thread whose state is going away (the thread is exiting).
  static void forgetThread(ThreadState& ts);

  // How long the watchdog keeps waking on a timer after it last saw a deadline: a deadline
  // published meanwhile is later than that wake (unless its timeout is shorter), so sparse
  // invocations find it awake on a timer and do not have to wake it.
  static constexpr int64_t kLingerNs = 200'000'000;

  // How many times the watchdog has looked at its threads.
  uint64_t scans() const { return scans_.load(std::memory_order_relaxed); }

 private:
  // Publishes the thread's running epoch and deadline for the watchdog's scan.
  static void publish(ThreadState& ts, uint64_t epoch, int64_t deadlineNs);
  // Wakes the watchdog if it means to wake later than `deadlineNs`; call after publishing
  // that deadline.
  void wakeForDeadline(int64_t deadlineNs) TERN_EXCLUDES(mu_);
  void registerThread(ThreadState& ts) TERN_EXCLUDES(mu_);
  void unlinkLocked(ThreadState& ts) TERN_REQUIRES(mu_);
  // Signals every registered thread past its deadline; returns when to look next
  // (CLOCK_MONOTONIC ns, INT64_MAX: not before an invocation wakes the watchdog).
  int64_t scanLocked(int64_t nowNs) TERN_REQUIRES(mu_);
  // Whether a thread has published a deadline earlier than `wakeAtNs`, or is changing it.
  bool earlierDeadlineLocked(int64_t wakeAtNs) const TERN_REQUIRES(mu_);
  void run() TERN_EXCLUDES(mu_);

  Mutex mu_;
  std::condition_variable cv_;
  // Intrusive list of registered threads (ThreadState::prev/next).
  ThreadState* threads_ TERN_GUARDED_BY(mu_) = nullptr;
  // When the watchdog will look next (CLOCK_MONOTONIC ns, INT64_MAX: when woken); set
  // under mu_ before it waits, read by begin without it.
  std::atomic<int64_t> wakeAtNs_{INT64_MAX};
  // When the watchdog last saw a deadline (in a scan, or the one that woke it).
  int64_t lastDeadlineNs_ TERN_GUARDED_BY(mu_) = INT64_MIN / 2;
  std::atomic<uint64_t> scans_{0};
  bool stop_ TERN_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace tern::wasm
