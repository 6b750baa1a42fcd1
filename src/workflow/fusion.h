#pragma once
// Fused execution of a planned chain (docs/design/costless.md, "Fused execution"). A
// workflow deployed with a plan (the JSON of `tern plan workflow --json`) runs its edge
// functions as tasks on edge-tier resources and each cloud group as one unit on one
// cloud-tier node: one worker slot, each member's input made in memory from the outputs
// before it, no persistence or network hop between members. A unit travels as a
// `Segment` (its members, their inputs resolved outside the unit, and the bindings
// between members), runs with `runSegment` on the node that takes it, and answers a
// `SegmentResult` with every member's output and timings, so the trace shows each member.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "exec/invoker.h"
#include "util/error.h"
#include "workflow/afcl.h"

namespace tern::workflow {

// Where a function of a planned chain runs, and with which others.
struct Unit {
  std::string tier;                     // "edge" or "cloud"
  std::vector<const Element*> members;  // in chain order; an edge unit has one
  int group = -1;                       // its index among the plan's cloud groups; -1: edge
};

struct Fusion {
  std::vector<Unit> units;
  std::unordered_map<const Element*, size_t> unitOf;
  const Unit* of(const Element* e) const {
    auto it = unitOf.find(e);
    return it == unitOf.end() ? nullptr : &units[it->second];
  }
};

// Applies a plan {"feasible", "edge": [names], "cloud_groups": [[names], ...], "price",
// "latency_ms"} to `workflow`. Errors: kInvalidArgument naming the field or the function:
// a plan that is not feasible, names that are not the workflow's chain in order, a chain
// function that reads anything but the workflow's inputs and the outputs of functions
// before it.
Result<Fusion> applyPlan(const Workflow& workflow, const nlohmann::json& plan);

// One member's input from an earlier member of the same unit: dataIn `name` is output
// `port` of member `member`, with collection operations (whose arguments are numbers).
struct Binding {
  std::string name;
  size_t member = 0;
  std::string port;
  std::vector<CollectionOp> ops;
};

struct SegmentMember {
  std::string key;       // the task's key in its run
  std::string function;  // the tern function
  nlohmann::json input = nlohmann::json::object();  // dataIns known before the unit starts
  std::vector<Binding> bindings;
};

struct Segment {
  std::vector<SegmentMember> members;
  std::vector<std::string> env;  // every member's extra environment
};

// {"env": [..], "members": [{"key", "fn", "in": {..}, "from": [{"name", "member",
// "port", "ops": [{"name", "value"}]}]}]}.
nlohmann::json segmentJson(const Segment& s);
// Errors: kInvalidArgument naming the field (a peer's message is checked like any input).
Result<Segment> parseSegment(const nlohmann::json& j);

// Member i's stdin: its known inputs with its bindings read from `outputs` (the stdout of
// members 0..i-1). Errors: kInvalidArgument (an output that is not a JSON object or lacks
// the port, a collection operation that fails).
Result<std::string> memberInput(const Segment& s, size_t i, const std::vector<std::string>& outputs);

struct MemberResult {
  std::string key;
  std::string output;
  int64_t startUs = 0;     // Unix time
  int64_t durationUs = 0;  // of the member, tern's work around the sandbox included
  int64_t execUs = -1;     // the function's own run time; -1: did not run
  std::optional<std::string> error;
};

struct SegmentResult {
  std::vector<MemberResult> members;  // those that were started
  std::optional<Error> error;         // why the unit stopped early
};

// {"members": [{"key", "output", "start_us", "duration_us", "exec_us", "error"}],
//  "error": {"code", "message"}}.
nlohmann::json segmentResultJson(const SegmentResult& r);
Result<SegmentResult> parseSegmentResult(std::string_view text);

// Runs a segment on this node (exec::Invoker::invokeFused). `done` is called once.
void runSegment(exec::Invoker& invoker, Segment segment, std::function<void(SegmentResult)> done);

}  // namespace tern::workflow
