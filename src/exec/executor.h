#pragma once
// Admission and execution slots. The node has a fixed number of worker slots (default one
// per core); every invocation holds one while it runs, on the thread that admitted it.
// A function may also cap its own concurrency. A request that finds no free slot waits in
// its function's queue and is started by whichever invocation frees a slot first; the
// queues together are bounded, and a request that finds them full is refused at once
// (HTTP 429), so memory and latency stay bounded under any load. stop() refuses new work
// and waits for the admitted work to end.
//
// Which waiting request a freed slot goes to is the scheduling policy (slo_policy.h):
// plain FIFO, or the deadline scheduler (docs/design/scheduler.md). The deadline
// scheduler gives functions with a response-time objective allocations of the slots from
// the capacity model (weighted fair shares when oversubscribed), dispatches earliest
// deadline first within them, and refuses early a request predicted to miss its deadline
// (with confidence kRefusalConfidence, or kOverloadRefusalConfidence while the functions
// offer more work than the slots can serve).
// It re-plans every control period, and sooner on a sharp rise in a function's arrivals,
// from estimates of each function's real invocations; the clock is injected.

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "exec/capacity_model.h"
#include "exec/load_window.h"
#include "exec/slo_policy.h"
#include "util/thread_annotations.h"

namespace tern::exec {

struct FunctionSchedule;

// Per-function admission state, owned by whoever owns the function (FunctionTable).
struct AdmissionState {
  AdmissionState();
  ~AdmissionState();
  std::atomic<uint32_t> limit{0};  // max concurrent invocations; 0 = only the node's slots
  // The function's objective and weight as deployed: sloMs 0 is best effort, percentile 0
  // a mean objective.
  std::atomic<double> sloMs{0};
  std::atomic<double> percentile{0};
  std::atomic<double> weight{1};
  uint32_t running = 0;            // guarded by the Executor's mutex
  // Queue, estimates and allocation; guarded by the Executor's mutex. Shared with the
  // executor's list of known functions, so it outlives a removed function's entry.
  std::shared_ptr<FunctionSchedule> schedule;
};

enum class Admission { kRunNow, kQueued, kRejected, kStopped };

// The error a refused request gets (kSaturated, HTTP 429), saying why; `sloMs` is the
// function's objective (0: none).
Error refusalError(Refusal reason, double sloMs);

class Executor {
 public:
  struct Options {
    uint32_t slots = 2;
    uint32_t queueLimit = 256;  // requests waiting for a slot, node-wide
  };
  struct Scheduling {
    SchedulingPolicy policy = SchedulingPolicy::kFifo;
    std::chrono::milliseconds controlPeriod{250};  // re-planning interval, at most 1 s
    // Monotonic time in nanoseconds; unset: std::chrono::steady_clock.
    std::function<int64_t()> clock;
  };
  explicit Executor(Options options);
  Executor(Options options, Scheduling scheduling);
  ~Executor();

  // The executor's clock: request arrival times passed to the calls below come from it.
  int64_t now() const;
  // Whether that clock is CLOCK_MONOTONIC (none was injected): a time the caller read from
  // CLOCK_MONOTONIC a moment ago can then stand for now().
  bool onMonotonicClock() const { return !scheduling_.clock; }

  // Asks for a slot for `fn` for a request that arrived at `arrivalNs`. kRunNow: the
  // caller runs the invocation now and calls finish() after. kQueued: `start` is called
  // later (from the thread of a finishing invocation) once a slot is reserved for it; it
  // must hand the work off promptly and the work must call finish(). A queued request the
  // scheduler gives up on (Refusal::kExpired) gets `refuse` instead, once, and holds no
  // slot. kRejected: refused now, with the reason in `*why` when given. kStopped: the node
  // is stopping.
  Admission admit(AdmissionState& fn, int64_t arrivalNs, std::function<void()> start,
                  std::function<void(Refusal)> refuse, Refusal* why = nullptr);
  Admission admit(AdmissionState& fn, std::function<void()> start) {
    return admit(fn, now(), std::move(start), {});
  }
  // The allocation-free first step of admit: takes a slot if one is free for `fn` and
  // nobody is waiting. When it returns kQueued, call admit() to wait in the queue.
  Admission tryRunNow(AdmissionState& fn, int64_t arrivalNs);
  Admission tryRunNow(AdmissionState& fn) { return tryRunNow(fn, now()); }
  // Releases the slot of an invocation that arrived at `arrivalNs` and ran for
  // `serviceNs` (its response time and service time feed the estimates). `endNs`: the time
  // it ended on the executor's clock, when the caller has it; 0: now().
  void finish(AdmissionState& fn, int64_t arrivalNs, int64_t serviceNs, int64_t endNs = 0);
  // Releases a slot without recording an invocation (it did not run).
  void finish(AdmissionState& fn);

  // Refuses new work from now on and waits (up to `timeout`) until nothing runs or waits.
  bool stop(std::chrono::milliseconds timeout);

  struct Stats {
    uint32_t slots = 0;
    uint32_t running = 0;
    uint32_t queued = 0;
    uint64_t rejected = 0;
    SchedulingPolicy policy = SchedulingPolicy::kFifo;
    std::chrono::milliseconds controlPeriod{0};
    uint64_t replans = 0;
    uint64_t sharpReplans = 0;        // of which triggered by a sharp rise in arrivals
    int64_t lastReplanNs = 0;         // how long the last re-plan took
    int64_t maxReplanNs = 0;
  };
  Stats stats() const;

  // One function's view from the scheduler: objective, estimates, target and allocation.
  struct FunctionReport {
    std::optional<Objective> objective;
    double weight = 1;
    WindowEstimate window;
    ServiceEstimate service;
    double targetSlots = 0;
    double allocatedSlots = 0;
    bool unreachable = false;
    uint32_t running = 0;
    uint32_t queued = 0;
    // Worker-slot time its invocations have held (dispatch to release, so tern's own work
    // around the guest counts too), since the function was deployed.
    double slotSeconds = 0;
    std::array<uint64_t, kRefusalKinds> refusedTotal{};  // since the function was deployed
  };
  FunctionReport report(const AdmissionState& fn) const;

 private:
  bool canRun(const AdmissionState& fn) const TERN_REQUIRES(mu_);
  // kRunNow (slot taken), kQueued (none free, or others wait) or kStopped; mu_ held.
  Admission takeSlotLocked(AdmissionState& fn, int64_t nowNs) TERN_REQUIRES(mu_);
  // Keeps the function in the known list and counts the arrival; mu_ held.
  void noteArrivalLocked(AdmissionState& fn, int64_t nowNs) TERN_REQUIRES(mu_);
  void replanLocked(int64_t nowNs, bool sharp) TERN_REQUIRES(mu_);
  void maybeReplanLocked(int64_t nowNs) TERN_REQUIRES(mu_);
  // Starts waiting requests while slots are free; returns the calls to make unlocked.
  void dispatchLocked(int64_t nowNs, std::vector<std::function<void()>>& calls) TERN_REQUIRES(mu_);
  void releaseLocked(AdmissionState& fn, int64_t nowNs) TERN_REQUIRES(mu_);
  // The probability that a request of `fn` arriving now misses `deadlineNs` if it queues
  // (forecastAdmission over the node's queues); mu_ held.
  double predictLateLocked(AdmissionState& fn, int64_t nowNs, int64_t deadlineNs) TERN_REQUIRES(mu_);

  const Options options_;
  const Scheduling scheduling_;
  mutable Mutex mu_;
  std::condition_variable drained_;
  uint32_t running_ TERN_GUARDED_BY(mu_) = 0;
  uint32_t queued_ TERN_GUARDED_BY(mu_) = 0;
  uint64_t rejected_ TERN_GUARDED_BY(mu_) = 0;
  uint64_t sequence_ TERN_GUARDED_BY(mu_) = 0;
  bool stopping_ TERN_GUARDED_BY(mu_) = false;
  // Functions with waiting requests.
  std::vector<AdmissionState*> backlogged_ TERN_GUARDED_BY(mu_);
  // Every function seen recently, for planning (pruned when idle and removed).
  std::vector<std::shared_ptr<FunctionSchedule>> known_ TERN_GUARDED_BY(mu_);
  int64_t lastPlanNs_ TERN_GUARDED_BY(mu_) = INT64_MIN;
  bool joined_ TERN_GUARDED_BY(mu_) = false;  // a function joined the plan since the last re-plan
  int64_t lastSharpPlanNs_ TERN_GUARDED_BY(mu_) = INT64_MIN;  // INT64_MIN: never
  uint64_t replans_ TERN_GUARDED_BY(mu_) = 0;
  uint64_t sharpReplans_ TERN_GUARDED_BY(mu_) = 0;
  int64_t lastReplanNs_ TERN_GUARDED_BY(mu_) = 0;
  int64_t maxReplanNs_ TERN_GUARDED_BY(mu_) = 0;
  // The probability of missing at or above which a request is refused (refusalThreshold
  // of the last plan).
  double refusalThreshold_ TERN_GUARDED_BY(mu_) = kRefusalConfidence;
};

}  // namespace tern::exec
