#pragma once
// Preemption of runaway guests. A thread registers each invocation with its deadline; one
// watchdog thread scans the running invocations every millisecond and signals the threads
// whose deadline passed. The signal handler stops the guest at once, or, when the guest is
// inside a host function, at the moment that function returns. Registering costs no system
// call while the watchdog is awake; it sleeps after a quiet period and is woken by the next
// registration.

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
  // 0 for none.
  void begin(ThreadState& ts, int64_t deadlineNs) TERN_EXCLUDES(mu_);
  void end(ThreadState& ts) TERN_EXCLUDES(mu_);

  // A guest call nested in a running one on the same thread (a host call that runs another
  // function): it gets its own epoch, so a preemption aimed at it never stops the caller,
  // and the earlier of the two deadlines. leaveNested restores the caller's epoch and
  // deadline.
  struct Outer {
    uint64_t epoch;
    int64_t deadlineNs;
  };
  Outer enterNested(ThreadState& ts, int64_t deadlineNs) TERN_EXCLUDES(mu_);
  void leaveNested(ThreadState& ts, const Outer& outer) TERN_EXCLUDES(mu_);

 private:
  void run() TERN_EXCLUDES(mu_);

  Mutex mu_;
  std::condition_variable cv_;
  // Intrusive list of running invocations (ThreadState::prev/next).
  ThreadState* active_ TERN_GUARDED_BY(mu_) = nullptr;
  bool sleeping_ TERN_GUARDED_BY(mu_) = false;
  bool stop_ TERN_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace tern::wasm
