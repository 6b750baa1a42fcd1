#include "providers/provider_routes.h"

#include <fmt/format.h>

#include "triggers/http_gateway.h"
#include "util/names.h"

namespace tern::providers {

using json = nlohmann::json;

namespace {

constexpr std::string_view kProvidersPath = "/v1/providers";
constexpr std::string_view kRoutesPath = "/v1/routes";

using triggers::methodNotAllowed;

http::Response answer(int status, const json& body) { return triggers::jsonResponse(status, body); }
http::Response failure(const Error& e) { return triggers::errorResponse(e); }

http::Response invalid(std::string message) {
  return failure(Error(ErrorCode::kInvalidArgument, std::move(message)));
}

// The JSON of providerJson/routeJson as a value to answer with or extend. They always give
// an object; anything else is a bug, answered as one rather than thrown.
Result<json> objectOf(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return Error(ErrorCode::kInternal, fmt::format("not a JSON object: {}", text));
  return j;
}

void notifyChanged(const ProviderRoutes& r) {
  if (r.changed) r.changed();
}

// The router's statistics of one provider: an array of per-function entries (empty when
// the router has none, or gives something else).
json functionsOf(const json& stats, const std::string& provider) {
  if (stats.is_object()) {
    auto it = stats.find(provider);
    if (it != stats.end() && it->is_array()) return *it;
  }
  return json::array();
}

http::Response listProviders(const ProviderRoutes& r) {
  auto all = r.store.providers();
  if (!all.ok()) return failure(all.error());
  json stats = r.stats ? r.stats() : json::object();
  json list = json::array();
  // This node is always a provider. Its tier is the node's placement, which these routes
  // are not given: null here, and the router's views carry it.
  list.push_back({{"name", kLocal},
                  {"kind", kLocal},
                  {"tier", nullptr},
                  {"functions", functionsOf(stats, std::string(kLocal))}});
  for (const auto& p : *all) {
    auto j = objectOf(providerJson(p));
    if (!j.ok()) return failure(j.error());
    (*j)["functions"] = functionsOf(stats, p.name);
    list.push_back(std::move(*j));
  }
  return answer(200, json{{"providers", std::move(list)}});
}

http::Response providersRoute(const ProviderRoutes& r, const http::Request& req) {
  if (req.path == kProvidersPath) {
    if (req.method != "GET") return methodNotAllowed("GET");
    return listProviders(r);
  }
  if (req.method != "PUT" && req.method != "DELETE") return methodNotAllowed("PUT, DELETE");
  std::string_view name = std::string_view(req.path).substr(kProvidersPath.size() + 1);
  if (name == kLocal) {
    return invalid("\"local\" is this node: it is always a provider and is neither defined nor removed");
  }
  if (!isFunctionName(name)) {
    return invalid("a provider name is 1 to 63 of a-z, 0-9 and '-', not starting with '-'");
  }
  if (req.method == "PUT") {
    auto p = parseProvider(name, req.body);
    if (!p.ok()) return failure(p.error());
    if (auto ok = r.store.putProvider(*p); !ok.ok()) return failure(ok.error());
    notifyChanged(r);
    auto j = objectOf(providerJson(*p));
    return j.ok() ? answer(200, *j) : failure(j.error());
  }
  auto removed = r.store.removeProvider(name);
  if (!removed.ok()) return failure(removed.error());
  if (!*removed) return failure(Error(ErrorCode::kNotFound, fmt::format("no provider named \"{}\"", name)));
  notifyChanged(r);
  return answer(200, json{{"removed", name}});
}

http::Response routesRoute(const ProviderRoutes& r, const http::Request& req) {
  if (req.path == kRoutesPath) {
    if (req.method != "GET") return methodNotAllowed("GET");
    auto all = r.store.routes();
    if (!all.ok()) return failure(all.error());
    json list = json::array();
    for (const auto& route : *all) {
      auto j = objectOf(routeJson(route));
      if (!j.ok()) return failure(j.error());
      list.push_back(std::move(*j));
    }
    return answer(200, json{{"routes", std::move(list)}});
  }
  if (req.method != "PUT" && req.method != "DELETE") return methodNotAllowed("PUT, DELETE");
  std::string_view function = std::string_view(req.path).substr(kRoutesPath.size() + 1);
  if (!isFunctionName(function)) {
    return invalid("a route's function name is 1 to 63 of a-z, 0-9 and '-', not starting with '-'");
  }
  if (req.method == "PUT") {
    auto route = parseRoute(function, req.body);
    if (!route.ok()) return failure(route.error());
    if (auto ok = r.store.putRoute(*route); !ok.ok()) return failure(ok.error());
    notifyChanged(r);
    auto j = objectOf(routeJson(*route));
    return j.ok() ? answer(200, *j) : failure(j.error());
  }
  auto removed = r.store.removeRoute(function);
  if (!removed.ok()) return failure(removed.error());
  if (!*removed) return failure(Error(ErrorCode::kNotFound, fmt::format("no route for \"{}\"", function)));
  notifyChanged(r);
  return answer(200, json{{"removed", function}});
}

bool under(std::string_view path, std::string_view prefix) {
  return path == prefix || (path.starts_with(prefix) && path.size() > prefix.size() && path[prefix.size()] == '/');
}

}  // namespace

void handleProviderRequest(const ProviderRoutes& routes, http::Request&& req, http::Respond respond) {
  if (under(req.path, kProvidersPath)) return respond(providersRoute(routes, req));
  if (under(req.path, kRoutesPath)) return respond(routesRoute(routes, req));
  respond(failure(Error(ErrorCode::kNotFound, fmt::format("no route {}", req.path))));
}

}  // namespace tern::providers
