#include "util/yaml_values.h"

#include <vector>

#include "util/utf8.h"

namespace tern {

std::optional<BadYamlValue> findBadYamlValue(const YAML::Node& root, size_t maxValues) {
  std::vector<YAML::Node> pending{root};
  size_t seen = 0;
  while (!pending.empty()) {
    YAML::Node n = pending.back();
    pending.pop_back();
    if (++seen > maxValues) return BadYamlValue{root, YamlValueProblem::kTooMany};
    if (n.IsScalar()) {
      if (!isValidUtf8(n.Scalar())) return BadYamlValue{n, YamlValueProblem::kNotUtf8};
    } else if (n.IsSequence()) {
      for (const auto& e : n) pending.push_back(e);
    } else if (n.IsMap()) {
      for (auto it = n.begin(); it != n.end(); ++it) {
        pending.push_back(it->first);
        pending.push_back(it->second);
      }
    }
  }
  return std::nullopt;
}

}  // namespace tern
