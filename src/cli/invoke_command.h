#pragma once
// `tern invoke`: calls a function through the node's /fn/NAME endpoint, as any HTTP client
// would, and prints the response body exactly (binary-safe) on stdout. A tern error
// (trap, timeout, not found, ...) is one line on stderr with its kind's exit status; a
// status of 400 or more that the function set itself is function_failed (82), with its
// body still printed.

#include <chrono>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "http/http_client.h"
#include "cli/node_client.h"
#include "util/error.h"

namespace tern::cli {

struct InvokeOptions {
  std::string name;
  std::optional<std::string> data;      // the request body
  std::optional<std::string> dataFile;  // the request body from a file; "-" is stdin
  std::string path;                     // "/REST", optionally with "?QUERY"
  std::string method;                   // empty: POST with a body, GET without
  std::vector<std::string> headers;     // "Name: value"
};

// Checks the options and builds the request to /fn/NAME[/REST] (the body is added by the
// caller). Errors: kInvalidArgument.
Result<HttpRequest> invokeRequest(const InvokeOptions& options);

// How an invocation's answer ends the command.
struct InvokeVerdict {
  std::optional<Error> error;  // the failure to report, if any
  bool bodyIsOutput = true;    // the body is the function's output, not a tern error
};
InvokeVerdict judgeInvocation(const HttpResponse& response);

// A function may run for up to 15 minutes, after waiting for a slot.
inline constexpr std::chrono::milliseconds kInvokeTimeout{16 * 60 * 1000};

int invokeCommand(const NodeOptions& node, const InvokeOptions& options, std::istream& in,
                  std::ostream& out, std::ostream& err);

}  // namespace tern::cli
