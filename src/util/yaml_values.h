#pragma once
// The checks every YAML document from outside gets before its fields are read (app
// manifests, AFCL workflows): its text must be UTF-8 (YAML 1.2 requires it; yaml-cpp passes
// other bytes through, and tern writes these values out again as JSON, which cannot hold
// them), and its aliases must not expand it past a bound (a "billion laughs" document).
// In its own library, tern_util_yaml, so that tern_util does not depend on yaml-cpp.

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <optional>

namespace tern {

enum class YamlValueProblem {
  kNotUtf8,  // the node is a key or value whose text is not valid UTF-8
  kTooMany,  // the document has more than the bound's keys and values (counting aliases)
};

struct BadYamlValue {
  YAML::Node node;  // the value at fault (the root for kTooMany)
  YamlValueProblem problem;
};

// The first value at fault, or nothing. Iterative: YAML may nest deeper than a stack allows.
std::optional<BadYamlValue> findBadYamlValue(const YAML::Node& root, size_t maxValues);

}  // namespace tern
