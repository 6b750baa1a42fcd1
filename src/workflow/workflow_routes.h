#pragma once
// The HTTP surface of workflows (docs/http-api.md, "Workflows"):
//   POST   /wf/NAME                  run; JSON input in, JSON output out, X-Tern-Run-Id
//   PUT    /v1/workflows/NAME        deploy {"afcl": YAML, "types": MAPPING, "options": {...}}
//   GET    /v1/workflows             list
//   DELETE /v1/workflows/NAME        remove
//   GET    /v1/workflows/NAME/runs   recent runs (?limit=N, default 20)
//   GET    /v1/workflows/NAME/profile a Costless profile measured from recent runs (?limit=N)
//   GET    /v1/runs/ID               a run and its tasks (the trace)
//   POST   /v1/async/wf/NAME         start a run, answer 202 at once with its id
// The /v1 routes are reached only after the gateway checked the bearer token.

#include "http/http_server.h"
#include "workflow/workflow_service.h"

namespace tern::workflow {

void handleWorkflowRequest(WorkflowService& service, http::Request&& req, http::Respond respond);

}  // namespace tern::workflow
