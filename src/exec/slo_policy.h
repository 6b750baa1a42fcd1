#pragma once
// The scheduler's decisions, as pure functions of a view (docs/design/scheduler.md):
//
//   planAllocations  each function's target (the capacity model's answer for its measured
//                    load) and its allocation of the node's worker slots: the targets when
//                    they fit, otherwise weighted max-min fair shares by water-filling;
//                    best-effort functions share what objectives leave
//   chooseNext       which waiting request a free slot goes to: earliest deadline among
//                    functions within their allocation, then best-effort work within its
//                    share, then whoever is least over its share (or plain FIFO)
//   predictCompletion  when a newly arrived request would finish, for admission control
//
// The executor holds the state (queues, credits, estimates) and calls these.

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "exec/capacity_model.h"

namespace tern::exec {

// Weighted max-min fair division of `capacity` among demands: nobody gets more than its
// demand, and capacity left by those below their weighted share is split among the rest in
// proportion to their weights (water-filling). Demands and weights must be >= 0 and finite;
// a zero weight gets only what others leave. The result sums to min(capacity, sum of
// demands).
std::vector<double> waterFill(double capacity, std::span<const double> demands,
                              std::span<const double> weights);

// What the planner sees of one function.
struct FunctionDemand {
  std::optional<Objective> objective;  // none: best effort
  double weight = 1;
  double ratePerSecond = 0;  // arrivals over the recent window
  double serviceMs = 0;      // mean service time of recent invocations; 0: none yet
};

struct FunctionAllocation {
  // Slots the function should have: the capacity model's answer for an objective; the
  // offered load (rate x service) for best effort.
  double target = 0;
  double allocation = 0;     // slots after fair sharing
  bool unreachable = false;  // the measured service time alone exceeds the objective
};

// Targets and allocations of `slots` worker slots. A function with no arrivals in the
// window has target 0; one with arrivals but no measured service time yet has target 1.
// An objective no number of slots can meet (service >= objective) is marked unreachable
// and targets its offered load.
std::vector<FunctionAllocation> planAllocations(uint32_t slots,
                                                std::span<const FunctionDemand> functions);

enum class SchedulingPolicy : uint8_t { kDeadline, kFifo };

// The head (oldest waiting request) of one function's queue, as dispatch sees it.
struct DispatchCandidate {
  bool hasObjective = false;
  double credit = 0;        // slot-time the function may still use within its allocation
  int64_t deadlineNs = 0;   // the head's arrival + objective (objective functions)
  uint64_t sequence = 0;    // node-wide arrival order of the head
};

// The index of the candidate that gets a free slot; `candidates` must not be empty.
// kFifo: the oldest head. kDeadline, in order: functions with an objective and credit
// >= 0, earliest deadline first; best-effort functions with credit >= 0, oldest first;
// then (work conservation) functions over their share, the largest credit first,
// objectives before best effort.
size_t chooseNext(SchedulingPolicy policy, std::span<const DispatchCandidate> candidates);

// When a request arriving at `nowNs` would finish: `queuedAhead` requests of its function
// wait before it and the function drains them at `slots` worker slots, each taking
// `serviceNs`; the request itself waits on average half a service time for a slot to free.
int64_t predictCompletion(int64_t nowNs, uint32_t queuedAhead, double serviceNs, double slots);

}  // namespace tern::exec
