#pragma once
// The plan of `tern up` and `tern down` (docs/design/manifest.md): what the manifest
// declares against what the node has, as a list of steps (create, update, unchanged,
// delete) in the order they are applied. Pure: the CLI reads both states, this decides.
//
// Ownership: an app owns the objects named in its record (AppRecord), which the CLI keeps
// on the node as the environment of the function "tern-app-APP". `up` refuses to touch a
// declared object that exists on the node but is not in the record (another app's, or one
// deployed by hand), deletes recorded objects the manifest no longer declares, and leaves
// everything else on the node alone.

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "manifest/manifest.h"
#include "util/error.h"

namespace tern::manifest {

// A function's version as far as `up` compares it, with the node's defaults filled in and
// the lists sorted (the node keeps them in the order given; their order means nothing).
struct FunctionState {
  std::string moduleSha256;
  uint32_t memoryMb = 128;
  uint32_t timeoutMs = 10000;
  uint32_t concurrency = 0;
  std::vector<std::string> env;  // KEY=VALUE
  std::vector<std::string> triggers;
  std::string replyTopic;
  std::vector<std::string> allow;
  double sloMs = 0;          // 0: best effort
  double sloPercentile = 0;  // 0: a mean objective
  double weight = 1;
  std::vector<std::string> sites;
  std::string tier;
  std::vector<std::string> labels;
  std::string compileTier = "auto";
  bool operator==(const FunctionState&) const = default;
};

// The state a declared function should have once deployed from a module of this hash.
FunctionState declaredFunction(const FunctionSpec& f, std::string moduleSha256);
// Sorts the lists, so that states compare regardless of order.
void normalize(FunctionState& s);
// The names of the fields that differ ("module", "memory_mb", "env", ...).
std::vector<std::string> functionDifferences(const FunctionState& want, const FunctionState& have);

struct RouteState {
  std::vector<std::string> providers;  // in order: the order is the route's preference
  std::string policy;
  bool operator==(const RouteState&) const = default;
};

struct StreamAppState {
  std::string processor;  // empty: none
  std::optional<double> maxPerSecond;
  bool operator==(const StreamAppState&) const = default;
};

// What an app owns on the node, and for workflows (whose definition the node does not give
// back) the digest of the definition that was deployed.
struct AppRecord {
  std::set<std::string> functions;
  std::set<std::string> routes;
  std::set<std::string> streams;
  std::map<std::string, std::string> workflows;  // name -> digest ("" : not known deployed)
  bool empty() const {
    return functions.empty() && routes.empty() && streams.empty() && workflows.empty();
  }
  bool operator==(const AppRecord&) const = default;
};

// The record as the text kept on the node (compact JSON), and back. Errors:
// kInternal naming what is malformed.
std::string encodeRecord(const AppRecord& r);
Result<AppRecord> decodeRecord(std::string_view text);

// The name of the function that holds an app's record.
std::string recordFunctionName(std::string_view app);

struct DeclaredState {
  std::map<std::string, FunctionState> functions;
  std::map<std::string, RouteState> routes;
  std::map<std::string, StreamAppState> streams;
  std::map<std::string, std::string> workflows;  // name -> digest of file, types, options
};

struct DeployedState {
  // The node's objects of each kind (functions: at least every declared or recorded one
  // that exists, with its active version).
  std::map<std::string, FunctionState> functions;
  std::map<std::string, RouteState> routes;
  std::map<std::string, StreamAppState> streams;
  std::set<std::string> workflows;
  std::optional<AppRecord> record;  // none: the app has no record on the node
};

enum class ObjectKind { kFunction, kRoute, kStreamApp, kWorkflow };
enum class Change { kCreate, kUpdate, kUnchanged, kDelete };
std::string_view kindName(ObjectKind k);    // function, route, stream app, workflow
std::string_view changeName(Change c);      // create, update, unchanged, delete

struct Step {
  ObjectKind kind;
  std::string name;
  Change change;
  std::string detail;  // update: the fields that differ; unchanged in a down: why it stays
  bool operator==(const Step&) const = default;
};

struct Plan {
  // Creates and updates (functions, routes, stream apps, workflows: what a later kind
  // names comes first), then deletes in the reverse order; unchanged objects are listed
  // where they would be applied.
  std::vector<Step> steps;
  // The record once every step is applied; `recordBefore` the one written before the first
  // step, which owns every object a step may create (so a failure midway leaves nothing
  // unowned) and keeps the old digests of workflows not yet redeployed.
  AppRecord record;
  AppRecord recordBefore;
  // Whether the record on the node must be written (before and after the steps), or, in a
  // down that leaves the app owning nothing, removed.
  bool writeRecord = false;
  bool removeRecord = false;
  // The record on the node now (none: the app has none).
  std::optional<AppRecord> recordNow;
  size_t count(Change c) const;
};

// The plan of `tern up`. Errors: kConflict naming each declared object that exists on the
// node but is not owned by the app.
Result<Plan> planUp(const DeclaredState& declared, const DeployedState& deployed);

// The plan of `tern down`: deletes what the manifest declares and the app owns, in the
// order that keeps references valid; declared objects it does not own, or that are gone,
// are listed unchanged with the reason.
Plan planDown(const DeclaredState& declared, const DeployedState& deployed);

}  // namespace tern::manifest
