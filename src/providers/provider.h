#pragma once
// Providers and routes (docs/design/providers.md): the places a function may run besides
// this node, and which of them serve which function under which policy.
//
// A provider of kind `tern` is another tern node or cluster: a call is POST URL/fn/FUNCTION
// with the provider's token as a bearer token. A provider of kind `http` is any HTTP
// function endpoint that takes the request body by POST and answers with the response; its
// URL is a template where {function} stands for the function's name (OpenFaaS gateways,
// Knative services, Lambda function URLs). The node itself is always the provider `local`.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.h"

namespace tern::providers {

inline constexpr std::string_view kLocal = "local";

enum class Kind { kTern, kHttp };
std::string_view kindName(Kind k);

struct Provider {
  std::string name;          // the function-name rule; never "local"
  Kind kind = Kind::kTern;
  std::string url;           // http://HOST[:PORT][/PREFIX], or a template with {function}
  std::string tokenFile;     // empty: none (read at each use, so a rotated token is picked up)
  std::string tier = "edge"; // edge or cloud
  double pricePerCall = 0;   // in the user's unit; 0: free
};

// A policy as written in `tern route set --policy`: round-robin, lowest-latency, weighted,
// cheapest-within:MS (the cheapest provider whose p95 is at most MS), single (the first
// provider of the route: the baseline), or wasm:FUNCTION (a deployed function ranks the
// providers; lowest-latency when it fails).
struct PolicySpec {
  enum class Kind { kRoundRobin, kLowestLatency, kWeighted, kCheapestWithin, kSingle, kWasm };
  Kind kind = Kind::kLowestLatency;
  double boundMs = 0;      // cheapest-within
  std::string function;    // wasm
};
Result<PolicySpec> parsePolicy(std::string_view text);
std::string policyText(const PolicySpec& p);

struct Route {
  std::string function;
  std::vector<std::string> providers;  // names, "local" included when the node may serve it
  PolicySpec policy;
};

// The JSON of the API (/v1/providers, /v1/routes) and the store.
//   provider: {"name", "kind": "tern"|"http", "url", "token_file"?, "tier", "price_per_call"}
//   route:    {"function", "providers": [...], "policy": "lowest-latency"}
std::string providerJson(const Provider& p);
std::string routeJson(const Route& r);
// Parses and checks the body of PUT /v1/providers/NAME (kind, url with http:// and, for
// kind http, at most one {function}; tier; price >= 0). Errors: kInvalidArgument naming
// the field.
Result<Provider> parseProvider(std::string_view name, std::string_view body);
// Parses and checks the body of PUT /v1/routes/FUNCTION: 1..16 distinct provider names,
// and the policy. Names are not checked against the providers here (the router does, at
// each call, and an unknown provider is skipped with a log line).
Result<Route> parseRoute(std::string_view function, std::string_view body);

}  // namespace tern::providers
