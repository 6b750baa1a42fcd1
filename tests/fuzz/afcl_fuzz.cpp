// Fuzz target: AFCL workflow documents (src/workflow/afcl), YAML or JSON, as
// `tern workflow deploy` and PUT /v1/workflows send them. The parser must refuse anything
// malformed with the line and column of the problem, and within its limits: a parsed
// workflow lists each function element once, nests no deeper than maxDepth, and holds
// only UTF-8 text (it is written as JSON later).

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <algorithm>
#include <vector>

#include "fuzz_check.h"
#include "util/utf8.h"
#include "workflow/afcl.h"

using namespace tern::workflow;

namespace {

// The deepest nesting under `elements`; counts elements and function elements, and checks
// that each element names its parent.
size_t depthOf(const std::vector<Element>& elements, const Element* parent, size_t depth,
               size_t& count, size_t& functions) {
  size_t deepest = depth;
  for (const auto& e : elements) {
    ++count;
    if (e.kind == Kind::kFunction) ++functions;
    FUZZ_CHECK(tern::isValidUtf8(e.name) && tern::isValidUtf8(e.type));
    FUZZ_CHECK(e.parent == parent);
    for (const auto* list : {&e.body, &e.elseBody}) {
      deepest = std::max(deepest, depthOf(*list, &e, depth + 1, count, functions));
    }
    for (const auto& c : e.cases) {
      deepest = std::max(deepest, depthOf(c.body, &e, depth + 1, count, functions));
    }
  }
  return deepest;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  ParseLimits limits;
  limits.maxElements = 200;
  limits.maxDepth = 16;
  auto wf = parseAfcl(text, limits);
  if (!wf.ok()) {
    FUZZ_CHECK(!wf.error().message().empty());
    return 0;
  }
  FUZZ_CHECK(tern::isValidUtf8((*wf)->name));
  size_t count = 0, functions = 0;
  size_t depth = depthOf((*wf)->body, nullptr, 1, count, functions);
  FUZZ_CHECK(depth <= limits.maxDepth + 1);
  FUZZ_CHECK(count <= limits.maxElements);
  FUZZ_CHECK(functions == (*wf)->functions.size());
  for (const Element* f : (*wf)->functions) FUZZ_CHECK(f && f->kind == Kind::kFunction);
  return 0;
}
