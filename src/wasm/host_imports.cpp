#include "wasm/host_imports.h"

#include <fmt/format.h>

#include "wasm/host_api.h"

namespace tern::wasm {

std::optional<std::string_view> hostFunctionSignature(std::string_view module,
                                                      std::string_view name) {
  if (module == kWasiModule) {
    for (const auto& f : wasiFunctions()) {
      if (f.name == name) return f.signature;
    }
  }
  if (module == kTernModule) {
    for (const auto& f : ternFunctions()) {
      if (f.name == name) return f.signature;
    }
  }
  return std::nullopt;
}

Result<void> checkHostImports(const ModuleInfo& info) {
  for (const auto& im : info.imports) {
    auto sig = hostFunctionSignature(im.module, im.name);
    if (!sig) {
      return Error(ErrorCode::kInvalidModule,
                   fmt::format("unknown import {}.{}", im.module, im.name));
    }
    if (im.kind != ExternKind::kFunc) {
      return Error(ErrorCode::kInvalidModule,
                   fmt::format("import {}.{} must be a function, not a {}", im.module, im.name,
                               externKindName(im.kind)));
    }
    std::string actual = info.types[im.typeIndex].signature();
    if (actual != *sig) {
      return Error(ErrorCode::kInvalidModule,
                   fmt::format("import {}.{} has signature {}, the host provides {}", im.module,
                               im.name, actual, *sig));
    }
  }
  return {};
}

}  // namespace tern::wasm
