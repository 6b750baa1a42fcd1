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
//   forecastAdmission  when a newly arrived request would finish (mean, spread and the
//                    probability of missing its deadline), for admission control
//   stillInTime      whether a waiting request can still meet its deadline if it starts now
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

// Admission refuses a request only when it is at least this likely to miss its deadline
// (and a waiting request only when it is at least this likely to miss it if started now),
// while the node has slot time to spare: a refusal is a certain miss, so an uncertain
// prediction lets the request wait.
inline constexpr double kRefusalConfidence = 0.9;
// The same threshold while the node is overloaded: slot time is then the scarce resource
// and a request admitted there displaces one that would have used it, so a request is run
// only when it is more likely than not to be answered within its objective.
inline constexpr double kOverloadRefusalConfidence = 0.5;
// While the node is overloaded, a waiting request is started only when its function's
// recent service times say it finishes in time with at least this probability. Another
// waiting request can always use the slot then, so a start that finishes late wastes slot
// time another function's share was owed; at arrival the 50% threshold above still
// applies (a request refused there is one nobody waited for).
inline constexpr double kOverloadStartConfidence = 0.95;

// Whether the functions offer more work than `slots` can serve: the sum of their arrival
// rates times their mean service times exceeds the slots. (Targets do not tell: each is a
// whole number of slots for the function alone, so two light functions target two slots
// while one is enough for both.)
bool overloaded(uint32_t slots, std::span<const FunctionDemand> functions);

// The probability of missing its deadline at or above which a request is refused:
// kOverloadRefusalConfidence when the node is overloaded, kRefusalConfidence otherwise.
double refusalThreshold(uint32_t slots, std::span<const FunctionDemand> functions);

// The quantile of a function's recent service times a waiting request must still have
// before its deadline to be started (see stillInTime): 1 - the refusal threshold, or
// kOverloadStartConfidence when the node is overloaded.
double startQuantile(uint32_t slots, std::span<const FunctionDemand> functions);

// Another function as admission control sees it when a request of an objective function
// arrives.
struct CompetingFunction {
  std::optional<double> objectiveNs;  // its response-time objective; none: best effort
  bool withinShare = true;            // credit >= 0: dispatched before functions over theirs
  uint32_t running = 0;
  // Its waiting requests that earliest-deadline-first puts before the new one (deadline no
  // later than the new one's); for best effort, all of its waiting requests.
  uint32_t queuedBefore = 0;
  uint32_t queued = 0;                // all of its waiting requests
  double ratePerSecond = 0;           // recent arrivals
  double allocation = 0;              // slots from the last plan
  double serviceMeanNs = 0;
  double serviceVarianceNs2 = 0;
};

// A newly arrived request of a function with an objective.
struct AdmissionView {
  int64_t nowNs = 0;
  int64_t deadlineNs = 0;
  double slots = 1;          // slots the function may use (the node's, or its own limit)
  bool withinShare = true;   // the function's credit >= 0
  uint32_t queuedAhead = 0;  // its own waiting requests (all dispatched before this one)
  uint32_t running = 0;      // its own running invocations
  double serviceMeanNs = 0;  // its measured service time
  double serviceVarianceNs2 = 0;
  std::span<const CompetingFunction> others;
};

struct CompletionForecast {
  double startNs = 0;           // expected time the request gets a slot
  double completionNs = 0;      // expected completion
  double sdNs = 0;              // standard deviation of the completion time
  double lateProbability = 0;   // P(completion > deadline)
};

// When the request would finish, following the dispatch order (chooseNext): before it run
// the remainder of what is running (half a service time each, on average), its own
// function's waiting requests, and other functions' requests that dispatch first: from a
// function in a better class (objective within its share < best effort within its share <
// objective over its share), all of its waiting requests; from one in the same class
// (objective functions), those with earlier deadlines. Other objective functions' arrivals
// while the request waits also go first when their deadline is earlier than its own (they
// arrive with a deadline their objective later), up to their allocation when the request's
// function is within its share (beyond it they are over theirs). The work drains at
// `slots`; service times are independent, so means and variances add, and the probability
// of missing the deadline uses a normal approximation of the sum.
CompletionForecast forecastAdmission(const AdmissionView& view);

// Whether a request with `remainingNs` until its deadline can still meet it if it starts
// now: false when `startServiceNs` (the startQuantile of its function's recent service
// times) does not fit.
bool stillInTime(double remainingNs, double startServiceNs);

}  // namespace tern::exec
