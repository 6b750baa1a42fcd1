#include "providers/provider.h"

#include <charconv>
#include <cmath>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "util/names.h"

namespace tern::providers {

using json = nlohmann::json;

namespace {

constexpr std::string_view kFunctionPlaceholder = "{function}";
constexpr size_t kMaxUrl = 2048;
constexpr size_t kMaxPath = 4096;
constexpr size_t kMaxRouteProviders = 16;
constexpr std::string_view kPolicies =
    "round-robin, lowest-latency, weighted, cheapest-within:MS, single, wasm:FUNCTION";

Error invalid(std::string message) { return Error(ErrorCode::kInvalidArgument, std::move(message)); }

size_t count(std::string_view text, std::string_view part) {
  size_t n = 0;
  for (size_t at = text.find(part); at != std::string_view::npos; at = text.find(part, at + part.size())) ++n;
  return n;
}

bool isHostChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_';
}

// Why `url` (a {function} template already filled in) is not http://HOST[:PORT][/PATH], or
// an empty string. HOST is a DNS name, an IPv4 address or a bracketed IPv6 address; PATH
// is printable ASCII without spaces, braces or a fragment.
std::string urlProblem(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, 8) == "https://") {
    return "tern's provider client speaks plain HTTP for now: use an http:// URL (a TLS "
           "endpoint can be reached through a local proxy)";
  }
  if (url.substr(0, kScheme.size()) != kScheme) return "must start with http://";
  std::string_view rest = url.substr(kScheme.size());
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos) {
    return "must not carry credentials (give the provider a token_file instead)";
  }
  std::string_view host = authority;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos || close == 1) return "has an unclosed or empty [IPv6] host";
    for (char c : authority.substr(1, close - 1)) {
      bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
      if (!hex && c != ':' && c != '.') return "has an invalid [IPv6] host";
    }
    host = authority.substr(0, close + 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return "has text after its [IPv6] host that is not a :PORT";
      port = after.substr(1);
      if (port.empty()) return "has an empty port";
    }
  } else {
    size_t colon = authority.find(':');
    if (colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
      if (port.empty()) return "has an empty port";
    }
    if (host.empty()) return "has no host";
    for (char c : host) {
      if (!isHostChar(c)) return fmt::format("has an invalid character '{}' in its host", c);
    }
  }
  if (!port.empty()) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
      return "has a port that is not a number from 1 to 65535";
    }
  }
  for (char c : path) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return "has a space, control or non-ASCII character in its path";
    if (c == '{' || c == '}') return "has braces other than {function} in its path";
    if (c == '#') return "has a fragment (#...)";
  }
  return {};
}

Result<double> parseBound(std::string_view text) {
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value) ||
      value <= 0) {
    return invalid(fmt::format("cheapest-within takes a positive number of milliseconds, as in "
                               "cheapest-within:50 (got \"{}\")",
                               text));
  }
  return value;
}

}  // namespace

std::string_view kindName(Kind k) {
  switch (k) {
    case Kind::kTern: return "tern";
    case Kind::kHttp: return "http";
  }
  return "tern";
}

Result<PolicySpec> parsePolicy(std::string_view text) {
  using K = PolicySpec::Kind;
  PolicySpec p;
  if (text == "round-robin") {
    p.kind = K::kRoundRobin;
  } else if (text == "lowest-latency") {
    p.kind = K::kLowestLatency;
  } else if (text == "weighted") {
    p.kind = K::kWeighted;
  } else if (text == "single") {
    p.kind = K::kSingle;
  } else if (text.starts_with("cheapest-within:")) {
    auto bound = parseBound(text.substr(std::string_view("cheapest-within:").size()));
    if (!bound) return bound.error();
    p.kind = K::kCheapestWithin;
    p.boundMs = *bound;
  } else if (text.starts_with("wasm:")) {
    std::string_view function = text.substr(std::string_view("wasm:").size());
    if (!isFunctionName(function)) {
      return invalid(fmt::format("wasm: takes a function name (1 to 63 of a-z, 0-9 and '-', not "
                                 "starting with '-'), as in wasm:my-policy (got \"{}\")",
                                 function));
    }
    p.kind = K::kWasm;
    p.function = std::string(function);
  } else if (text == "cheapest-within" || text == "wasm") {
    return invalid(fmt::format("policy \"{}\" needs its argument: {}", text,
                               text == "wasm" ? "wasm:FUNCTION" : "cheapest-within:MS"));
  } else {
    return invalid(fmt::format("unknown policy \"{}\" (known: {})", text, kPolicies));
  }
  return p;
}

std::string policyText(const PolicySpec& p) {
  using K = PolicySpec::Kind;
  switch (p.kind) {
    case K::kRoundRobin: return "round-robin";
    case K::kLowestLatency: return "lowest-latency";
    case K::kWeighted: return "weighted";
    case K::kSingle: return "single";
    case K::kCheapestWithin: return fmt::format("cheapest-within:{}", p.boundMs);
    case K::kWasm: return fmt::format("wasm:{}", p.function);
  }
  return "lowest-latency";
}

std::string providerJson(const Provider& p) {
  json j;
  j["name"] = p.name;
  j["kind"] = kindName(p.kind);
  j["url"] = p.url;
  if (!p.tokenFile.empty()) j["token_file"] = p.tokenFile;
  j["tier"] = p.tier;
  j["price_per_call"] = p.pricePerCall;
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string routeJson(const Route& r) {
  json j;
  j["function"] = r.function;
  j["providers"] = r.providers;
  j["policy"] = policyText(r.policy);
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<Provider> parseProvider(std::string_view name, std::string_view body) {
  if (name == kLocal) {
    return invalid("\"local\" is this node's own provider and cannot be defined");
  }
  if (!isFunctionName(name)) {
    return invalid("a provider name is 1 to 63 of a-z, 0-9 and '-', not starting with '-'");
  }
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return invalid("a provider is a JSON object");
  Provider p;
  p.name = std::string(name);
  bool sawKind = false;
  for (const auto& [key, value] : j.items()) {
    if (key == "name") {
      if (!value.is_string() || value.get<std::string>() != name) {
        return invalid("\"name\" differs from the provider's name in the path");
      }
    } else if (key == "kind") {
      std::string kind = value.is_string() ? value.get<std::string>() : std::string();
      if (kind == "tern") {
        p.kind = Kind::kTern;
      } else if (kind == "http") {
        p.kind = Kind::kHttp;
      } else {
        return invalid("\"kind\" must be \"tern\" (another tern node) or \"http\" (an HTTP function "
                       "endpoint)");
      }
      sawKind = true;
    } else if (key == "url") {
      if (!value.is_string()) return invalid("\"url\" must be a string");
      p.url = value.get<std::string>();
    } else if (key == "token_file") {
      if (value.is_null()) continue;
      if (!value.is_string()) return invalid("\"token_file\" must be a string (an absolute path)");
      p.tokenFile = value.get<std::string>();
      if (p.tokenFile.empty() || p.tokenFile.front() != '/' || p.tokenFile.size() > kMaxPath ||
          p.tokenFile.find('\0') != std::string::npos) {
        return invalid("\"token_file\" must be an absolute path");
      }
    } else if (key == "tier") {
      std::string tier = value.is_string() ? value.get<std::string>() : std::string();
      if (tier != "edge" && tier != "cloud") return invalid("\"tier\" must be \"edge\" or \"cloud\"");
      p.tier = tier;
    } else if (key == "price_per_call") {
      if (!value.is_number() || !std::isfinite(value.get<double>()) || value.get<double>() < 0) {
        return invalid("\"price_per_call\" must be a number >= 0");
      }
      p.pricePerCall = value.get<double>();
    } else {
      return invalid(fmt::format(
          "unknown field \"{}\" (known: kind, url, token_file, tier, price_per_call)", key));
    }
  }
  if (!sawKind) return invalid("\"kind\" is required: \"tern\" or \"http\"");
  if (!j.contains("url")) return invalid("\"url\" is required");
  if (p.url.size() > kMaxUrl) return invalid(fmt::format("\"url\" is longer than {} bytes", kMaxUrl));
  size_t placeholders = count(p.url, kFunctionPlaceholder);
  if (p.kind == Kind::kTern && placeholders > 0) {
    return invalid("\"url\" of a tern provider is the node's address; tern adds /fn/FUNCTION itself, "
                   "so it has no {function}");
  }
  if (p.kind == Kind::kHttp && placeholders > 1) {
    return invalid("\"url\" may hold {function} at most once");
  }
  // The template is checked as it will be used: with {function} filled in by a name.
  std::string filled = p.url;
  if (size_t at = filled.find(kFunctionPlaceholder); at != std::string::npos) {
    filled.replace(at, kFunctionPlaceholder.size(), "fn");
  }
  if (std::string problem = urlProblem(filled); !problem.empty()) {
    return invalid(fmt::format("\"url\" {}", problem));
  }
  // A tern provider's calls go to URL/fn/FUNCTION: a trailing '/' would double it.
  if (p.kind == Kind::kTern) {
    while (p.url.size() > std::string_view("http://x").size() && p.url.back() == '/') p.url.pop_back();
  }
  return p;
}

Result<Route> parseRoute(std::string_view function, std::string_view body) {
  if (!isFunctionName(function)) {
    return invalid("a route's function name is 1 to 63 of a-z, 0-9 and '-', not starting with '-'");
  }
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return invalid("a route is a JSON object");
  Route r;
  r.function = std::string(function);
  bool sawProviders = false;
  for (const auto& [key, value] : j.items()) {
    if (key == "function") {
      if (!value.is_string() || value.get<std::string>() != function) {
        return invalid("\"function\" differs from the route's function in the path");
      }
    } else if (key == "providers") {
      if (!value.is_array() || value.empty() || value.size() > kMaxRouteProviders) {
        return invalid(fmt::format("\"providers\" must be an array of 1 to {} provider names",
                                   kMaxRouteProviders));
      }
      std::set<std::string, std::less<>> seen;
      for (const auto& item : value) {
        if (!item.is_string()) return invalid("\"providers\" must hold provider names (strings)");
        std::string provider = item.get<std::string>();
        if (provider != kLocal && !isFunctionName(provider)) {
          return invalid(fmt::format("\"providers\" holds \"{}\", which is not a provider name "
                                     "(\"local\", or 1 to 63 of a-z, 0-9 and '-')",
                                     provider));
        }
        if (!seen.insert(provider).second) {
          return invalid(fmt::format("\"providers\" names \"{}\" twice", provider));
        }
        r.providers.push_back(std::move(provider));
      }
      sawProviders = true;
    } else if (key == "policy") {
      if (!value.is_string()) return invalid("\"policy\" must be a string");
      auto policy = parsePolicy(value.get<std::string>());
      if (!policy) return invalid(fmt::format("\"policy\": {}", policy.error().message()));
      r.policy = std::move(*policy);
    } else {
      return invalid(fmt::format("unknown field \"{}\" (known: providers, policy)", key));
    }
  }
  if (!sawProviders) return invalid("\"providers\" is required: an array of 1 to 16 provider names");
  // Under `single`, r.providers.front() is the provider the route uses (the others are
  // tried only when it fails).
  return r;
}

}  // namespace tern::providers
