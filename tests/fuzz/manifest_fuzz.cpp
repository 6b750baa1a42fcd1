// Fuzz target: app manifests (src/manifest), as `tern up` reads tern.yaml. The parser must
// refuse anything malformed with one message that starts "FILE:LINE:COLUMN: FIELD:", and
// what it accepts must hold only valid names, positions inside the document, and values in
// the ranges the node takes; the cycle check must terminate on whatever it accepts.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "manifest/manifest.h"
#include "util/names.h"
#include "util/utf8.h"

using namespace tern::manifest;

namespace {

bool inside(Position p) { return p.line >= 1 && p.column >= 1; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto m = parseManifest(text, "fuzz.yaml");
  if (!m.ok()) {
    const std::string& message = m.error().message();
    FUZZ_CHECK(message.rfind("fuzz.yaml:", 0) == 0);
    // FILE:LINE:COLUMN: FIELD: what
    size_t line = message.find(':', 10);
    FUZZ_CHECK(line != std::string::npos && line > 10);
    FUZZ_CHECK(message.find(": ", line + 1) != std::string::npos);
    return 0;
  }
  FUZZ_CHECK(isAppName(m->app));
  for (const auto& f : m->functions) {
    FUZZ_CHECK(tern::isFunctionName(f.name) && inside(f.at));
    FUZZ_CHECK(!f.module.value.empty() && inside(f.module.at));
    FUZZ_CHECK(!f.memoryMb || (*f.memoryMb >= 1 && *f.memoryMb <= 4096));
    FUZZ_CHECK(!f.timeoutMs || (*f.timeoutMs >= 1 && *f.timeoutMs <= 900000));
    FUZZ_CHECK(!f.sloPercentile || f.sloMs);
    FUZZ_CHECK(f.sources.empty() || !f.build.empty());
    for (const auto& kv : f.env) FUZZ_CHECK(kv.find('=') != 0 && kv.find('=') != std::string::npos);
    for (const auto& kv : f.env) FUZZ_CHECK(tern::isValidUtf8(kv));
  }
  for (const auto& w : m->workflows) FUZZ_CHECK(tern::isFunctionName(w.name) && !w.file.value.empty());
  for (const auto& r : m->routes) FUZZ_CHECK(!r.providers.empty() && !r.policy.empty());
  for (const auto& s : m->streams) FUZZ_CHECK(!s.maxPerSecond || *s.maxPerSecond > 0);
  auto cycles = checkCycles(*m, {});
  if (!cycles.ok()) FUZZ_CHECK(cycles.error().message().find("a cycle between") != std::string::npos);
  return 0;
}
