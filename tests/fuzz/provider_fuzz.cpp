// Fuzz target: provider, route and policy JSON as PUT /v1/providers and /v1/routes take it
// (src/providers/provider). The first byte chooses the parser; for providers and routes
// the name is "fuzz". What parses renders to JSON that parses to the same value.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_check.h"
#include "providers/provider.h"

using namespace tern::providers;

namespace {

bool samePolicy(const PolicySpec& a, const PolicySpec& b) {
  return a.kind == b.kind && a.boundMs == b.boundMs && a.function == b.function;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 3) {
    case 0: {
      auto p = parseProvider("fuzz", text);
      if (!p.ok()) {
        FUZZ_CHECK(!p.error().message().empty());
        break;
      }
      auto again = parseProvider("fuzz", providerJson(*p));
      FUZZ_CHECK(again.ok());
      FUZZ_CHECK(again->name == p->name && again->kind == p->kind && again->url == p->url &&
                 again->tokenFile == p->tokenFile && again->tier == p->tier &&
                 again->pricePerCall == p->pricePerCall);
      break;
    }
    case 1: {
      auto r = parseRoute("fuzz", text);
      if (!r.ok()) {
        FUZZ_CHECK(!r.error().message().empty());
        break;
      }
      FUZZ_CHECK(!r->providers.empty() && r->providers.size() <= 16);
      auto again = parseRoute("fuzz", routeJson(*r));
      FUZZ_CHECK(again.ok());
      FUZZ_CHECK(again->function == r->function && again->providers == r->providers &&
                 samePolicy(again->policy, r->policy));
      break;
    }
    default: {
      auto p = parsePolicy(text);
      if (!p.ok()) {
        FUZZ_CHECK(!p.error().message().empty());
        break;
      }
      auto again = parsePolicy(policyText(*p));
      FUZZ_CHECK(again.ok() && samePolicy(*p, *again));
      break;
    }
  }
  return 0;
}
