// The gateway's device-state routes (docs/http-api.md, docs/design/devices.md): a device's
// per-function key-value state, read, written and deleted whole, so that it follows the
// device from one edge node to the next.
//
//   GET    /v1/devices/DEVICE/state/FUNCTION   {"device", "function", "entries": [{"key", "value"}]}
//   PUT    /v1/devices/DEVICE/state/FUNCTION?mode=overwrite|replace|keep-existing  the same
//          document: its entries win over the same keys (overwrite, the default), become the
//          whole state (replace), or only add keys not there yet (keep-existing)
//   DELETE /v1/devices/DEVICE/state/FUNCTION
//
// Keys and values are base64. Behind the admin token, on the management thread.

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "http/request_rules.h"
#include "store/kv_store.h"
#include "util/quote.h"
#include "triggers/http_gateway.h"
#include "util/base64.h"
#include "util/device_id.h"
#include "util/names.h"

namespace tern::triggers {

namespace {

using json = nlohmann::json;

constexpr std::string_view kDevicesPrefix = "/v1/devices/";

http::Response jsonBody(int status, const json& body) {
  http::Response r;
  r.status = status;
  r.contentType = "application/json";
  r.body = body.dump() + "\n";
  return r;
}

Result<std::vector<store::KvStore::Entry>> parseEntries(const std::string& body) {
  json doc = json::parse(body, nullptr, false);
  if (!doc.is_object() || !doc.contains("entries") || !doc["entries"].is_array()) {
    return Error(ErrorCode::kInvalidArgument,
                 "the body must be a JSON object with an \"entries\" array");
  }
  std::vector<store::KvStore::Entry> out;
  for (size_t i = 0; i < doc["entries"].size(); ++i) {
    const json& e = doc["entries"][i];
    auto field = [&](const char* name) -> std::optional<std::string> {
      if (!e.is_object() || !e.contains(name) || !e[name].is_string()) return std::nullopt;
      return base64Decode(e[name].get<std::string>());
    };
    auto key = field("key");
    auto value = field("value");
    if (!key || !value) {
      return Error(ErrorCode::kInvalidArgument,
                   fmt::format("entries[{}] needs \"key\" and \"value\" as base64 strings", i));
    }
    out.push_back({std::move(*key), std::move(*value)});
  }
  return out;
}

}  // namespace

http::Response HttpGateway::deviceStateRoute(const http::Request& req) {
  auto fail = [](const Error& e) { return errorResponse(e); };
  std::string_view rest = std::string_view(req.path).substr(kDevicesPrefix.size());
  size_t slash = rest.find('/');
  std::string_view device = rest.substr(0, slash);
  std::string_view tail = slash == std::string_view::npos ? "" : rest.substr(slash);
  if (!tail.starts_with("/state/")) {
    return fail(Error(ErrorCode::kNotFound, "no route for " + req.path));
  }
  std::string_view function = tail.substr(7);
  if (!isDeviceId(device)) {
    return fail(Error(ErrorCode::kInvalidArgument,
                      fmt::format("invalid device id {}: use 8-64 of A-Z, a-z, 0-9, '-' and '_'",
                                  quoteUntrusted(device))));
  }
  if (!isFunctionName(function)) {
    return fail(Error(ErrorCode::kInvalidArgument,
                      fmt::format("invalid function name {}", quoteUntrusted(function))));
  }
  if (!deps_.kv) return fail(Error(ErrorCode::kUnavailable, "this node has no key-value store"));
  std::string ns = store::deviceNamespace(function, device);
  json who{{"device", device}, {"function", function}};
  if (req.method == "GET") {
    auto entries = deps_.kv->exportNamespace(ns);
    if (!entries.ok()) return fail(entries.error());
    json list = json::array();
    for (const auto& e : *entries) {
      list.push_back(json{{"key", base64Encode(e.key)}, {"value", base64Encode(e.value)}});
    }
    who["entries"] = std::move(list);
    return jsonBody(200, who);
  }
  if (req.method == "PUT") {
    using Mode = store::KvStore::ImportMode;
    auto modes = http::queryValues(req.query, "mode");
    std::string name = modes.empty() ? "overwrite" : modes[0];
    std::optional<Mode> mode = name == "overwrite"       ? std::optional(Mode::kOverwrite)
                               : name == "replace"       ? std::optional(Mode::kReplace)
                               : name == "keep-existing" ? std::optional(Mode::kKeepExisting)
                                                         : std::nullopt;
    if (modes.size() > 1 || !mode) {
      return fail(Error(ErrorCode::kInvalidArgument,
                        "mode is overwrite (the default), replace or keep-existing, given once"));
    }
    auto entries = parseEntries(req.body);
    if (!entries.ok()) return fail(entries.error());
    auto written = deps_.kv->importNamespace(ns, *entries, *mode);
    if (!written.ok()) return fail(written.error());
    who["written"] = *written;
    return jsonBody(200, who);
  }
  if (req.method == "DELETE") {
    auto usage = deps_.kv->usage(ns);
    if (!usage.ok()) return fail(usage.error());
    if (auto removed = deps_.kv->removeNamespace(ns); !removed.ok()) return fail(removed.error());
    who["deleted"] = usage->keys;
    return jsonBody(200, who);
  }
  return fail(Error(ErrorCode::kInvalidArgument,
                    fmt::format("{} is not allowed on {}", req.method, req.path)));
}

}  // namespace tern::triggers
