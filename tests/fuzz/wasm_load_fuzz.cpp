// Fuzz target: the in-process part of loading a wasm module (src/wasm): the structural
// reader, the import policy, the instantiation check against sandbox limits, and the glue C
// source generated from the module's names and types (compiled next to wasm2c's output, so
// a module's names must never break out of it). wasm2c's own validation runs in a separate,
// sandboxed process and is not part of this target. Checked: every rejection says why, and
// the glue is printable ASCII whose string literals all end on their line.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "fuzz_check.h"
#include "wasm/compiler.h"
#include "wasm/host_imports.h"
#include "wasm/module_info.h"
#include "wasm/runtime.h"

using namespace tern::wasm;

namespace {

// Printable ASCII and newlines only; every string literal closes on the line it opens.
bool wellFormedC(const std::string& c) {
  bool inString = false;
  for (size_t i = 0; i < c.size(); ++i) {
    unsigned char ch = static_cast<unsigned char>(c[i]);
    if (ch == '\n') {
      if (inString) return false;
      continue;
    }
    if (ch < 0x20 || ch > 0x7e) return false;
    if (inString && ch == '\\') {
      ++i;
      if (i >= c.size() || c[i] == '\n') return false;
    } else if (ch == '"') {
      inString = !inString;
    }
  }
  return !inString;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto info = readModuleInfo(std::span<const uint8_t>(data, size));
  if (!info.ok()) {
    FUZZ_CHECK(!info.error().message().empty());
    return 0;
  }
  SandboxLimits small;
  small.memoryPages = 4;
  small.tableElements = 16;
  for (const SandboxLimits& limits : {SandboxLimits{}, small}) {
    auto ok = checkInstantiable(*info, limits);
    if (!ok.ok()) FUZZ_CHECK(!ok.error().message().empty());
  }
  auto imports = checkHostImports(*info);
  if (!imports.ok()) FUZZ_CHECK(!imports.error().message().empty());
  for (ImportPolicy policy : {ImportPolicy::kHostOnly, ImportPolicy::kLinkForeign}) {
    if (policy == ImportPolicy::kHostOnly && !imports.ok()) continue;
    std::string glue = generateGlue(*info, "tern_fuzz", std::string(64, 'a'), policy);
    FUZZ_CHECK(wellFormedC(glue));
  }
  return 0;
}
