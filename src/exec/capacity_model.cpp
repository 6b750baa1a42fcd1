#include "exec/capacity_model.h"

#include <fmt/format.h>

#include <cmath>

namespace tern::exec {

namespace {

Error invalid(std::string message) { return Error(ErrorCode::kInvalidArgument, std::move(message)); }

// Erlang C from Erlang B for c servers: C = B / (1 - rho (1 - B)), rho = a / c < 1.
double erlangCFromB(double b, uint32_t slots, double offeredLoad) {
  double rho = offeredLoad / slots;
  return b / (1 - rho * (1 - b));
}

// Fills the waiting figures of `plan` for c = plan.slots, given C(c, a).
void fillFigures(CapacityPlan& plan, const CapacityQuery& q, double probWait) {
  double lambda = q.ratePerSecond;
  double s = q.serviceMs / 1000;
  double c = plan.slots;
  double drain = c / s - lambda;  // rate of the exponential tail of the wait, per second
  plan.offeredLoad = lambda * s;
  plan.utilisation = plan.offeredLoad / c;
  plan.probWait = probWait;
  plan.meanWaitMs = probWait / drain * 1000;
  plan.waitBudgetMs = q.objective.sloMs - q.serviceMs;
  plan.probWaitOverBudget = probWait * std::exp(-drain * plan.waitBudgetMs / 1000);
  double tail = 1 - q.objective.percentile.value_or(95) / 100;
  plan.waitAtPercentileMs = probWait <= tail ? 0 : std::log(probWait / tail) / drain * 1000;
}

bool meets(const CapacityPlan& plan, const CapacityQuery& q) {
  if (q.objective.percentile) {
    return plan.probWaitOverBudget <= 1 - *q.objective.percentile / 100;
  }
  return plan.meanWaitMs + q.serviceMs <= q.objective.sloMs;
}

}  // namespace

Result<void> checkObjective(const Objective& o) {
  if (!std::isfinite(o.sloMs) || o.sloMs <= 0) {
    return invalid(fmt::format("the objective must be a positive number of milliseconds, got {}",
                               o.sloMs));
  }
  if (o.percentile) {
    double p = *o.percentile;
    if (!std::isfinite(p) || p <= 0 || p >= 100) {
      return invalid(fmt::format(
          "the percentile must be strictly between 0 and 100 (for example 95 or 99.9), got {}",
          p));
    }
  }
  return {};
}

Result<void> checkWeight(double weight) {
  if (!std::isfinite(weight) || weight <= 0) {
    return invalid(fmt::format("the weight must be a positive number, got {}", weight));
  }
  return {};
}

double erlangC(uint32_t slots, double offeredLoad) {
  if (slots == 0 || !(offeredLoad < slots)) return 1;
  if (offeredLoad <= 0) return 0;
  double b = 1;
  for (uint32_t k = 1; k <= slots; ++k) b = offeredLoad * b / (k + offeredLoad * b);
  return erlangCFromB(b, slots, offeredLoad);
}

CapacityPlan evaluateSlots(const CapacityQuery& q, uint32_t slots) {
  CapacityPlan plan;
  plan.slots = slots;
  fillFigures(plan, q, erlangC(slots, q.ratePerSecond * q.serviceMs / 1000));
  return plan;
}

Result<CapacityPlan> planCapacity(const CapacityQuery& q) {
  if (!std::isfinite(q.ratePerSecond) || q.ratePerSecond <= 0) {
    return invalid(fmt::format("the arrival rate must be a positive number of requests per "
                               "second, got {}",
                               q.ratePerSecond));
  }
  if (!std::isfinite(q.serviceMs) || q.serviceMs <= 0) {
    return invalid(fmt::format("the service time must be a positive number of milliseconds, "
                               "got {}",
                               q.serviceMs));
  }
  if (auto ok = checkObjective(q.objective); !ok.ok()) return ok.error();
  if (q.objective.sloMs <= q.serviceMs) {
    return invalid(fmt::format("the objective ({} ms) is not longer than the service time "
                               "({} ms): no number of slots can meet it",
                               q.objective.sloMs, q.serviceMs));
  }
  double a = q.ratePerSecond * q.serviceMs / 1000;
  if (!(a < kMaxPlannedSlots)) {
    return invalid(fmt::format("the offered load ({:.0f} slots busy on average) exceeds the "
                               "model's limit of {} slots",
                               a, kMaxPlannedSlots));
  }
  // B(k) for k = 1, 2, ...; a stable queue needs c > a, and every larger c is tried in turn.
  double b = 1;
  for (uint32_t c = 1; c <= kMaxPlannedSlots; ++c) {
    b = a * b / (c + a * b);
    if (!(a < c)) continue;
    CapacityPlan plan;
    plan.slots = c;
    fillFigures(plan, q, erlangCFromB(b, c, a));
    if (meets(plan, q)) return plan;
  }
  return invalid(fmt::format("meeting the objective needs more than {} slots",
                             kMaxPlannedSlots));
}

}  // namespace tern::exec
