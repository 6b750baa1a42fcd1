#pragma once
// The checks every YAML document from outside gets before its fields are read (app
// manifests, AFCL workflows): its text must be UTF-8 (YAML 1.2 requires it; yaml-cpp passes
// other bytes through, and tern writes these values out again as JSON, which cannot hold
// them), its aliases must not expand it past a bound (a "billion laughs" document), and no
// alias may name a node that contains it (`a: &a [*a]`, a value without end).
// In its own library, tern_util_yaml, so that tern_util does not depend on yaml-cpp.

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <optional>
#include <string>

namespace tern {

enum class YamlValueProblem {
  kNotUtf8,  // the node is a key or value whose text is not valid UTF-8
  kTooMany,  // the document has more than the bound's keys and values (counting aliases)
  kCycle,    // an alias names a sequence or map that contains it
};

struct BadYamlValue {
  YAML::Mark mark;  // where the fault is: the value, the alias, or the document's start
  YamlValueProblem problem;
};

// The first fault of the document `text`, which loaded as `root`, or nothing. Cycles are
// found from the parser's events (an alias to a node whose end has not come yet), before
// the walk of the loaded nodes, which would otherwise follow a cycle to its bound.
// Iterative: YAML may nest deeper than a stack allows.
std::optional<BadYamlValue> findBadYamlValue(const std::string& text, const YAML::Node& root,
                                             size_t maxValues);

}  // namespace tern
