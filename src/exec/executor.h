#pragma once
// Admission and execution slots. The node has a fixed number of worker slots (default one
// per core); every invocation holds one while it runs, on the thread that admitted it.
// A function may also cap its own concurrency. A request that finds no free slot waits in a
// bounded FIFO queue and is started by whichever invocation frees a slot first; when that
// queue is full the request is refused at once (HTTP 429), so memory and latency stay
// bounded under any load. stop() refuses new work and waits for the admitted work to end.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>

namespace tern::exec {

// Per-function admission state, owned by whoever owns the function (FunctionTable).
struct AdmissionState {
  std::atomic<uint32_t> limit{0};  // max concurrent invocations; 0 = only the node's slots
  uint32_t running = 0;            // guarded by the Executor's mutex
};

enum class Admission { kRunNow, kQueued, kRejected, kStopped };

class Executor {
 public:
  struct Options {
    uint32_t slots = 2;
    uint32_t queueLimit = 256;  // requests waiting for a slot, node-wide
  };
  explicit Executor(Options options);

  // Asks for a slot for `fn`. kRunNow: the caller runs the invocation now and calls
  // finish(fn) after. kQueued: `start` is called later (from the thread of a finishing
  // invocation) once a slot is reserved for it; it must hand the work off promptly and the
  // work must call finish(fn). kRejected: queue full. kStopped: the node is stopping.
  Admission admit(AdmissionState& fn, std::function<void()> start);
  // The allocation-free first step of admit: takes a slot if one is free for `fn` and
  // nobody is waiting. When it returns kQueued, call admit() to wait in the queue.
  Admission tryRunNow(AdmissionState& fn);
  void finish(AdmissionState& fn);

  // Refuses new work from now on and waits (up to `timeout`) until nothing runs or waits.
  bool stop(std::chrono::milliseconds timeout);

  struct Stats {
    uint32_t slots = 0;
    uint32_t running = 0;
    uint32_t queued = 0;
    uint64_t rejected = 0;
  };
  Stats stats() const;

 private:
  bool canRun(const AdmissionState& fn) const;
  // kRunNow (slot taken), kQueued (none free, or others wait) or kStopped; mu_ held.
  Admission takeSlotLocked(AdmissionState& fn);

  const Options options_;
  mutable std::mutex mu_;
  std::condition_variable drained_;
  uint32_t running_ = 0;
  uint64_t rejected_ = 0;
  bool stopping_ = false;
  struct Waiting {
    AdmissionState* fn;
    std::function<void()> start;
  };
  std::deque<Waiting> queue_;
};

}  // namespace tern::exec
