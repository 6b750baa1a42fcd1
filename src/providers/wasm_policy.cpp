#include "providers/wasm_policy.h"

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace tern::providers {

using json = nlohmann::json;

std::string wasmPolicyInput(const CallInfo& call, const std::vector<ProviderView>& views) {
  json providers = json::array();
  for (const ProviderView& v : views) {
    providers.push_back({{"name", v.name},
                         {"tier", v.tier},
                         {"price_per_call", v.pricePerCall},
                         {"samples", v.samples},
                         {"ewma_ms", v.ewmaMs},
                         {"p95_ms", v.p95Ms},
                         {"failure_rate", v.failureRate},
                         {"in_flight", v.inFlight}});
  }
  json j = {{"call", {{"function", call.function}, {"size", call.size}}}, {"providers", std::move(providers)}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<std::vector<std::string>> parseWasmPolicyOutput(std::string_view output,
                                                       const std::vector<ProviderView>& views,
                                                       const std::vector<std::string>& fallback) {
  auto invalid = [](std::string message) { return Error(ErrorCode::kInvalidArgument, std::move(message)); };
  json j = json::parse(output, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return invalid("the policy function's output is not a JSON object ({\"provider\": NAME} or "
                   "{\"ranking\": [NAME, ...]})");
  }
  std::vector<std::string> asked;
  if (auto p = j.find("provider"); p != j.end()) {
    if (!p->is_string()) return invalid("the policy function's \"provider\" is not a string");
    asked.push_back(p->get<std::string>());
  } else if (auto r = j.find("ranking"); r != j.end()) {
    if (!r->is_array()) return invalid("the policy function's \"ranking\" is not an array");
    for (const auto& item : *r) {
      if (!item.is_string()) return invalid("the policy function's \"ranking\" holds a non-string");
      asked.push_back(item.get<std::string>());
    }
  } else {
    return invalid("the policy function's output has neither \"provider\" nor \"ranking\"");
  }
  auto isProvider = [&views](const std::string& name) {
    return std::any_of(views.begin(), views.end(), [&](const ProviderView& v) { return v.name == name; });
  };
  std::vector<std::string> out;
  for (auto& name : asked) {
    if (isProvider(name) && std::find(out.begin(), out.end(), name) == out.end()) out.push_back(std::move(name));
  }
  if (out.empty()) {
    std::string names;
    for (const ProviderView& v : views) names += fmt::format("{}{}", names.empty() ? "" : ", ", v.name);
    return invalid(fmt::format("the policy function named none of the route's providers ({})", names));
  }
  for (const std::string& name : fallback) {
    if (isProvider(name) && std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
  }
  // Every provider appears once, even one `fallback` left out.
  for (const ProviderView& v : views) {
    if (std::find(out.begin(), out.end(), v.name) == out.end()) out.push_back(v.name);
  }
  return out;
}

}  // namespace tern::providers
