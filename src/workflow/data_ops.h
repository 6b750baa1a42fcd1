#pragma once
// The data side of AFCL, as pure functions: which source strings are references, constants
// and their types, collection operations on a parallelFor's or a function's inputs
// (element-index, block, replicate, split, distribution), and conditions. Tested from
// tables in tests/unit/workflow/data_ops_test.cpp.

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/error.h"

namespace tern::workflow {

struct ConditionItem;

// Whether a source is a data reference "Producer/port": it contains a "/" that neither
// starts nor ends it. Anything else is a constant.
bool isReference(std::string_view source);

// A constant written as text: JSON when it parses as JSON (numbers, true, false, null,
// arrays, objects, quoted strings), else the text itself.
nlohmann::json parseConstant(std::string_view text);

// A constant adjusted to its declared AFCL type: "number" text that is a number becomes
// one, "boolean" text true/false a boolean, "string" keeps text; other types unchanged.
nlohmann::json coerce(nlohmann::json value, std::string_view type);

// Whether `name` is a collection operation tern applies (the others are ignored).
bool isCollectionOp(std::string_view name);

// Applies one collection operation. `args` has the value's parts already resolved to
// numbers (references in them are read by the caller through `resolve`).
// element-index "i, s:e:stride, ..." (end inclusive) picks elements (one index: the
// element itself); block "size[,overlap]" cuts into overlapping blocks; replicate "n"
// repeats each element n times; split "n" makes n parts; distribution "BLOCK(n)",
// "BLOCK(n,overlap)", "REPLICATE(n|*)" as in AFCL 1.0. Errors: kInvalidArgument naming
// the operation.
using ResolveNumber = std::function<Result<double>(std::string_view reference)>;
Result<nlohmann::json> applyCollectionOp(const nlohmann::json& value, std::string_view name,
                                         std::string_view args, const ResolveNumber& resolve);

// Whether one comparison holds: `a op b` under `type` (empty: inferred from the values).
// A collection compared as a number counts its size minus one, as Apollo does. Errors:
// kInvalidArgument (an operator the type has not, values that are not of the type).
Result<bool> compare(const nlohmann::json& a, const nlohmann::json& b, std::string_view op,
                     std::string_view type);

// A whole condition: items folded left to right, each item's `orNext` joining it with the
// next; `values[i]` are items[i]'s two operands.
Result<bool> evaluateCondition(const std::vector<ConditionItem>& items,
                               const std::vector<std::pair<nlohmann::json, nlohmann::json>>& values);

}  // namespace tern::workflow
