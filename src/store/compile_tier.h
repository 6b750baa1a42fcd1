#pragma once
// A function's compile-tier setting (docs/design/tiers.md), given at deploy
// (--compile-tier) and kept with its version, so cluster peers that replicate the record
// use it too. The policy that applies it and the background service are in tiers.h.

#include <cstdint>
#include <string_view>

#include "util/error.h"

namespace tern::store {

enum class CompileTier : uint8_t {
  kAuto,       // baseline first, then the optimized object swapped in (the default)
  kBaseline,   // baseline only: the fastest deploy; code about 10x slower
  kOptimized,  // optimized only: the deploy waits for the optimizing compile
};

// "auto", "baseline", "optimized".
const char* compileTierName(CompileTier tier);
// Parses a name of compileTierName. Errors: kInvalidArgument.
Result<CompileTier> parseCompileTier(std::string_view name);

}  // namespace tern::store
