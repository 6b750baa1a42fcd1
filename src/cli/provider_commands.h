#pragma once
// Providers and routes from the command line (docs/cli.md, "Providers and routes"):
//   tern provider add NAME --kind tern|http --url URL [--token-file F] [--tier edge|cloud]
//                          [--price-per-call X]                 PUT /v1/providers/NAME
//   tern provider ls | rm NAME                                  GET /v1/providers, DELETE
//   tern route set FN --providers local,edge2,cloud --policy P  PUT /v1/routes/FN
//   tern route ls | rm FN                                       GET /v1/routes, DELETE
// The node checks the URL's form and the policy; here the names, the kind, the tier, the
// price and the provider list are checked before connecting.

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/node_client.h"
#include "util/error.h"

namespace tern::cli {

struct ProviderAddOptions {
  std::string name;
  std::string kind;                   // tern or http
  std::string url;
  std::string tokenFile;              // empty: none; else an absolute path on the node's machine
  std::string tier;                   // edge or cloud; empty: the node's default (edge)
  std::optional<double> pricePerCall;  // unset: the node's default (0)
};

// The body of PUT /v1/providers/NAME: {"kind", "url", "token_file"?, "tier"?,
// "price_per_call"?}, after checking that NAME follows the function-name rule and is not
// "local", that the kind and tier are known, that the URL is given, that the token file is
// an absolute path (the node reads it) and that the price is a finite number >= 0.
// Errors: kInvalidArgument naming the option.
Result<std::string> providerAddBody(const ProviderAddOptions& options);

struct RouteSetOptions {
  std::string function;
  std::vector<std::string> providers;  // in order; "local" is this node
  std::string policy;
};

// The body of PUT /v1/routes/FN: {"providers": [...], "policy": P}, after checking the
// function's name, 1 to 16 distinct provider names (each "local" or by the function-name
// rule) and that a policy is given. Errors: kInvalidArgument naming the option.
Result<std::string> routeSetBody(const RouteSetOptions& options);

// "added provider NAME (KIND URL, TIER, PRICE per call)".
std::string formatProviderAdded(const nlohmann::json& provider);
// GET /v1/providers: a table with one row per provider and function it served (a provider
// without statistics has one row of "-"): PROVIDER KIND TIER PRICE FUNCTION SAMPLES
// EWMA MS, P95 MS, FAILURE %, IN FLIGHT.
std::string formatProviderList(const nlohmann::json& list);
// "route FN: local, edge2, cloud (lowest-latency)".
std::string formatRouteSet(const nlohmann::json& route);
// GET /v1/routes: a table FUNCTION PROVIDERS POLICY.
std::string formatRouteList(const nlohmann::json& list);

int providerAddCommand(const NodeOptions& node, const ProviderAddOptions& options, std::ostream& out,
                       std::ostream& err);
int providerListCommand(const NodeOptions& node, std::ostream& out, std::ostream& err);
int providerRemoveCommand(const NodeOptions& node, const std::string& name, std::ostream& out,
                          std::ostream& err);
int routeSetCommand(const NodeOptions& node, const RouteSetOptions& options, std::ostream& out,
                    std::ostream& err);
int routeListCommand(const NodeOptions& node, std::ostream& out, std::ostream& err);
int routeRemoveCommand(const NodeOptions& node, const std::string& function, std::ostream& out,
                       std::ostream& err);

}  // namespace tern::cli
