#include "manifest/manifest.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <initializer_list>
#include <set>

#include "events/trigger_spec.h"
#include "exec/capabilities.h"
#include "providers/provider.h"
#include "util/names.h"
#include "util/yaml_values.h"

namespace tern::manifest {

namespace {

// The first problem found; thrown inside the parser only and turned into an Error at its
// boundary (yaml-cpp reports its own errors by exception too).
struct Problem {
  Position at;
  std::string field;
  std::string message;
};

Position positionOf(const YAML::Node& n) {
  auto m = n.Mark();
  return Position{m.line + 1, m.column + 1};
}

[[noreturn]] void fail(const YAML::Node& n, std::string field, std::string message) {
  throw Problem{positionOf(n), std::move(field), std::move(message)};
}

// Text quoted for a message: at most 60 characters, control characters escaped.
std::string shown(std::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < 60; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > 60) out += "...";
  return out + "\"";
}

// Refuses text that is not UTF-8, documents whose aliases expand past a bound, and aliases
// that name a node containing them.
void checkValues(const std::string& text, const YAML::Node& root) {
  constexpr size_t kMaxValues = 100000;
  auto bad = findBadYamlValue(text, root, kMaxValues);
  if (!bad) return;
  Position at{bad->mark.line + 1, bad->mark.column + 1};
  switch (bad->problem) {
    case YamlValueProblem::kTooMany:
      throw Problem{at, "(document)", fmt::format("more than {} keys and values", kMaxValues)};
    case YamlValueProblem::kCycle:
      throw Problem{at, "(document)", "an alias names a sequence or map that contains it"};
    case YamlValueProblem::kNotUtf8:
      break;
  }
  throw Problem{at, "(document)", "text that is not valid UTF-8"};
}

// The entries of a map in document order, refusing keys that are not text, repeated
// keys and keys outside `known` (when given).
std::vector<std::pair<YAML::Node, YAML::Node>> entries(
    const YAML::Node& map, const std::string& field,
    std::initializer_list<std::string_view> known = {}) {
  if (!map.IsMap()) fail(map, field, "must be a map of keys to values");
  std::vector<std::pair<YAML::Node, YAML::Node>> out;
  std::set<std::string> seen;
  for (auto it = map.begin(); it != map.end(); ++it) {
    if (!it->first.IsScalar()) fail(it->first, field, "keys must be text");
    const std::string& key = it->first.Scalar();
    if (known.size() != 0 &&
        std::find(known.begin(), known.end(), std::string_view(key)) == known.end()) {
      std::string names;
      for (auto k : known) names += fmt::format("{}{}", names.empty() ? "" : ", ", k);
      fail(it->first, field.empty() ? key : field + "." + key,
           fmt::format("unknown key (known here: {})", names));
    }
    if (!seen.insert(key).second) {
      fail(it->first, field.empty() ? key : field + "." + key, "appears twice");
    }
    out.emplace_back(it->first, it->second);
  }
  return out;
}

std::string text(const YAML::Node& n, const std::string& field) {
  if (!n.IsScalar()) fail(n, field, "must be text");
  return n.Scalar();
}

Located located(const YAML::Node& n, const std::string& field) {
  std::string v = text(n, field);
  if (v.empty()) fail(n, field, "must not be empty");
  return Located{std::move(v), positionOf(n)};
}

uint32_t integer(const YAML::Node& n, const std::string& field, uint32_t lo, uint32_t hi) {
  std::string s = n.IsScalar() ? n.Scalar() : std::string();
  bool digits = !s.empty() && s.size() <= 10 &&
                std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  uint64_t v = digits ? std::stoull(s) : 0;
  if (!n.IsScalar() || !digits || v < lo || v > hi) {
    fail(n, field, fmt::format("must be an integer {}..{}, got {}", lo, hi,
                               n.IsScalar() ? shown(s) : "a collection"));
  }
  return static_cast<uint32_t>(v);
}

double number(const YAML::Node& n, const std::string& field) {
  std::string s = n.IsScalar() ? n.Scalar() : std::string();
  size_t used = 0;
  double v = 0;
  bool ok = n.IsScalar() && !s.empty() && s.size() < 40;
  if (ok) {
    try {
      v = std::stod(s, &used);
    } catch (const std::exception&) {
      ok = false;
    }
  }
  if (!ok || used != s.size() || !std::isfinite(v)) {
    fail(n, field, fmt::format("must be a number, got {}", n.IsScalar() ? shown(s) : "a collection"));
  }
  return v;
}

// A list of text; a single text is a list of one.
std::vector<Located> list(const YAML::Node& n, const std::string& field) {
  std::vector<Located> out;
  if (n.IsScalar()) {
    out.push_back(located(n, field));
    return out;
  }
  if (!n.IsSequence()) fail(n, field, "must be a list of text");
  for (size_t i = 0; i < n.size(); ++i) {
    out.push_back(located(n[i], fmt::format("{}[{}]", field, i)));
  }
  return out;
}

std::vector<std::string> values(const std::vector<Located>& l) {
  std::vector<std::string> out;
  for (const auto& v : l) out.push_back(v.value);
  return out;
}

// KEY=VALUE from a map of scalars, sorted by key.
std::vector<std::string> keyValues(const YAML::Node& n, const std::string& field) {
  std::vector<std::string> out;
  for (const auto& [k, v] : entries(n, field)) {
    const std::string& key = k.Scalar();
    std::string f = field + "." + key;
    if (key.empty() || key.find('=') != std::string::npos || key.find('\0') != std::string::npos) {
      fail(k, f, "a key must be non-empty and contain no '=' or NUL");
    }
    std::string value = v.IsNull() ? std::string() : text(v, f);
    if (value.find('\0') != std::string::npos) fail(v, f, "must not contain NUL");
    out.push_back(key + "=" + value);
  }
  std::sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) {
    return a.substr(0, a.find('=')) < b.substr(0, b.find('='));
  });
  return out;
}

std::string name(const YAML::Node& key, const std::string& field, std::string_view what) {
  const std::string& s = key.Scalar();
  if (!isFunctionName(s)) {
    fail(key, field,
         fmt::format("{} {} is not a valid name: use 1-63 characters a-z, 0-9 and '-', "
                     "starting with a letter or digit",
                     what, shown(s)));
  }
  return s;
}

// Rethrows a check's error as a problem at `n`.
void require(const Result<void>& r, const YAML::Node& n, const std::string& field) {
  if (!r.ok()) fail(n, field, r.error().message());
}

FunctionSpec function(const YAML::Node& key, const YAML::Node& body) {
  FunctionSpec f;
  std::string base = fmt::format("functions.{}", name(key, "functions." + key.Scalar(), "function"));
  f.name = key.Scalar();
  f.at = positionOf(key);
  if (f.name.rfind("tern-app-", 0) == 0) {
    fail(key, base, "names starting with \"tern-app-\" are kept for apps' ownership records");
  }
  YAML::Node triggersNode, replyNode, allowNode;
  bool haveModule = false;
  for (const auto& [k, v] : entries(body, base,
                                    {"module", "build", "source", "memory_mb", "timeout_ms",
                                     "concurrency", "env", "triggers", "reply_topic", "allow",
                                     "objective", "placement", "compile_tier"})) {
    const std::string& key2 = k.Scalar();
    std::string field = base + "." + key2;
    if (key2 == "module") {
      f.module = located(v, field);
      haveModule = true;
    } else if (key2 == "build") {
      f.build = located(v, field).value;
      f.buildAt = positionOf(v);
    } else if (key2 == "source") {
      f.sources = list(v, field);
    } else if (key2 == "memory_mb") {
      f.memoryMb = integer(v, field, 1, 4096);
    } else if (key2 == "timeout_ms") {
      f.timeoutMs = integer(v, field, 1, 900000);
    } else if (key2 == "concurrency") {
      f.concurrency = integer(v, field, 0, 65536);
    } else if (key2 == "env") {
      f.env = keyValues(v, field);
    } else if (key2 == "triggers") {
      f.triggers = list(v, field);
      triggersNode = v;
    } else if (key2 == "reply_topic") {
      f.replyTopic = located(v, field).value;
      replyNode = v;
    } else if (key2 == "allow") {
      f.allow = list(v, field);
      allowNode = v;
    } else if (key2 == "objective") {
      YAML::Node slo, percentile;
      for (const auto& [ok, ov] : entries(v, field, {"slo_ms", "percentile", "weight"})) {
        std::string of = field + "." + ok.Scalar();
        double x = number(ov, of);
        if (ok.Scalar() == "slo_ms") {
          if (!(x > 0)) fail(ov, of, "must be more than 0");
          f.sloMs = x;
        } else if (ok.Scalar() == "percentile") {
          if (!(x > 0 && x < 100)) fail(ov, of, "must be strictly between 0 and 100");
          f.sloPercentile = x;
          percentile = ov;
        } else {
          if (!(x > 0)) fail(ov, of, "must be more than 0");
          f.weight = x;
        }
      }
      if (f.sloPercentile && !f.sloMs) fail(percentile, field + ".percentile", "needs slo_ms");
    } else if (key2 == "placement") {
      for (const auto& [pk, pv] : entries(v, field, {"sites", "tier", "labels"})) {
        std::string pf = field + "." + pk.Scalar();
        if (pk.Scalar() == "sites") {
          f.sites = values(list(pv, pf));
        } else if (pk.Scalar() == "tier") {
          f.tier = text(pv, pf);
          if (f.tier != "edge" && f.tier != "cloud") fail(pv, pf, "must be edge or cloud");
        } else {
          f.labels = keyValues(pv, pf);
        }
      }
    } else if (key2 == "compile_tier") {
      f.compileTier = text(v, field);
      if (f.compileTier != "auto" && f.compileTier != "baseline" && f.compileTier != "optimized") {
        fail(v, field, "must be auto, baseline or optimized");
      }
    }
  }
  if (!haveModule) fail(key, base + ".module", "is required (the .wasm file, built or given)");
  if (!f.sources.empty() && f.build.empty()) {
    fail(key, base + ".source", "needs build: the command that makes the module from it");
  }
  // The node's own checks, run before anything is deployed.
  for (size_t i = 0; i < f.triggers.size(); ++i) {
    auto t = events::parseTrigger(f.triggers[i].value);
    if (!t.ok()) {
      throw Problem{f.triggers[i].at, fmt::format("{}.triggers[{}]", base, i), t.error().message()};
    }
  }
  if (!f.triggers.empty() || !f.replyTopic.empty()) {
    require(events::checkTriggers(values(f.triggers), f.replyTopic),
            replyNode ? replyNode : triggersNode, base + (replyNode ? ".reply_topic" : ".triggers"));
  }
  for (size_t i = 0; i < f.allow.size(); ++i) {
    auto c = exec::parseCapabilities({f.allow[i].value});
    if (!c.ok()) {
      throw Problem{f.allow[i].at, fmt::format("{}.allow[{}]", base, i), c.error().message()};
    }
  }
  return f;
}

WorkflowSpec workflow(const YAML::Node& key, const YAML::Node& body) {
  WorkflowSpec w;
  std::string base = fmt::format("workflows.{}", name(key, "workflows." + key.Scalar(), "workflow"));
  w.name = key.Scalar();
  w.at = positionOf(key);
  bool haveFile = false;
  for (const auto& [k, v] : entries(body, base, {"file", "types", "options"})) {
    std::string field = base + "." + k.Scalar();
    if (k.Scalar() == "file") {
      w.file = located(v, field);
      haveFile = true;
    } else if (k.Scalar() == "types") {
      w.types = located(v, field);
    } else {
      for (const auto& [ok, ov] :
           entries(v, field, {"policy", "local_capacity", "size_threshold_bytes", "attempts",
                              "max_tasks_in_flight", "serverless_timeout_ms"})) {
        const std::string& o = ok.Scalar();
        std::string of = field + "." + o;
        if (o == "policy") {
          std::string p = text(ov, of);
          if (p != "local-first" && p != "size" && p != "latency" && p != "random") {
            fail(ov, of, "must be local-first, size, latency or random");
          }
          w.options[o] = "\"" + p + "\"";
        } else if (o == "local_capacity") {
          w.options[o] = std::to_string(integer(ov, of, 0, 1000000));
        } else if (o == "attempts") {
          w.options[o] = std::to_string(integer(ov, of, 1, 100));
        } else {
          w.options[o] = std::to_string(integer(ov, of, 1, 4000000000U));
        }
      }
    }
  }
  if (!haveFile) fail(key, base + ".file", "is required (the AFCL document)");
  return w;
}

RouteSpec route(const YAML::Node& key, const YAML::Node& body) {
  RouteSpec r;
  std::string base = fmt::format("routes.{}", name(key, "routes." + key.Scalar(), "function"));
  r.function = key.Scalar();
  r.at = positionOf(key);
  YAML::Node providersNode;
  for (const auto& [k, v] : entries(body, base, {"providers", "policy"})) {
    std::string field = base + "." + k.Scalar();
    if (k.Scalar() == "providers") {
      r.providers = values(list(v, field));
      providersNode = v;
    } else {
      r.policy = located(v, field).value;
    }
  }
  if (!providersNode) fail(key, base + ".providers", "is required");
  if (r.policy.empty()) fail(key, base + ".policy", "is required");
  nlohmann::json routeBody{{"providers", r.providers}, {"policy", r.policy}};
  if (auto parsed = providers::parseRoute(r.function, routeBody.dump()); !parsed.ok()) {
    fail(providersNode, base, parsed.error().message());
  }
  return r;
}

StreamAppSpec streamApp(const YAML::Node& key, const YAML::Node& body) {
  StreamAppSpec s;
  std::string base = fmt::format("streams.{}", name(key, "streams." + key.Scalar(), "stream app"));
  s.name = key.Scalar();
  s.at = positionOf(key);
  if (body.IsNull()) return s;
  for (const auto& [k, v] : entries(body, base, {"processor", "max_per_second"})) {
    std::string field = base + "." + k.Scalar();
    if (k.Scalar() == "processor") {
      s.processor = text(v, field);
      if (!isFunctionName(s.processor)) fail(v, field, "is not a valid function name");
    } else {
      double x = number(v, field);
      if (!(x > 0)) fail(v, field, "must be more than 0");
      s.maxPerSecond = x;
    }
  }
  return s;
}

Manifest parse(std::string_view textIn, std::string_view file) {
  Manifest m;
  m.file = std::string(file);
  std::string document(textIn);
  YAML::Node root = YAML::Load(document);
  checkValues(document, root);
  if (!root.IsMap()) fail(root, "(document)", "a manifest is a map with app, functions, workflows, routes and streams");
  bool haveApp = false;
  for (const auto& [k, v] : entries(root, "", {"app", "functions", "workflows", "routes", "streams"})) {
    const std::string& key = k.Scalar();
    if (key == "app") {
      m.app = text(v, "app");
      m.appAt = positionOf(v);
      if (!isAppName(m.app)) {
        fail(v, "app", fmt::format("{} is not a valid app name: 1-54 characters a-z, 0-9 and "
                                   "'-', starting with a letter or digit", shown(m.app)));
      }
      haveApp = true;
    } else if (v.IsNull()) {
      continue;  // an empty section
    } else if (key == "functions") {
      for (const auto& [fk, fv] : entries(v, "functions")) m.functions.push_back(function(fk, fv));
    } else if (key == "workflows") {
      for (const auto& [wk, wv] : entries(v, "workflows")) m.workflows.push_back(workflow(wk, wv));
    } else if (key == "routes") {
      for (const auto& [rk, rv] : entries(v, "routes")) m.routes.push_back(route(rk, rv));
    } else {
      for (const auto& [sk, sv] : entries(v, "streams")) m.streams.push_back(streamApp(sk, sv));
    }
  }
  if (!haveApp) fail(root, "app", "is required (the application's name)");
  return m;
}

}  // namespace

bool isAppName(std::string_view name) { return name.size() <= 54 && isFunctionName(name); }

Error manifestError(const Manifest& m, Position at, std::string_view field, std::string_view message) {
  return Error(ErrorCode::kInvalidArgument,
               fmt::format("{}:{}:{}: {}: {}", m.file, at.line, at.column, field, message));
}

Result<Manifest> parseManifest(std::string_view text, std::string_view file) {
  try {
    return parse(text, file);
  } catch (const Problem& p) {
    return Error(ErrorCode::kInvalidArgument, fmt::format("{}:{}:{}: {}: {}", file, p.at.line,
                                                          p.at.column, p.field, p.message));
  } catch (const YAML::Exception& e) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("{}:{}:{}: (document): malformed YAML: {}", file, e.mark.line + 1,
                             e.mark.column + 1, e.msg));
  }
}

Result<void> checkCycles(const Manifest& m, const std::map<std::string, WorkflowCalls>& calls) {
  // Nodes "fn:NAME" and "wf:NAME"; each edge keeps where it was written.
  struct Edge {
    std::string to;
    Position at;
    std::string field;
  };
  std::map<std::string, std::vector<Edge>> edges;
  std::set<std::string> declared;
  for (const auto& f : m.functions) declared.insert("fn:" + f.name);
  for (const auto& w : m.workflows) declared.insert("wf:" + w.name);
  for (const auto& f : m.functions) {
    for (size_t i = 0; i < f.allow.size(); ++i) {
      const std::string& a = f.allow[i].value;
      if (a.rfind("invoke:", 0) != 0) continue;
      std::string to = fmt::format("fn:{}", a.substr(7));
      if (declared.count(to)) {
        edges["fn:" + f.name].push_back(
            Edge{to, f.allow[i].at, fmt::format("functions.{}.allow[{}]", f.name, i)});
      }
    }
  }
  for (const auto& w : m.workflows) {
    auto it = calls.find(w.name);
    if (it == calls.end()) continue;
    for (const auto& fn : it->second.functions) {
      if (declared.count("fn:" + fn)) {
        edges["wf:" + w.name].push_back(Edge{"fn:" + fn, w.file.at, "workflows." + w.name + ".file"});
      }
    }
    for (const auto& wf : it->second.workflows) {
      if (declared.count("wf:" + wf)) {
        edges["wf:" + w.name].push_back(Edge{"wf:" + wf, w.file.at, "workflows." + w.name + ".file"});
      }
    }
  }
  // Depth-first search with colours, iterative; the path gives the cycle.
  std::map<std::string, int> colour;  // 0 new, 1 on the path, 2 done
  auto label = [](const std::string& node) {
    return (node[0] == 'f' ? "function " : "workflow ") + node.substr(3);
  };
  for (const auto& start : declared) {
    if (colour[start] != 0) continue;
    std::vector<std::pair<std::string, size_t>> stack{{start, 0}};
    colour[start] = 1;
    while (!stack.empty()) {
      auto& [node, next] = stack.back();
      const auto& out = edges[node];
      if (next == out.size()) {
        colour[node] = 2;
        stack.pop_back();
        continue;
      }
      const Edge& e = out[next++];
      if (colour[e.to] == 1) {
        std::string cycle;
        bool on = false;
        for (const auto& [n, i] : stack) {
          on = on || n == e.to;
          if (on) cycle += label(n) + " -> ";
        }
        cycle += label(e.to);
        return manifestError(m, e.at, e.field, "a cycle between functions and workflows: " + cycle);
      }
      if (colour[e.to] == 0) {
        colour[e.to] = 1;
        stack.emplace_back(e.to, 0);
      }
    }
  }
  return {};
}

}  // namespace tern::manifest
