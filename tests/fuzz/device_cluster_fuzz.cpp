// Fuzz target: what the device runtime reads from a node (src/device/decision): the
// cluster's node list (GET /v1/cluster/nodes) that becomes the device's environments, and
// the placement policy names. Every environment is an http:// or https:// URL of a listed node.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "device/decision.h"
#include "fuzz_check.h"

using namespace tern::device;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto policy = parsePolicy(text);
  if (policy.ok()) {
    auto again = parsePolicy(policyName(*policy));
    FUZZ_CHECK(again.ok() && *again == *policy);
  }
  auto envs = environmentsFromCluster(text);
  if (!envs.ok()) {
    FUZZ_CHECK(!envs.error().message().empty());
    return 0;
  }
  for (const auto* list : {&envs->edges, &envs->clouds}) {
    for (const auto& url : *list) {
      FUZZ_CHECK((url.starts_with("http://") && url.size() > 7) || (url.starts_with("https://") && url.size() > 8));
    }
  }
  return 0;
}
