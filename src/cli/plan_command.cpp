#include "cli/plan_command.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <ostream>

namespace tern::cli {

std::string formatCapacityPlan(const exec::CapacityQuery& q, const exec::CapacityPlan& p) {
  std::string out = fmt::format("slots: {}\n", p.slots);
  out += fmt::format("offered load: {:.3g} slots busy on average (utilisation {:.1f}% of {})\n",
                     p.offeredLoad, p.utilisation * 100, p.slots);
  out += fmt::format("P(wait > 0): {:.2f}%\n", p.probWait * 100);
  out += fmt::format("mean wait: {:.3g} ms (mean response {:.3g} ms)\n", p.meanWaitMs,
                     p.meanWaitMs + q.serviceMs);
  double pct = q.objective.percentile.value_or(95);
  out += fmt::format("p{:g} wait: {:.3g} ms\n", pct, p.waitAtPercentileMs);
  if (q.objective.percentile) {
    out += fmt::format("P(wait > {:g} ms): {:.2f}% (objective: at most {:.3g}%)\n",
                       p.waitBudgetMs, p.probWaitOverBudget * 100, 100 - pct);
  } else {
    out += fmt::format("objective: mean response <= {:g} ms\n", q.objective.sloMs);
  }
  return out;
}

int planCapacityCommand(const PlanCapacityOptions& o, OutputFormat format, std::ostream& out,
                        std::ostream& err) {
  auto fail = [&](const Error& e) {
    err << "tern: " << e.describe() << "\n";
    return errorKind(e.code()).exitStatus;
  };
  if (o.mean == o.percentile.has_value()) {
    return fail(Error(ErrorCode::kInvalidArgument,
                      "give exactly one of --percentile P (a percentile objective) and --mean"));
  }
  exec::CapacityQuery q{o.ratePerSecond, o.serviceMs, {o.sloMs, o.percentile}};
  auto plan = exec::planCapacity(q);
  if (!plan.ok()) return fail(plan.error());
  if (format == OutputFormat::kJson) {
    nlohmann::json j{{"slots", plan->slots},
                     {"offered_load", plan->offeredLoad},
                     {"utilisation", plan->utilisation},
                     {"prob_wait", plan->probWait},
                     {"mean_wait_ms", plan->meanWaitMs},
                     {"wait_budget_ms", plan->waitBudgetMs},
                     {"prob_wait_over_budget", plan->probWaitOverBudget},
                     {"wait_at_percentile_ms", plan->waitAtPercentileMs}};
    out << j.dump() << "\n";
  } else {
    out << formatCapacityPlan(q, *plan);
  }
  out.flush();
  return 0;
}

}  // namespace tern::cli
