#pragma once
// The HTTP surface of providers and routes (docs/http-api.md, "Providers"), reached after
// the gateway checked the bearer token:
//   PUT    /v1/providers/NAME   {"kind", "url", "token_file"?, "tier"?, "price_per_call"?}
//   GET    /v1/providers        every provider ("local" first) with its statistics per function
//   DELETE /v1/providers/NAME   409 while a route names it
//   PUT    /v1/routes/FUNCTION  {"providers": [...], "policy": "lowest-latency"}
//   GET    /v1/routes
//   DELETE /v1/routes/FUNCTION

#include <functional>

#include <nlohmann/json.hpp>

#include "http/http_server.h"
#include "providers/provider_store.h"

namespace tern::providers {

struct ProviderRoutes {
  ProviderStore& store;
  // The router's statistics: {"PROVIDER": [{"function", "samples", "ewma_ms", "p95_ms",
  // "failure_rate", "in_flight"}, ...], ...}
  std::function<nlohmann::json()> stats;
  // Called after every change, so the router serves the new providers and routes.
  std::function<void()> changed;
};

void handleProviderRequest(const ProviderRoutes& routes, http::Request&& req, http::Respond respond);

}  // namespace tern::providers
