#pragma once
// `tern up` and `tern down`: an application from its manifest (docs/manifest.md).
//
//   tern up [-f tern.yaml] [--dry-run]    build what changed, print the plan, apply it
//   tern down [-f tern.yaml] [--dry-run]  remove what the manifest declares and the app owns
//
// Everything is checked (the manifest, its files, cycles) and built before the first
// change; the plan (manifest/plan.h) is printed before it is applied; a step that fails
// stops the run with one line saying what was applied and what was not.

#include <iosfwd>
#include <map>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "cli/node_client.h"
#include "manifest/manifest.h"
#include "manifest/plan.h"

namespace tern::cli {

struct UpOptions {
  std::string file = "tern.yaml";
  bool dryRun = false;  // print the plan and change nothing on the node
};

int upCommand(const NodeOptions& node, const UpOptions& options, std::ostream& out,
              std::ostream& err);
int downCommand(const NodeOptions& node, const UpOptions& options, std::ostream& out,
                std::ostream& err);

// Pure pieces, for tests.

// A version as GET /v1/functions/NAME answers it, as the plan compares it.
manifest::FunctionState functionStateFromJson(const nlohmann::json& version);

// What a workflow calls, from its AFCL text and its type mapping's text (empty: none): each
// function task's function (the mapping's tern resources, else the type in lower case),
// and the functions and workflows its Serverless resources reach at /fn/NAME or /wf/NAME.
// Errors: kInvalidArgument with the AFCL's line and column, or the mapping's entry.
Result<manifest::WorkflowCalls> workflowCalls(std::string_view afcl, std::string_view types);

// The plan for people: one line per object ("  + function resize  create") and a summary.
std::string formatPlan(const manifest::Plan& plan, std::string_view app);

}  // namespace tern::cli
