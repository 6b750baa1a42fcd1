#pragma once
// An application's manifest (`tern.yaml`, docs/manifest.md): its functions, workflows,
// routes and stream apps, read from YAML into plain values with the line and column of each
// one, so that every later error can name the file, the line and the field. Pure: the
// parser reads text and touches no file; paths stay as written (relative to the manifest's
// directory) for the caller to resolve.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.h"

namespace tern::manifest {

// A place in the manifest, 1-based.
struct Position {
  int line = 0;
  int column = 0;
};

// A value with the place it was written.
struct Located {
  std::string value;
  Position at;
};

struct FunctionSpec {
  std::string name;
  Position at;
  Located module;                 // the .wasm file; required
  std::string build;              // a shell command run in the manifest's directory; empty: none
  Position buildAt;
  std::vector<Located> sources;   // files or directories the module is built from
  std::optional<uint32_t> memoryMb;
  std::optional<uint32_t> timeoutMs;
  std::optional<uint32_t> concurrency;
  std::vector<std::string> env;   // KEY=VALUE, sorted by key
  std::vector<Located> triggers;  // mqtt:FILTER, cron:EXPR, every:DURATION
  std::string replyTopic;
  std::vector<Located> allow;     // host API capabilities
  std::optional<double> sloMs;
  std::optional<double> sloPercentile;
  std::optional<double> weight;
  std::vector<std::string> sites;
  std::string tier;                // edge, cloud; empty: any
  std::vector<std::string> labels; // KEY=VALUE, sorted by key
  std::string compileTier;         // auto, baseline, optimized; empty: the node's default
};

struct WorkflowSpec {
  std::string name;
  Position at;
  Located file;   // the AFCL document; required
  Located types;  // the type mapping (JSON); empty: none
  // The deploy options as the node takes them (policy, local_capacity,
  // size_threshold_bytes, attempts, max_tasks_in_flight, serverless_timeout_ms), in key
  // order: "key=value" pairs, values as JSON text.
  std::map<std::string, std::string> options;
};

// Which providers serve a function, and how one is chosen (docs/design/providers.md).
struct RouteSpec {
  std::string function;
  Position at;
  std::vector<std::string> providers;
  std::string policy;
};

// A stream app (docs/design/streams.md).
struct StreamAppSpec {
  std::string name;
  Position at;
  std::string processor;  // empty: none
  std::optional<double> maxPerSecond;  // updates per second to each subscriber
};

struct Manifest {
  std::string file;  // as given to the parser, for messages
  std::string app;
  Position appAt;
  std::vector<FunctionSpec> functions;  // in the manifest's order
  std::vector<WorkflowSpec> workflows;
  std::vector<RouteSpec> routes;
  std::vector<StreamAppSpec> streams;
};

// Application names follow the function-name rule but are at most 54 characters: the app's
// ownership record is the function "tern-app-APP" (docs/design/manifest.md).
bool isAppName(std::string_view name);

// Parses and checks a manifest's text, with the node's own checks of triggers,
// capabilities and routes, so that nothing the node would refuse reaches it. Errors:
// kInvalidArgument, one line "FILE:LINE:COLUMN: FIELD: what is wrong" for the first
// problem: malformed YAML, unknown keys, values of the wrong type or out of range, invalid
// or duplicate names, missing required fields.
Result<Manifest> parseManifest(std::string_view text, std::string_view file);

// "FILE:LINE:COLUMN: FIELD: message", the shape of every manifest error.
Error manifestError(const Manifest& m, Position at, std::string_view field, std::string_view message);

// What a workflow calls: the functions of its tasks and the workflows it reaches over HTTP
// (a Serverless resource whose URI path is /wf/NAME), as the caller read them from the
// workflow's files.
struct WorkflowCalls {
  std::vector<std::string> functions;
  std::vector<std::string> workflows;
};

// Refuses a cycle among the manifest's functions and workflows: a function calls another
// with an `invoke:NAME` capability, a workflow calls the functions and workflows of
// `calls`. The error names the place of the edge that closes the cycle and the whole cycle
// ("a -> b -> a"). Pure.
Result<void> checkCycles(const Manifest& m, const std::map<std::string, WorkflowCalls>& calls);

}  // namespace tern::manifest
