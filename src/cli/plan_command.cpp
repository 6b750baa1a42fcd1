#include "cli/plan_command.h"

#include <fmt/format.h>

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <ostream>

#include "cli/output_format.h"
#include "workflow/afcl.h"
#include "workflow/costless.h"

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

namespace {

Result<std::string> readFileText(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Error(ErrorCode::kIo, fmt::format("cannot read {}", path));
  return std::string(std::istreambuf_iterator<char>(f), {});
}

std::string planLine(const workflow::Plan& p) {
  std::string groups;
  for (const auto& g : p.cloudGroups) {
    std::string names;
    for (const auto& n : g) names += fmt::format("{}{}", names.empty() ? "" : " ", n);
    groups += fmt::format("{}[{}]", groups.empty() ? "" : " ", names);
  }
  std::string edge;
  for (const auto& n : p.edgeFunctions) edge += fmt::format("{}{}", edge.empty() ? "" : " ", n);
  return fmt::format("edge: {:<24} cloud: {:<32} price {:.9g}  latency {:.3f} ms",
                     edge.empty() ? "-" : edge, groups.empty() ? "-" : groups, p.price, p.latencyMs);
}

}  // namespace

int planWorkflowCommand(const PlanWorkflowOptions& o, OutputFormat format, std::ostream& out,
                        std::ostream& err) {
  auto yaml = readFileText(o.file);
  if (!yaml.ok()) return reportFailure(err, yaml.error());
  auto wf = workflow::parseAfcl(*yaml);
  if (!wf.ok()) return reportFailure(err, Error(ErrorCode::kInvalidArgument, o.file + ": " + wf.error().message()));
  auto chain = workflow::chainOf(**wf);
  if (!chain.ok()) return reportFailure(err, Error(ErrorCode::kInvalidArgument, o.file + ": " + chain.error().message()));
  auto text = readFileText(o.profile);
  if (!text.ok()) return reportFailure(err, text.error());
  auto profile = workflow::parseProfile(*text);
  if (!profile.ok()) return reportFailure(err, Error(ErrorCode::kInvalidArgument, o.profile + ": " + profile.error().message()));
  auto best = workflow::solvePlan(*chain, *profile, o.latencyMs);
  if (!best.ok()) return reportFailure(err, best.error());
  const int infeasibleStatus = errorKind(ErrorCode::kConflict).exitStatus;
  if (o.all) {
    auto all = workflow::allPlans(*chain, *profile);
    if (!all.ok()) return reportFailure(err, all.error());
    if (format == OutputFormat::kJson) {
      nlohmann::json list = nlohmann::json::array();
      for (const auto& p : *all) list.push_back(workflow::planJson(p, p.latencyMs <= o.latencyMs));
      out << list.dump() << "\n";
    } else {
      for (const auto& p : *all) {
        bool chosen = *best && p.config.edge == (*best)->config.edge && p.config.groups == (*best)->config.groups;
        out << (chosen ? "* " : p.latencyMs <= o.latencyMs ? "  " : "x ") << planLine(p) << "\n";
      }
      out << "(* the plan for " << o.latencyMs << " ms; x: slower than the bound)\n";
    }
    return *best ? 0 : infeasibleStatus;
  }
  if (!*best) {
    if (format == OutputFormat::kJson) {
      out << nlohmann::json{{"feasible", false}}.dump() << "\n";
    } else {
      out << fmt::format("infeasible: no configuration of the chain meets {} ms\n", o.latencyMs);
    }
    return infeasibleStatus;
  }
  const auto& p = **best;
  if (format == OutputFormat::kJson) {
    out << workflow::planJson(p, true).dump() << "\n";
    return 0;
  }
  out << fmt::format("plan for {} functions within {} ms:\n", chain->size(), o.latencyMs);
  std::string edge;
  for (const auto& n : p.edgeFunctions) edge += (edge.empty() ? "" : " ") + n;
  out << "  edge:         " << (edge.empty() ? "-" : edge) << "\n";
  for (size_t i = 0; i < p.cloudGroups.size(); ++i) {
    std::string names;
    for (const auto& n : p.cloudGroups[i]) names += (names.empty() ? "" : " ") + n;
    out << fmt::format("  cloud group {}: {}\n", i + 1, names);
  }
  out << fmt::format("  price:        {:.9g}\n  latency:      {:.3f} ms\n", p.price, p.latencyMs);
  return 0;
}

}  // namespace tern::cli
