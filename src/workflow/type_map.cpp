#include "http/http_client.h"
#include "workflow/type_map.h"

#include <fmt/format.h>

#include <cctype>
#include <nlohmann/json.hpp>

#include "async/http_callback.h"
#include "store/registry.h"
#include "util/names.h"

namespace tern::workflow {

using json = nlohmann::json;

std::string defaultFunctionName(std::string_view type) {
  std::string out(type);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

namespace {

Error bad(size_t entry, std::string_view what) {
  return Error(ErrorCode::kInvalidArgument, fmt::format("type mapping entry {}: {}", entry, what));
}

// A property as text: strings as they are, numbers and booleans printed.
std::optional<std::string> text(const json& props, const char* key) {
  auto it = props.find(key);
  if (it == props.end()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number() || it->is_boolean()) return it->dump();
  return std::nullopt;
}

std::vector<std::string> list(const json& props, const char* key) {
  std::vector<std::string> out;
  auto it = props.find(key);
  if (it == props.end()) return out;
  if (it->is_array()) {
    for (const auto& v : *it) {
      if (v.is_string()) out.push_back(v.get<std::string>());
    }
  } else if (it->is_string()) {
    std::string s = it->get<std::string>();
    size_t start = 0;
    while (start < s.size()) {
      size_t comma = s.find(',', start);
      out.push_back(s.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  return out;
}

}  // namespace

Result<TypeMap> TypeMap::parse(std::string_view jsonText) {
  json doc = json::parse(jsonText, nullptr, false);
  if (doc.is_discarded()) return Error(ErrorCode::kInvalidArgument, "type mapping: not valid JSON");
  if (!doc.is_array()) {
    return Error(ErrorCode::kInvalidArgument,
                 "type mapping: a JSON list of {\"functionType\", \"resources\"} entries");
  }
  TypeMap map;
  for (size_t i = 0; i < doc.size(); ++i) {
    const json& e = doc[i];
    if (!e.is_object() || !e.contains("functionType") || !e["functionType"].is_string()) {
      return bad(i, "needs \"functionType\" (text)");
    }
    std::string type = e["functionType"].get<std::string>();
    if (map.types_.count(type)) return bad(i, fmt::format("functionType \"{}\" is mapped twice", type));
    if (!e.contains("resources") || !e["resources"].is_array() || e["resources"].empty()) {
      return bad(i, fmt::format("\"{}\": needs a non-empty list \"resources\"", type));
    }
    std::vector<Implementation> impls;
    for (const json& r : e["resources"]) {
      if (!r.is_object() || !r.contains("type") || !r["type"].is_string()) {
        return bad(i, fmt::format("\"{}\": each resource needs a \"type\"", type));
      }
      std::string kind = r["type"].get<std::string>();
      json props = r.value("properties", json::object());
      if (!props.is_object()) return bad(i, fmt::format("\"{}\": properties must be an object", type));
      Implementation impl;
      if (kind == "tern") {
        impl.kind = Implementation::Kind::kTern;
        impl.function = text(props, "function").value_or(defaultFunctionName(type));
        if (!isFunctionName(impl.function)) {
          return bad(i, fmt::format("\"{}\": \"{}\" is not a valid function name", type, impl.function));
        }
        impl.tier = text(props, "tier").value_or("");
        if (!impl.tier.empty() && impl.tier != "edge" && impl.tier != "cloud") {
          return bad(i, fmt::format("\"{}\": tier is edge or cloud", type));
        }
        impl.sites = list(props, "site");
        for (auto& s : list(props, "sites")) impl.sites.push_back(s);
        impl.labels = list(props, "labels");
        for (const auto& l : impl.labels) {
          if (l.find('=') == std::string::npos) return bad(i, fmt::format("\"{}\": label \"{}\" is not KEY=VALUE", type, l));
        }
      } else if (kind == "Serverless") {
        impl.kind = Implementation::Kind::kServerless;
        impl.uri = text(props, "Uri").value_or("");
        if (impl.uri.empty()) return bad(i, fmt::format("\"{}\": a Serverless resource needs \"Uri\"", type));
        auto url = http::parseUrl(impl.uri, http::UrlUse::kRequest);
        if (!url.ok()) return bad(i, fmt::format("\"{}\": Uri: {}", type, url.error().message()));
      } else {
        return bad(i, fmt::format("\"{}\": unknown resource type \"{}\" (tern runs \"tern\" and "
                                  "\"Serverless\")", type, kind));
      }
      impls.push_back(std::move(impl));
    }
    map.types_.emplace(std::move(type), std::move(impls));
  }
  return map;
}

std::vector<Implementation> TypeMap::implementations(const std::string& type) const {
  auto it = types_.find(type);
  if (it != types_.end()) return it->second;
  Implementation impl;
  impl.function = defaultFunctionName(type);
  return {impl};
}

}  // namespace tern::workflow
