#include "cli/provider_commands.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <iostream>
#include <set>

#include "cli/manage_commands.h"
#include "cli/output_format.h"
#include "util/names.h"

namespace tern::cli {

using json = nlohmann::json;

namespace {

// This node, always a provider (providers/provider.h); the CLI does not link the node's
// provider library, so the name is repeated here.
constexpr std::string_view kLocalProvider = "local";

// A route names at most this many providers (the node refuses more).
constexpr size_t kMaxRouteProviders = 16;

Error invalid(std::string message) { return Error(ErrorCode::kInvalidArgument, std::move(message)); }

Result<void> checkProviderName(std::string_view name) {
  if (name == kLocalProvider) {
    return invalid("\"local\" is this node: it is always a provider and is neither added nor removed");
  }
  if (isFunctionName(name)) return {};
  return invalid(fmt::format("invalid provider name \"{}\": use 1-63 characters a-z, 0-9 and '-', "
                             "starting with a letter or digit",
                             terminalSafe(name)));
}

std::string orDash(std::string s) { return s.empty() ? "-" : s; }

// "0.0002", "-" when absent.
std::string priceText(const json& provider) {
  auto price = answerNumber(provider, "price_per_call");
  return price ? fmt::format("{}", *price) : "-";
}

// The route's providers joined by `separator`.
std::string providersText(const json& route, std::string_view separator) {
  const json* list = answerField(route, "providers");
  std::vector<std::string> names;
  if (list && list->is_array()) {
    for (const auto& n : *list) names.push_back(n.is_string() ? terminalSafe(n.get<std::string>()) : "?");
  }
  return names.empty() ? "-" : fmt::format("{}", fmt::join(names, separator));
}

// One row per function a provider served: SAMPLES EWMA P95 FAILURE% IN-FLIGHT. The means
// have no value before a call was answered ("-"); the failure share has one at once.
std::vector<std::string> statsCells(const json& s) {
  auto samples = answerNumber(s, "samples");
  bool measured = samples && *samples > 0;
  auto ms = [&](const char* key) {
    auto v = answerNumber(s, key);
    return measured && v ? fmt::format("{:.1f}", *v) : std::string("-");
  };
  auto failures = answerNumber(s, "failure_rate");
  auto inFlight = answerNumber(s, "in_flight");
  return {orDash(answerText(s, "function")),
          samples ? fmt::format("{}", static_cast<uint64_t>(*samples)) : "-",
          ms("ewma_ms"),
          ms("p95_ms"),
          failures ? fmt::format("{:.1f}", *failures * 100) : "-",
          inFlight ? fmt::format("{}", static_cast<uint64_t>(*inFlight)) : "-"};
}

}  // namespace

Result<std::string> providerAddBody(const ProviderAddOptions& o) {
  if (auto ok = checkProviderName(o.name); !ok.ok()) return ok.error();
  if (o.kind != "tern" && o.kind != "http") {
    return invalid(fmt::format("--kind must be tern (another tern node) or http (an HTTP function "
                               "endpoint), got \"{}\"",
                               terminalSafe(o.kind)));
  }
  if (o.url.empty()) return invalid("--url is required: http://HOST[:PORT][/PREFIX]");
  json body = {{"kind", o.kind}, {"url", o.url}};
  if (!o.tokenFile.empty()) {
    if (!o.tokenFile.starts_with('/')) {
      return invalid(fmt::format("--token-file is read by the node at each call: give an absolute path on "
                                 "the node's machine, got \"{}\"",
                                 terminalSafe(o.tokenFile)));
    }
    body["token_file"] = o.tokenFile;
  }
  if (!o.tier.empty()) {
    if (o.tier != "edge" && o.tier != "cloud") {
      return invalid(fmt::format("--tier must be edge or cloud, got \"{}\"", terminalSafe(o.tier)));
    }
    body["tier"] = o.tier;
  }
  if (o.pricePerCall) {
    if (!std::isfinite(*o.pricePerCall) || *o.pricePerCall < 0) {
      return invalid(fmt::format("--price-per-call must be a number >= 0 (0: free), got {}", *o.pricePerCall));
    }
    body["price_per_call"] = *o.pricePerCall;
  }
  // The URL and the token file's path came from the command line: replace invalid UTF-8.
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<std::string> routeSetBody(const RouteSetOptions& o) {
  if (auto ok = checkFunctionName(o.function); !ok.ok()) return ok.error();
  if (o.providers.empty()) return invalid("--providers is required: a comma-separated list such as local,edge2");
  if (o.providers.size() > kMaxRouteProviders) {
    return invalid(fmt::format("--providers names {} providers; a route has at most {}", o.providers.size(),
                               kMaxRouteProviders));
  }
  std::set<std::string_view> seen;
  for (const auto& p : o.providers) {
    if (p != kLocalProvider && !isFunctionName(p)) {
      return invalid(fmt::format("--providers: invalid provider name \"{}\" (\"local\", or 1-63 characters "
                                 "a-z, 0-9 and '-')",
                                 terminalSafe(p)));
    }
    if (!seen.insert(p).second) {
      return invalid(fmt::format("--providers names \"{}\" twice", terminalSafe(p)));
    }
  }
  if (o.policy.empty()) {
    return invalid("--policy is required: round-robin, lowest-latency, weighted, cheapest-within:MS, single "
                   "or wasm:FUNCTION");
  }
  json body = {{"providers", o.providers}, {"policy", o.policy}};
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string formatProviderAdded(const json& p) {
  auto price = answerNumber(p, "price_per_call");
  std::string cost = price && *price > 0 ? fmt::format("price {} per call", *price) : std::string("free");
  return fmt::format("added provider {} ({} {}, {}, {})\n", answerText(p, "name"), orDash(answerText(p, "kind")),
                     orDash(answerText(p, "url")), orDash(answerText(p, "tier")), cost);
}

std::string formatProviderList(const json& list) {
  const json* providers = answerField(list, "providers");
  if (!providers || !providers->is_array() || providers->empty()) return "no providers\n";
  std::vector<std::vector<std::string>> rows{{"PROVIDER", "KIND", "TIER", "PRICE", "FUNCTION", "SAMPLES",
                                              "EWMA MS", "P95 MS", "FAILURE %", "IN FLIGHT"}};
  for (const auto& p : *providers) {
    std::vector<std::string> head{orDash(answerText(p, "name")), orDash(answerText(p, "kind")), orDash(answerText(p, "tier")),
                                  priceText(p)};
    const json* functions = answerField(p, "functions");
    bool any = false;
    if (functions && functions->is_array()) {
      for (const auto& s : *functions) {
        // The provider's own cells once, on its first function's row.
        std::vector<std::string> row = any ? std::vector<std::string>(head.size(), "") : head;
        auto cells = statsCells(s);
        row.insert(row.end(), cells.begin(), cells.end());
        rows.push_back(std::move(row));
        any = true;
      }
    }
    if (!any) {
      head.insert(head.end(), 6, std::string("-"));
      rows.push_back(std::move(head));
    }
  }
  return renderTable(rows);
}

std::string formatRouteSet(const json& route) {
  return fmt::format("route {}: {} ({})\n", answerText(route, "function"), providersText(route, ", "),
                     orDash(answerText(route, "policy")));
}

std::string formatRouteList(const json& list) {
  const json* routes = answerField(list, "routes");
  if (!routes || !routes->is_array() || routes->empty()) return "no routes\n";
  std::vector<std::vector<std::string>> rows{{"FUNCTION", "PROVIDERS", "POLICY"}};
  for (const auto& r : *routes) {
    rows.push_back({orDash(answerText(r, "function")), providersText(r, ","), orDash(answerText(r, "policy"))});
  }
  return renderTable(rows);
}

int providerAddCommand(const NodeOptions& node, const ProviderAddOptions& options, std::ostream& out,
                       std::ostream& err) {
  auto body = providerAddBody(options);
  if (!body.ok()) return reportFailure(err, body.error());
  auto reply = callWithToken(node, "PUT", fmt::format("/v1/providers/{}", options.name), std::move(*body));
  if (!reply.ok()) return reportFailure(err, reply.error());
  return printReply(node, *reply, out, formatProviderAdded(reply->doc));
}

int providerListCommand(const NodeOptions& node, std::ostream& out, std::ostream& err) {
  auto reply = callWithToken(node, "GET", "/v1/providers");
  if (!reply.ok()) return reportFailure(err, reply.error());
  return printReply(node, *reply, out, formatProviderList(reply->doc));
}

int providerRemoveCommand(const NodeOptions& node, const std::string& name, std::ostream& out,
                          std::ostream& err) {
  if (auto ok = checkProviderName(name); !ok.ok()) return reportFailure(err, ok.error());
  auto reply = callWithToken(node, "DELETE", fmt::format("/v1/providers/{}", name));
  if (!reply.ok()) return reportFailure(err, reply.error());
  return printReply(node, *reply, out, fmt::format("removed provider {}\n", name));
}

int routeSetCommand(const NodeOptions& node, const RouteSetOptions& options, std::ostream& out,
                    std::ostream& err) {
  auto body = routeSetBody(options);
  if (!body.ok()) return reportFailure(err, body.error());
  auto reply = callWithToken(node, "PUT", fmt::format("/v1/routes/{}", options.function), std::move(*body));
  if (!reply.ok()) return reportFailure(err, reply.error());
  return printReply(node, *reply, out, formatRouteSet(reply->doc));
}

int routeListCommand(const NodeOptions& node, std::ostream& out, std::ostream& err) {
  auto reply = callWithToken(node, "GET", "/v1/routes");
  if (!reply.ok()) return reportFailure(err, reply.error());
  return printReply(node, *reply, out, formatRouteList(reply->doc));
}

int routeRemoveCommand(const NodeOptions& node, const std::string& function, std::ostream& out,
                       std::ostream& err) {
  if (auto ok = checkFunctionName(function); !ok.ok()) return reportFailure(err, ok.error());
  auto reply = callWithToken(node, "DELETE", fmt::format("/v1/routes/{}", function));
  if (!reply.ok()) return reportFailure(err, reply.error());
  return printReply(node, *reply, out, fmt::format("removed route {}\n", function));
}

}  // namespace tern::cli
