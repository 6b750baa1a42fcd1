#pragma once
// Workflows from the command line (docs/cli.md, "Workflows"):
//   tern workflow deploy NAME FILE.yaml [--types MAP.json] [--policy P] [--local-capacity N]
//                                       [--attempts N] [--plan PLAN.json]
//   tern workflow run NAME --input FILE.json | --data JSON   (prints the output JSON)
//   tern workflow ls | rm NAME | runs NAME | trace RUN_ID

#include <iosfwd>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>

#include "cli/node_client.h"

namespace tern::cli {

struct WorkflowDeployOptions {
  std::string name;
  std::string file;
  std::string types;   // the mapping file; empty: none
  std::string policy;  // empty: the node's default (local-first)
  std::optional<uint32_t> localCapacity;
  std::optional<uint32_t> attempts;
  std::string plan;    // a plan file (tern plan workflow --json); empty: none
};

// The JSON body of PUT /v1/workflows/NAME from the files. Errors: kInvalidArgument, kIo.
Result<std::string> workflowDeployBody(const WorkflowDeployOptions& options);

int workflowDeployCommand(const NodeOptions& node, const WorkflowDeployOptions& options,
                          std::ostream& out, std::ostream& err);

struct WorkflowRunOptions {
  std::string name;
  std::optional<std::string> input;  // a file; "-" is stdin
  std::optional<std::string> data;
};
int workflowRunCommand(const NodeOptions& node, const WorkflowRunOptions& options,
                       std::istream& in, std::ostream& out, std::ostream& err);

int workflowListCommand(const NodeOptions& node, std::ostream& out, std::ostream& err);
int workflowRemoveCommand(const NodeOptions& node, const std::string& name, std::ostream& out,
                          std::ostream& err);
int workflowRunsCommand(const NodeOptions& node, const std::string& name, std::ostream& out,
                        std::ostream& err);
// The human form of a run's trace: the run, then one line per task.
std::string formatTrace(const nlohmann::json& trace);
// `tern profile workflow NAME [--runs N] [--prices FILE]`: the Costless profile the node
// measured from the workflow's recent runs (docs/design/costless.md), with the prices
// from FILE ({"gb_second", "request", "transition", "edge_fixed"}) when given; printed
// as JSON for `tern plan workflow --profile`.
struct ProfileOptions {
  std::string name;
  uint32_t runs = 20;
  std::string prices;  // empty: the node's defaults
};
int profileWorkflowCommand(const NodeOptions& node, const ProfileOptions& options,
                           std::ostream& out, std::ostream& err);

int workflowTraceCommand(const NodeOptions& node, const std::string& runId, std::ostream& out,
                         std::ostream& err);

}  // namespace tern::cli
