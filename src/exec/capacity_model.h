#pragma once
// The queueing model that sizes a function's share of worker slots (LaSS, Wang et al.,
// HPDC 2021): requests arrive as a Poisson stream at rate lambda, each holds one worker
// slot for an exponentially distributed service time with mean s, and c slots serve one
// queue (M/M/c). Erlang C gives the probability that a request waits, and the waiting
// time beyond that is exponential with rate c/s - lambda, so
//
//   P(wait > t) = C(c, a) * exp(-(c/s - lambda) t),   E[wait] = C(c, a) / (c/s - lambda)
//
// with offered load a = lambda * s. The smallest c that meets the objective is the
// function's target. Everything here is a pure function; see docs/design/scheduler.md.

#include <cstdint>
#include <optional>

#include "util/error.h"

namespace tern::exec {

// A response-time objective: `sloMs` at percentile `percentile` (for example p95 <= 20 ms),
// or the mean response time when `percentile` is unset.
struct Objective {
  double sloMs = 0;
  std::optional<double> percentile;  // in (0, 100)
};

// The largest plan the model searches; a demand beyond it is reported as an error.
inline constexpr uint32_t kMaxPlannedSlots = 100000;

// Checks an objective as given at deploy or on the command line: a finite positive
// objective, a percentile strictly between 0 and 100. Errors: kInvalidArgument.
Result<void> checkObjective(const Objective& objective);
// Checks a weight (share under overload): finite and positive. Errors: kInvalidArgument.
Result<void> checkWeight(double weight);

// Erlang C: the probability that an arrival waits in an M/M/c queue with `slots` servers
// and offered load `offeredLoad` (Erlangs). Computed from the Erlang B recurrence
// B(k) = a B(k-1) / (k + a B(k-1)), which stays within [0, 1] (no factorials or powers).
// 1 when the queue is unstable (offeredLoad >= slots) or slots is 0.
double erlangC(uint32_t slots, double offeredLoad);

struct CapacityQuery {
  double ratePerSecond = 0;  // lambda
  double serviceMs = 0;      // mean service time s
  Objective objective;
};

struct CapacityPlan {
  uint32_t slots = 0;          // the smallest c that meets the objective
  double offeredLoad = 0;      // a = lambda * s, in slots
  double utilisation = 0;      // a / c
  double probWait = 0;         // C(c, a): P(wait > 0)
  double meanWaitMs = 0;       // E[wait]
  double waitBudgetMs = 0;     // T - s: the wait the objective leaves
  double probWaitOverBudget = 0;  // P(wait > T - s)
  // The wait at the objective's percentile (for a mean objective, at the 95th), 0 when at
  // least that share of requests does not wait at all.
  double waitAtPercentileMs = 0;
};

// The smallest number of slots c such that P(wait > T - s) <= 1 - P (percentile
// objective) or E[wait] + s <= T (mean objective), with the predicted waiting figures.
// Errors (kInvalidArgument): a rate or service time that is zero, negative or not finite;
// an invalid objective; an objective not longer than the service time (no number of slots
// can meet it); a demand that needs more than kMaxPlannedSlots.
Result<CapacityPlan> planCapacity(const CapacityQuery& query);

// The predicted waiting figures of an M/M/c queue with `slots` servers (slots > a).
CapacityPlan evaluateSlots(const CapacityQuery& query, uint32_t slots);

}  // namespace tern::exec
