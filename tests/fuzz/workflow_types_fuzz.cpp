// Fuzz target: the JSON a workflow deploy carries besides its AFCL (src/workflow): the type
// mapping file (TypeMap::parse) and the workflow's options (parseOptions). The first byte
// chooses. Mapped implementations name a valid tern function or an http:// or https://
// endpoint (the scheme in any case, as URLs allow);
// options render (optionsJson) to JSON that parses to the same options.

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_check.h"
#include "util/names.h"
#include "workflow/type_map.h"
#include "workflow/workflow_service.h"

using namespace tern::workflow;

namespace {

// `uri` begins with `scheme` (lower case) in any case, and has more after it.
bool hasScheme(std::string_view uri, std::string_view scheme) {
  return uri.size() > scheme.size() &&
         std::equal(scheme.begin(), scheme.end(), uri.begin(), [](char s, char u) {
           return std::tolower(static_cast<unsigned char>(u)) == s;
         });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] & 1) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded()) return 0;
    auto o = parseOptions(j);
    if (!o.ok()) {
      FUZZ_CHECK(!o.error().message().empty());
      return 0;
    }
    auto again = parseOptions(optionsJson(*o));
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(again->policy == o->policy && again->localCapacity == o->localCapacity &&
               again->sizeThresholdBytes == o->sizeThresholdBytes &&
               again->attempts == o->attempts && again->maxTasksInFlight == o->maxTasksInFlight &&
               again->serverlessTimeoutMs == o->serverlessTimeoutMs && again->plan == o->plan);
    return 0;
  }
  auto map = TypeMap::parse(text);
  if (!map.ok()) {
    FUZZ_CHECK(!map.error().message().empty());
    return 0;
  }
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_array()) return 0;
  for (const auto& entry : j) {
    if (!entry.is_object() || !entry.contains("functionType") || !entry["functionType"].is_string()) continue;
    for (const auto& impl : map->implementations(entry["functionType"].get<std::string>())) {
      if (impl.kind == Implementation::Kind::kTern) FUZZ_CHECK(tern::isFunctionName(impl.function));
      else FUZZ_CHECK(hasScheme(impl.uri, "http://") || hasScheme(impl.uri, "https://"));
    }
  }
  return 0;
}
