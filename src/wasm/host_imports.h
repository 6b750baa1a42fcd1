#pragma once
// The imports a function module may use: WASI preview 1 and tern's own host module
// ("tern", host API version 2: see host_api.h and docs/design/host-api.md). Each entry carries the exact signature the host
// implements, because a compiled module calls the host through a C prototype: a module
// importing a known name with a different type is rejected, not linked.

#include <optional>
#include <span>
#include <string_view>

#include "util/error.h"
#include "wasm/module_info.h"

namespace tern::wasm {

inline constexpr std::string_view kWasiModule = "wasi_snapshot_preview1";
inline constexpr std::string_view kTernModule = "tern";

// A host function: its import name, core-wasm signature ("ii:i") and implementation.
struct HostFunction {
  std::string_view name;
  std::string_view signature;
  void (*implementation)();
};

// Every wasi_snapshot_preview1 function (defined in wasi.cpp, beside the implementations).
std::span<const HostFunction> wasiFunctions();

// The signature ("ii:i") of a host function, or nullopt if the host has no such import.
std::optional<std::string_view> hostFunctionSignature(std::string_view module,
                                                      std::string_view name);

// Checks every import against the host's: only functions, only known names, exact types.
// Errors read "unknown import MODULE.NAME" or say what differs.
Result<void> checkHostImports(const ModuleInfo& info);

}  // namespace tern::wasm
