// The gateway's token routes (docs/http-api.md, "Tokens"), behind the admin scope, on the
// management thread (in a cluster each is a few JetStream calls):
//
//   POST   /v1/tokens       {"name", "scopes": [...], "expires_in_s"?, "rate"?, "burst"?}
//                           201 with the record and "token", the only time it is shown
//   GET    /v1/tokens       {"tokens": [record...]}: the tokens not revoked, by name
//   DELETE /v1/tokens/NAME  {"revoked": NAME, "revoked_ms"}
//
// A record: {"name", "id", "scopes", "created_ms", "expires_ms" (null: never), "expired",
// "rate" (null: no limit), "burst"}. Never the token or its hash.

#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "triggers/http_gateway.h"

namespace tern::triggers {

namespace {

using json = nlohmann::json;

constexpr std::string_view kTokensPath = "/v1/tokens";

json recordJson(const store::TokenRecord& r, int64_t nowMs) {
  return json{{"name", r.name},
              {"id", r.id},
              {"scopes", r.scopes},
              {"created_ms", r.createdMs},
              {"expires_ms", r.expiresMs ? json(r.expiresMs) : json(nullptr)},
              {"expired", r.expiresMs != 0 && nowMs >= r.expiresMs},
              {"rate", r.rate > 0 ? json(r.rate) : json(nullptr)},
              {"burst", r.rate > 0 ? json(r.burst) : json(nullptr)}};
}

Error invalid(std::string message) { return Error(ErrorCode::kInvalidArgument, std::move(message)); }

// The body of POST /v1/tokens. Errors: kInvalidArgument naming the field.
Result<TokenRequest> parseTokenRequest(std::string_view body) {
  json doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) {
    return invalid("the body must be a JSON object: {\"name\", \"scopes\", \"expires_in_s\"?, \"rate\"?, \"burst\"?}");
  }
  for (const auto& [key, value] : doc.items()) {
    if (key != "name" && key != "scopes" && key != "expires_in_s" && key != "rate" && key != "burst") {
      return invalid(fmt::format("unknown field \"{}\": use name, scopes, expires_in_s, rate and burst",
                                 key.substr(0, 64)));
    }
  }
  TokenRequest req;
  if (!doc.contains("name") || !doc["name"].is_string()) return invalid("\"name\" must be a string");
  req.name = doc["name"].get<std::string>();
  if (!doc.contains("scopes") || !doc["scopes"].is_array()) {
    return invalid("\"scopes\" must be an array of scopes such as [\"read\", \"invoke:resize\"]");
  }
  for (const auto& s : doc["scopes"]) {
    if (!s.is_string()) return invalid("\"scopes\" must hold strings");
    req.scopes.push_back(s.get<std::string>());
  }
  if (doc.contains("expires_in_s") && !doc["expires_in_s"].is_null()) {
    const json& e = doc["expires_in_s"];
    if (!e.is_number_integer() || e.get<int64_t>() <= 0) {
      return invalid("\"expires_in_s\" must be a whole number of seconds > 0");
    }
    req.expiresInSeconds = e.get<int64_t>();
  }
  for (auto [key, out] : {std::pair{"rate", &req.rate}, std::pair{"burst", &req.burst}}) {
    if (!doc.contains(key) || doc[key].is_null()) continue;
    const json& v = doc[key];
    if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() <= 0) {
      return invalid(fmt::format("\"{}\" must be a number > 0", key));
    }
    *out = v.get<double>();
  }
  return req;
}

}  // namespace

http::Response HttpGateway::tokensRoute(const http::Request& req) {
  auto& auth = deps_.auth;
  if (req.path == kTokensPath && req.method == "GET") {
    auto tokens = auth.list();
    if (!tokens.ok()) return errorResponse(tokens.error());
    json list = json::array();
    int64_t now = auth.nowMs();
    for (const auto& r : *tokens) list.push_back(recordJson(r, now));
    return jsonResponse(200, json{{"tokens", std::move(list)}});
  }
  if (req.path == kTokensPath && req.method == "POST") {
    auto request = parseTokenRequest(req.body);
    if (!request.ok()) return errorResponse(request.error());
    auto created = auth.create(*request);
    if (!created.ok()) return errorResponse(created.error());
    json body = recordJson(created->record, auth.nowMs());
    body["token"] = created->token;
    return jsonResponse(201, body);
  }
  // DELETE /v1/tokens/NAME (the route table admits nothing else).
  std::string name = req.path.substr(kTokensPath.size() + 1);
  auto revoked = auth.revoke(name);
  if (!revoked.ok()) return errorResponse(revoked.error());
  return jsonResponse(200, json{{"revoked", revoked->name}, {"revoked_ms", revoked->revokedMs}});
}

}  // namespace tern::triggers
