#pragma once
// Durable async invocations from the command line (docs/cli.md):
// `tern invoke NAME --async [--idempotency-key K] [--callback-url U]` enqueues through
// POST /v1/async/NAME and prints the invocation id; `tern invocation ID` prints the
// record from GET /v1/invocations/ID (the node's JSON with --json).

#include <iosfwd>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>

#include "cli/node_client.h"
#include "util/error.h"

namespace tern::cli {

struct AsyncInvokeOptions {
  std::string name;
  std::optional<std::string> data;      // the request body
  std::optional<std::string> dataFile;  // the request body from a file; "-" is stdin
  std::string idempotencyKey;           // empty: none
  std::string callbackUrl;              // empty: none
};

// The POST target "/v1/async/NAME?idempotency_key=...&callback_url=..." after checking the
// name. Errors: kInvalidArgument.
Result<std::string> asyncInvokeTarget(const AsyncInvokeOptions& options);

int asyncInvokeCommand(const NodeOptions& node, const AsyncInvokeOptions& options,
                       std::istream& in, std::ostream& out, std::ostream& err);

// The human form of an invocation record: status, attempts, times, error, then the output.
std::string formatInvocation(const nlohmann::json& record);

int invocationCommand(const NodeOptions& node, const std::string& id, std::ostream& out,
                      std::ostream& err);

}  // namespace tern::cli
