#pragma once
// Preemption of runaway guests. One watchdog thread scans the threads registered with it
// every millisecond and signals those whose running invocation is past its deadline. The
// signal handler stops the guest at once, or, when the guest is inside a host function, at
// the moment that function returns. The watchdog sleeps after a quiet period and is woken
// by the next invocation with a deadline.
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

 private:
  // Publishes the thread's running epoch and deadline for the watchdog's scan.
  static void publish(ThreadState& ts, uint64_t epoch, int64_t deadlineNs);
  // Wakes the watchdog if it sleeps; call after publishing a deadline.
  void wakeForDeadline() TERN_EXCLUDES(mu_);
  void registerThread(ThreadState& ts) TERN_EXCLUDES(mu_);
  void unlinkLocked(ThreadState& ts) TERN_REQUIRES(mu_);
  // Signals every registered thread past its deadline; whether any has a deadline.
  bool scanLocked(int64_t nowNs) TERN_REQUIRES(mu_);
  void run() TERN_EXCLUDES(mu_);

  Mutex mu_;
  std::condition_variable cv_;
  // Intrusive list of registered threads (ThreadState::prev/next).
  ThreadState* threads_ TERN_GUARDED_BY(mu_) = nullptr;
  // Set (under mu_) while the watchdog waits without a tick; read by begin without it.
  std::atomic<bool> sleeping_{false};
  bool stop_ TERN_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace tern::wasm
