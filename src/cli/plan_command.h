#pragma once
// `tern plan capacity`: the worker slots a function needs to meet a response-time
// objective at a given arrival rate and service time, from the M/M/c model the node's
// scheduler uses (exec/capacity_model.h, docs/design/scheduler.md). Runs locally.

#include <iosfwd>
#include <optional>
#include <string>

#include "cli/node_client.h"
#include "exec/capacity_model.h"

namespace tern::cli {

struct PlanCapacityOptions {
  double ratePerSecond = 0;
  double serviceMs = 0;
  double sloMs = 0;
  std::optional<double> percentile;  // unset: a mean objective (--mean)
  bool mean = false;
};

// The plan as text: a line "slots: N", then the predicted waiting figures.
std::string formatCapacityPlan(const exec::CapacityQuery& query, const exec::CapacityPlan& plan);

// Prints the plan (text, or JSON with kJson) on `out`; on bad input one line
// `tern: invalid argument: ...` on `err` and the error's exit status.
int planCapacityCommand(const PlanCapacityOptions& options, OutputFormat format,
                        std::ostream& out, std::ostream& err);

// `tern plan workflow FILE.yaml --profile PROFILE.json --latency-ms L [--all]`: the
// cheapest edge/cloud split and cloud fusion of the workflow's chain that meets L
// (workflow/costless.h, docs/design/costless.md). Runs locally.
struct PlanWorkflowOptions {
  std::string file;
  std::string profile;
  double latencyMs = 0;
  bool all = false;
};

// Prints the plan (or every configuration with --all); "infeasible" and the exit status
// of kConflict when no configuration meets the bound; bad input is one `tern: ...` line on
// `err` and no plan.
int planWorkflowCommand(const PlanWorkflowOptions& options, OutputFormat format,
                        std::ostream& out, std::ostream& err);

}  // namespace tern::cli
