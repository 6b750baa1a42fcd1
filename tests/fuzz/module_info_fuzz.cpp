// Fuzz target: the structural module reader and the import policy must handle any bytes.
// Built as a libFuzzer binary with -DTERN_FUZZ=ON (clang); the ordinary test run replays
// the seed corpus in corpus/module_info through the same entry point.

#include <cstddef>
#include <cstdint>
#include <span>

#include "wasm/host_imports.h"
#include "wasm/module_info.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto info = tern::wasm::readModuleInfo(std::span<const uint8_t>(data, size));
  if (info.ok()) {
    (void)tern::wasm::checkHostImports(*info);
    for (const auto& e : info->exports) (void)info->functionType(e.index);
  } else if (info.error().message().empty()) {
    __builtin_trap();  // every rejection must say why
  }
  return 0;
}
