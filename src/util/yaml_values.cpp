#include "util/yaml_values.h"

#include <sstream>
#include <unordered_set>
#include <vector>

#include <yaml-cpp/eventhandler.h>

#include "util/utf8.h"

namespace tern {

namespace {

// Follows the parser's events with the anchors of the sequences and maps still open; an
// alias to one of them is a cycle, and ends the parse at once.
class CycleFinder : public YAML::EventHandler {
 public:
  struct Found {
    YAML::Mark mark;
  };

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    if (open_.contains(anchor)) throw Found{mark};
  }
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    enter(anchor);
  }
  void OnSequenceEnd() override { leave(); }
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    enter(anchor);
  }
  void OnMapEnd() override { leave(); }

 private:
  void enter(YAML::anchor_t anchor) {
    stack_.push_back(anchor);
    if (anchor != YAML::NullAnchor) open_.insert(anchor);
  }
  void leave() {
    if (stack_.empty()) return;
    if (stack_.back() != YAML::NullAnchor) open_.erase(stack_.back());
    stack_.pop_back();
  }

  std::vector<YAML::anchor_t> stack_;
  std::unordered_set<YAML::anchor_t> open_;
};

std::optional<YAML::Mark> findCycle(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  CycleFinder finder;
  try {
    parser.HandleNextDocument(finder);  // the first document, as YAML::Load reads
  } catch (const CycleFinder::Found& f) {
    return f.mark;
  } catch (const YAML::Exception&) {
    // The text loaded already; a parse that fails here has no cycle to report.
  }
  return std::nullopt;
}

}  // namespace

std::optional<BadYamlValue> findBadYamlValue(const std::string& text, const YAML::Node& root,
                                             size_t maxValues) {
  if (auto at = findCycle(text)) return BadYamlValue{*at, YamlValueProblem::kCycle};
  std::vector<YAML::Node> pending{root};
  size_t seen = 0;
  while (!pending.empty()) {
    YAML::Node n = pending.back();
    pending.pop_back();
    if (++seen > maxValues) return BadYamlValue{root.Mark(), YamlValueProblem::kTooMany};
    if (n.IsScalar()) {
      if (!isValidUtf8(n.Scalar())) return BadYamlValue{n.Mark(), YamlValueProblem::kNotUtf8};
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
