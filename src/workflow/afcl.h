#pragma once
// AFCL (the Abstract Function Choreography Language of the Apollo workflow engine) as tern
// reads it: the YAML of AFCL 1.0 and 1.1 workflows, parsed into a tree of elements and
// checked once at deploy (names, references, visibility, cycles), so that enactment only
// follows resolved references. See docs/design/workflows.md for the subset and its meaning.
//
// A workflow is `name`, `dataIns`, `workflowBody`, `dataOuts`. Bodies are lists of
// single-key items: `function`, `sequence`, `parallel` (`parallelBody` of `section`s),
// `if` (`then`, `else`), `switch` (`dataEval`, `cases`, `default`), `parallelFor`
// (`iterators` or `loopCounter`, `loopBody`) and `while` (`loopBody`, `condition`,
// loop-carried dataIns with dataOuts of the same name, or `dataLoops`). Data references
// are "Producer/port"; a `source` that is not a reference, or a `value`, is a constant.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/error.h"

namespace tern::workflow {

// Where in the YAML text something was written (1-based).
struct Mark {
  int line = 0;
  int column = 0;
};

struct Element;

// A resolved reference "Producer/port": the value lives in the scope of `loop` (the loop
// element whose iteration holds it; null: the run's top scope).
struct Ref {
  std::string text;                  // "Producer/port", the value's key
  Mark mark;
  const Element* producer = nullptr; // null for the workflow's own inputs
  const Element* loop = nullptr;
  // Read from inside `producer`: one of its dataIns (or a while's loop value or counter),
  // not one of its outputs.
  bool alias = false;
};

// A named operation on a collection (AFCL constraints `element-index`, `block`,
// `replicate`, `split`, and 1.0's `distribution`).
struct CollectionOp {
  std::string name;
  std::string value;
};

struct DataIn {
  std::string name;
  std::string type;
  std::optional<Ref> source;             // a reference
  std::optional<nlohmann::json> value;   // or a constant
  std::vector<CollectionOp> ops;
  Mark mark;
};

struct DataOut {
  std::string name;
  std::string type;
  // Compounds: where the value comes from; an if or switch lists one alternative per
  // branch ("Then/x,Else/y").
  std::vector<Ref> sources;
  Mark mark;
};

// One operand of a condition: a reference or a constant.
struct Operand {
  std::optional<Ref> ref;
  nlohmann::json constant;
};

struct ConditionItem {
  Operand data1;
  Operand data2;
  std::string type;      // number, string, boolean, object; empty: from the values
  std::string op;        // ==, !=, <, <=, >, >=, contains, startsWith, endsWith
  bool negation = false;
  bool orNext = false;   // combinedWith "or": joins this item's value with the next one's
  Mark mark;
};

enum class Kind : uint8_t { kFunction, kSequence, kParallel, kIf, kSwitch, kParallelFor, kWhile };
const char* kindName(Kind k);

struct Case {
  nlohmann::json value;
  std::vector<Element> body;
};

// A while's loop-carried value (1.0 `dataLoops`, or a 1.1 dataIn with a dataOut of the
// same name): the dataIn (or initSource/value) for the first iteration, `next` (the
// dataOut's or loopSource's source, read in the iteration that ends) for the later ones.
struct LoopValue {
  std::string name;
  DataIn initial;
  Ref next;
};

struct Element {
  Kind kind = Kind::kFunction;
  std::string name;
  std::string type;  // functions: the function type
  Mark mark;
  const Element* parent = nullptr;  // null at the top level
  const Element* loop = nullptr;    // nearest enclosing parallelFor or while
  std::vector<DataIn> dataIns;
  std::vector<DataOut> dataOuts;
  std::vector<CollectionOp> properties;
  // sequence, parallel (sections joined), parallelFor and while: `body`; if: `body` is
  // `then`, `elseBody` is `else`; switch: `cases`, `elseBody` is `default`.
  std::vector<Element> body;
  std::vector<Element> elseBody;
  std::vector<Case> cases;
  std::vector<ConditionItem> condition;  // if, while
  std::optional<DataIn> dataEval;        // switch
  // parallelFor: the dataIns iterated element by element, or a count (a constant or a
  // reference), or 1.0's loopCounter from/to/step.
  std::vector<std::string> iterators;
  std::optional<Operand> count;
  std::optional<Operand> from, to, step;
  std::string counterName;               // parallelFor loopCounter's name, read inside
  std::vector<LoopValue> loopValues;     // while
};

struct Workflow {
  std::string name;
  std::vector<DataIn> dataIns;    // `source` names the key of the run's input object
  std::vector<Element> body;
  std::vector<DataOut> dataOuts;
  // Every function element, in document order.
  std::vector<const Element*> functions;
};

struct ParseLimits {
  size_t maxElements = 10000;
  size_t maxDepth = 64;
};

// Parses and checks an AFCL document. Errors: kInvalidArgument naming the line and column
// ("line 12, column 5: ...") of the first problem: malformed YAML, unknown constructs or
// keys, duplicate names, references to missing elements or ports, references into a
// compound from outside it, and cycles.
Result<std::unique_ptr<Workflow>> parseAfcl(std::string_view yaml, ParseLimits limits = {});

// The data flow between a workflow's function elements, for drawing a run (the console):
// one (producer, consumer) pair of function names per function whose dataIns read, directly
// or through compounds (sequence, parallel, if, ...), another function's dataOuts. Pure.
struct TaskEdge {
  std::string from;
  std::string to;
};
std::vector<TaskEdge> taskEdges(const Workflow& wf);

}  // namespace tern::workflow
