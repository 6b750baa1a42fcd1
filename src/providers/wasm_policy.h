#pragma once
// User-defined policies (docs/design/providers.md): a deployed function ranks the
// providers. These are the two pure halves around running it; the router runs it through
// the invoker with a time limit and falls back to lowest-latency when it fails.
//
// stdin:  {"call": {"function": F, "size": BYTES},
//          "providers": [{"name", "tier", "price_per_call", "samples", "ewma_ms", "p95_ms",
//                         "failure_rate", "in_flight"}, ...]}     (the route's order)
// stdout: {"provider": NAME}  or  {"ranking": [NAME, ...]}

#include <string>
#include <string_view>
#include <vector>

#include "providers/policy.h"
#include "util/error.h"

namespace tern::providers {

std::string wasmPolicyInput(const CallInfo& call, const std::vector<ProviderView>& views);

// The ranking the function's stdout asks for: its choice first (or its ranking, in order),
// then every provider it did not name in `fallback`'s order. Names that are not providers
// of the route are ignored. Errors: kInvalidArgument (not such an object, or naming none of
// the route's providers).
Result<std::vector<std::string>> parseWasmPolicyOutput(std::string_view output,
                                                       const std::vector<ProviderView>& views,
                                                       const std::vector<std::string>& fallback);

}  // namespace tern::providers
