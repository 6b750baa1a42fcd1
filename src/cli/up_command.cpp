#include "cli/up_command.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <set>
#include <sstream>

#include "cli/manage_commands.h"
#include "cli/output_format.h"
#include "providers/provider.h"
#include "util/sha256.h"
#include "util/subprocess.h"
#include "wasm/host_imports.h"
#include "wasm/module_info.h"
#include "workflow/afcl.h"

namespace tern::cli {

using json = nlohmann::json;
namespace fs = std::filesystem;
using manifest::Change;
using manifest::ObjectKind;

namespace {

// The module of an app's record function: an empty WASI command (one function, `_start`,
// that returns). The record itself is the function's environment.
const std::string& recordModule() {
  static const std::string kModule = [] {
    const unsigned char bytes[] = {
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,             // magic, version 1
        0x01, 0x04, 0x01, 0x60, 0x00, 0x00,                         // type 0: [] -> []
        0x03, 0x02, 0x01, 0x00,                                     // function 0: type 0
        0x07, 0x0a, 0x01, 0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x00,  // export _start
        0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b,                         // body: no locals, end
    };
    return std::string(reinterpret_cast<const char*>(bytes), sizeof bytes);
  }();
  return kModule;
}

constexpr std::string_view kRecordVariable = "TERN_APP_RECORD";

Result<std::string> readFile(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Error(ErrorCode::kIo, fmt::format("cannot read {}", path.string()));
  std::string text(std::istreambuf_iterator<char>(f), {});
  if (f.bad()) return Error(ErrorCode::kIo, fmt::format("cannot read {}", path.string()));
  return text;
}

// The newest modification time under `path` (a file, or a directory's files).
Result<fs::file_time_type> newest(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) {
    auto t = fs::last_write_time(path, ec);
    if (ec) return Error(ErrorCode::kIo, fmt::format("{}: {}", path.string(), ec.message()));
    return t;
  }
  fs::file_time_type latest = fs::last_write_time(path, ec);
  for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_regular_file(ec)) latest = std::max(latest, it->last_write_time(ec));
  }
  if (ec) return Error(ErrorCode::kIo, fmt::format("{}: {}", path.string(), ec.message()));
  return latest;
}

// A function as this run deploys it: where its module is and the module's bytes.
struct Prepared {
  const manifest::FunctionSpec* spec;
  std::string module;
  std::string sha256;
};

// A workflow's PUT body, from its files.
struct PreparedWorkflow {
  std::string body;
  std::string digest;
};

// Everything `up` needs before talking to the node: the manifest checked, its files read,
// its modules built.
struct Loaded {
  manifest::Manifest m;
  std::map<std::string, Prepared> functions;
  std::map<std::string, PreparedWorkflow> workflows;
  manifest::DeclaredState declared;
};

// `up` builds stale modules and reads them; `down` needs only the names.
enum class Build { kWhenStale, kSkipModules };

Result<Loaded> load(const std::string& file, Build build, std::ostream& out) {
  auto text = readFile(file);
  if (!text.ok()) return text.error();
  auto parsed = manifest::parseManifest(*text, file);
  if (!parsed.ok()) return parsed.error();
  Loaded l{std::move(*parsed), {}, {}, {}};
  const manifest::Manifest& m = l.m;
  fs::path dir = fs::path(file).parent_path();
  auto resolve = [&](const std::string& p) { return dir / p; };
  auto missing = [&](const manifest::Located& at, const std::string& field) {
    return manifestError(m, at.at, field,
                         fmt::format("no such file: {}", resolve(at.value).string()));
  };

  if (build == Build::kSkipModules) {
    // Names are all `down` needs: files that are gone are no reason to keep an app.
    for (const auto& f : m.functions) l.declared.functions[f.name] = manifest::declaredFunction(f, "");
    for (const auto& w : m.workflows) l.declared.workflows[w.name] = "";
    for (const auto& r : m.routes) l.declared.routes[r.function] = manifest::RouteState{r.providers, r.policy};
    for (const auto& s : m.streams) {
      l.declared.streams[s.name] = manifest::StreamAppState{s.processor, s.maxPerSecond};
    }
    return l;
  }

  // Files first: nothing is built or read while another part of the manifest is wrong.
  std::map<std::string, manifest::WorkflowCalls> calls;
  for (const auto& w : m.workflows) {
    std::string base = "workflows." + w.name;
    std::error_code ec;
    if (!fs::is_regular_file(resolve(w.file.value), ec)) return missing(w.file, base + ".file");
    auto afcl = readFile(resolve(w.file.value));
    if (!afcl.ok()) return manifestError(m, w.file.at, base + ".file", afcl.error().message());
    std::string types;
    if (!w.types.value.empty()) {
      if (!fs::is_regular_file(resolve(w.types.value), ec)) return missing(w.types, base + ".types");
      auto t = readFile(resolve(w.types.value));
      if (!t.ok()) return manifestError(m, w.types.at, base + ".types", t.error().message());
      types = std::move(*t);
    }
    auto c = workflowCalls(*afcl, types);
    if (!c.ok()) {
      return manifestError(m, w.file.at, base + ".file",
                           fmt::format("{}: {}", w.file.value, c.error().message()));
    }
    calls[w.name] = std::move(*c);
    json body{{"afcl", *afcl}};
    if (!types.empty()) body["types"] = types;
    json options = json::object();
    for (const auto& [k, v] : w.options) options[k] = json::parse(v);
    if (!options.empty()) body["options"] = options;
    std::string dumped = body.dump();
    l.workflows[w.name] = PreparedWorkflow{dumped, sha256Hex(dumped)};
    l.declared.workflows[w.name] = sha256Hex(dumped);
  }
  for (const auto& f : m.functions) {
    std::string base = "functions." + f.name;
    std::error_code ec;
    for (size_t i = 0; i < f.sources.size(); ++i) {
      if (!fs::exists(resolve(f.sources[i].value), ec)) {
        return missing(f.sources[i], fmt::format("{}.source[{}]", base, i));
      }
    }
    if (f.build.empty() && !fs::is_regular_file(resolve(f.module.value), ec)) {
      return missing(f.module, base + ".module");
    }
  }
  if (auto ok = manifest::checkCycles(m, calls); !ok.ok()) return ok.error();

  // Builds: a module older than any of its sources, or missing, is built.
  for (const auto& f : m.functions) {
    std::string base = "functions." + f.name;
    fs::path module = resolve(f.module.value);
    if (!f.build.empty()) {
      std::error_code ec;
      bool stale = !fs::exists(module, ec);
      if (!stale) {
        auto built = fs::last_write_time(module, ec);
        for (const auto& s : f.sources) {
          auto t = newest(resolve(s.value));
          if (!t.ok()) return manifestError(m, s.at, base + ".source", t.error().message());
          stale = stale || *t > built;
        }
      }
      if (stale) {
        out << fmt::format("building {}: {}\n", f.name, terminalSafe(f.build));
        out.flush();
        SubprocessOptions options;
        options.timeout = std::chrono::minutes(30);
        options.workingDirectory = dir.empty() ? "." : dir.string();
        options.maxOutputBytes = 64 * 1024;
        auto run = runSubprocess({"/bin/sh", "-c", f.build}, options);
        if (!run.ok()) return manifestError(m, f.buildAt, base + ".build", run.error().message());
        if (run->exitStatus != 0) {
          std::string tail = run->output.size() > 2000 ? run->output.substr(run->output.size() - 2000)
                                                       : run->output;
          std::string why = run->timedOut ? "timed out"
                            : run->exitStatus < 0
                                ? fmt::format("was killed by signal {}", run->termSignal)
                                : fmt::format("exited with status {}", run->exitStatus);
          out << terminalSafe(tail) << (tail.empty() || tail.back() == '\n' ? "" : "\n");
          return manifestError(m, f.buildAt, base + ".build",
                               fmt::format("the build command {}", why));
        }
      }
    }
    std::error_code ec;
    if (!fs::is_regular_file(module, ec)) {
      return manifestError(m, f.module.at, base + ".module",
                           f.build.empty()
                               ? fmt::format("no such file: {}", module.string())
                               : fmt::format("the build did not make {}", module.string()));
    }
    auto bytes = readFile(module);
    if (!bytes.ok()) return manifestError(m, f.module.at, base + ".module", bytes.error().message());
    if (bytes->empty()) {
      return manifestError(m, f.module.at, base + ".module", module.string() + " is empty");
    }
    // The node's first checks of a module, so that one it would refuse stops the run before
    // the first change rather than midway.
    std::span<const uint8_t> view(reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size());
    auto info = wasm::readModuleInfo(view);
    Result<void> usable = info.ok() ? wasm::checkHostImports(*info) : Result<void>(info.error());
    if (!usable.ok()) {
      Error e = manifestError(m, f.module.at, base + ".module",
                              fmt::format("{}: {}", module.string(), usable.error().message()));
      return Error(ErrorCode::kInvalidModule, e.message());
    }
    std::string sha = sha256Hex(*bytes);
    l.declared.functions[f.name] = manifest::declaredFunction(f, sha);
    l.functions[f.name] = Prepared{&f, std::move(*bytes), std::move(sha)};
  }
  for (const auto& r : m.routes) {
    std::string policy = r.policy;
    if (auto p = providers::parsePolicy(r.policy); p.ok()) policy = providers::policyText(*p);
    l.declared.routes[r.function] = manifest::RouteState{r.providers, policy};
  }
  for (const auto& s : m.streams) {
    l.declared.streams[s.name] = manifest::StreamAppState{s.processor, s.maxPerSecond};
  }
  return l;
}

std::vector<std::string> stringList(const json& j) {
  std::vector<std::string> out;
  if (!j.is_array()) return out;
  for (const auto& e : j) {
    if (e.is_string()) out.push_back(e.get<std::string>());
  }
  return out;
}

std::string objectPath(ObjectKind kind, const std::string& name) {
  switch (kind) {
    case ObjectKind::kFunction: return fmt::format("/v1/functions/{}", percentEncode(name));
    case ObjectKind::kRoute: return fmt::format("/v1/routes/{}", percentEncode(name));
    case ObjectKind::kStreamApp: return fmt::format("/v1/apps/{}", percentEncode(name));
    case ObjectKind::kWorkflow: return fmt::format("/v1/workflows/{}", percentEncode(name));
  }
  return {};
}

// What the node has of the app's objects (and of the declared ones).
Result<manifest::DeployedState> readDeployed(const NodeClient& client, const Loaded& l) {
  manifest::DeployedState d;
  auto fetchFunction = [&](const std::string& name) -> Result<std::optional<json>> {
    auto reply = client.call("GET", objectPath(ObjectKind::kFunction, name));
    if (!reply.ok()) {
      if (reply.error().code() == ErrorCode::kNotFound) return std::optional<json>();
      return reply.error();
    }
    return std::optional<json>(reply->doc);
  };
  auto record = fetchFunction(manifest::recordFunctionName(l.m.app));
  if (!record.ok()) return record.error();
  if (*record) {
    std::string prefix = std::string(kRecordVariable) + "=";
    for (const auto& e : stringList((**record)["env"])) {
      if (e.rfind(prefix, 0) == 0) {
        auto r = manifest::decodeRecord(std::string_view(e).substr(prefix.size()));
        if (!r.ok()) return r.error();
        d.record = std::move(*r);
      }
    }
    if (!d.record) d.record = manifest::AppRecord{};
  }
  std::set<std::string> names;
  for (const auto& [n, s] : l.declared.functions) names.insert(n);
  if (d.record) names.insert(d.record->functions.begin(), d.record->functions.end());
  for (const auto& n : names) {
    auto f = fetchFunction(n);
    if (!f.ok()) return f.error();
    if (*f) d.functions[n] = functionStateFromJson(**f);
  }
  auto routes = client.call("GET", "/v1/routes");
  if (!routes.ok()) return routes.error();
  for (const auto& r : routes->doc.value("routes", json::array())) {
    if (!r.is_object() || !r.contains("function")) continue;
    d.routes[r.value("function", "")] =
        manifest::RouteState{stringList(r.value("providers", json::array())), r.value("policy", "")};
  }
  auto apps = client.call("GET", "/v1/apps");
  if (!apps.ok()) return apps.error();
  for (const auto& a : apps->doc.value("apps", json::array())) {
    if (!a.is_object() || !a.contains("name")) continue;
    manifest::StreamAppState s;
    if (a.contains("processor") && a["processor"].is_string()) s.processor = a["processor"];
    if (a.contains("max_per_second") && a["max_per_second"].is_number()) {
      s.maxPerSecond = a["max_per_second"].get<double>();
    }
    d.streams[a.value("name", "")] = s;
  }
  auto workflows = client.call("GET", "/v1/workflows");
  if (!workflows.ok()) return workflows.error();
  for (const auto& w : workflows->doc.value("workflows", json::array())) {
    if (w.is_object() && w.contains("name")) d.workflows.insert(w.value("name", ""));
  }
  return d;
}

Result<void> writeRecord(const NodeClient& client, std::string_view app,
                         const manifest::AppRecord& record) {
  DeployOptions o;
  o.name = manifest::recordFunctionName(app);
  o.env = {"TERN_APP=" + std::string(app),
           std::string(kRecordVariable) + "=" + manifest::encodeRecord(record)};
  o.compileTier = "baseline";
  auto target = deployTarget(o);
  if (!target.ok()) return target.error();
  auto reply = client.call("PUT", *target, recordModule(), kDeployTimeout);
  if (!reply.ok()) return reply.error();
  return {};
}


Result<void> applyStep(const NodeClient& client, const Loaded& l, const manifest::Step& s) {
  if (s.change == Change::kDelete) {
    auto reply = client.call("DELETE", objectPath(s.kind, s.name));
    if (!reply.ok() && reply.error().code() != ErrorCode::kNotFound) return reply.error();
    return {};
  }
  Result<ApiReply> reply = Error(ErrorCode::kInternal, "no step");
  switch (s.kind) {
    case ObjectKind::kFunction: {
      const Prepared& p = l.functions.at(s.name);
      const manifest::FunctionSpec& f = *p.spec;
      DeployOptions o;
      o.name = f.name;
      o.memoryMb = f.memoryMb;
      o.timeoutMs = f.timeoutMs;
      o.concurrency = f.concurrency;
      o.env = f.env;
      for (const auto& t : f.triggers) o.triggers.push_back(t.value);
      o.replyTopic = f.replyTopic;
      for (const auto& a : f.allow) o.allow.push_back(a.value);
      o.sloMs = f.sloMs;
      o.sloPercentile = f.sloPercentile;
      o.weight = f.weight;
      o.sites = f.sites;
      o.tier = f.tier;
      o.labels = f.labels;
      o.compileTier = f.compileTier;
      auto target = deployTarget(o);
      if (!target.ok()) return target.error();
      reply = client.call("PUT", *target, p.module, kDeployTimeout);
      break;
    }
    case ObjectKind::kRoute: {
      const auto& r = l.declared.routes.at(s.name);
      reply = client.call("PUT", objectPath(s.kind, s.name),
                          json{{"providers", r.providers}, {"policy", r.policy}}.dump());
      break;
    }
    case ObjectKind::kStreamApp: {
      const auto& a = l.declared.streams.at(s.name);
      json body{{"processor", nullptr}, {"max_per_second", nullptr}};
      if (!a.processor.empty()) body["processor"] = a.processor;
      if (a.maxPerSecond) body["max_per_second"] = *a.maxPerSecond;
      reply = client.call("PUT", objectPath(s.kind, s.name), body.dump());
      break;
    }
    case ObjectKind::kWorkflow:
      reply = client.call("PUT", objectPath(s.kind, s.name), l.workflows.at(s.name).body);
      break;
  }
  if (!reply.ok()) return reply.error();
  return {};
}

std::string describeStep(const manifest::Step& s) {
  return fmt::format("{} {} {}", manifest::changeName(s.change), manifest::kindName(s.kind), s.name);
}

std::string pastTense(Change c) {
  switch (c) {
    case Change::kCreate: return "created";
    case Change::kUpdate: return "updated";
    case Change::kDelete: return "deleted";
    case Change::kUnchanged: return "kept";
  }
  return "";
}

// Applies the plan's steps in order. On a failure: an error saying what was applied and
// what was not.
Result<void> applyPlan(const NodeClient& client, const Loaded& l, const manifest::Plan& plan,
                       std::ostream& out) {
  std::vector<std::string> applied;
  auto failure = [&](const Error& e, std::vector<std::string> notApplied) {
    return Error(e.code(), fmt::format("{} (applied: {}; not applied: {})", e.message(),
                                       applied.empty() ? "nothing" : fmt::format("{}", fmt::join(applied, ", ")),
                                       fmt::join(notApplied, ", ")));
  };
  // The record on the node as this run goes: the one written before the first step owns
  // everything a step may create, so a failure midway leaves nothing unowned.
  std::optional<manifest::AppRecord> onNode = plan.recordNow;
  auto finalRecordPending = [&] { return plan.writeRecord && onNode != plan.record; };
  auto remaining = [&](size_t from) {
    std::vector<std::string> left;
    for (size_t i = from; i < plan.steps.size(); ++i) {
      if (plan.steps[i].change != Change::kUnchanged) left.push_back(describeStep(plan.steps[i]));
    }
    if (plan.removeRecord) left.push_back("removal of the app's record");
    else if (finalRecordPending()) left.push_back("the app's final record");
    return left;
  };
  if (plan.writeRecord && !plan.removeRecord && onNode != plan.recordBefore) {
    if (auto ok = writeRecord(client, l.m.app, plan.recordBefore); !ok.ok()) {
      return failure(ok.error(), remaining(0));
    }
    onNode = plan.recordBefore;
  }
  for (size_t i = 0; i < plan.steps.size(); ++i) {
    const auto& s = plan.steps[i];
    if (s.change == Change::kUnchanged) continue;
    if (auto ok = applyStep(client, l, s); !ok.ok()) return failure(ok.error(), remaining(i));
    applied.push_back(describeStep(s));
    out << fmt::format("{} {} {}\n", pastTense(s.change), manifest::kindName(s.kind), s.name);
    out.flush();
  }
  if (plan.removeRecord) {
    auto reply = client.call("DELETE", objectPath(ObjectKind::kFunction,
                                                  manifest::recordFunctionName(l.m.app)));
    if (!reply.ok() && reply.error().code() != ErrorCode::kNotFound) {
      return failure(reply.error(), {"removal of the app's record"});
    }
  } else if (finalRecordPending()) {
    if (auto ok = writeRecord(client, l.m.app, plan.record); !ok.ok()) {
      return failure(ok.error(), {"the app's final record"});
    }
  }
  return {};
}

json planJson(const manifest::Plan& plan, std::string_view app, bool applied) {
  json steps = json::array();
  for (const auto& s : plan.steps) {
    json j{{"kind", manifest::kindName(s.kind)}, {"name", s.name}, {"change", manifest::changeName(s.change)}};
    if (!s.detail.empty()) j["detail"] = s.detail;
    steps.push_back(j);
  }
  return json{{"app", app}, {"steps", steps}, {"applied", applied}};
}

enum class Direction { kUp, kDown };

int run(const NodeOptions& node, const UpOptions& options, Direction direction, std::ostream& out,
        std::ostream& err) {
  bool human = node.format == OutputFormat::kHuman;
  std::ostringstream buildLog;
  auto loaded = load(options.file,
                     direction == Direction::kUp ? Build::kWhenStale : Build::kSkipModules,
                     human ? out : buildLog);
  if (!loaded.ok()) return reportFailure(err, loaded.error());
  auto client = NodeClient::open(node, NodeClient::TokenUse::kRequired);
  if (!client.ok()) return reportFailure(err, client.error());
  auto deployed = readDeployed(*client, *loaded);
  if (!deployed.ok()) return reportFailure(err, deployed.error());
  manifest::Plan plan;
  if (direction == Direction::kUp) {
    auto p = manifest::planUp(loaded->declared, *deployed);
    if (!p.ok()) return reportFailure(err, p.error());
    plan = std::move(*p);
  } else {
    plan = manifest::planDown(loaded->declared, *deployed);
  }
  if (human) {
    out << formatPlan(plan, loaded->m.app);
    out.flush();
  }
  bool changes = plan.count(Change::kCreate) + plan.count(Change::kUpdate) + plan.count(Change::kDelete) > 0 ||
                 plan.writeRecord || plan.removeRecord;
  if (options.dryRun || !changes) {
    if (!human) out << planJson(plan, loaded->m.app, false).dump() << "\n";
    return 0;
  }
  std::ostringstream progress;
  if (auto ok = applyPlan(*client, *loaded, plan, human ? out : progress); !ok.ok()) {
    return reportFailure(err, ok.error());
  }
  if (human) {
    out << fmt::format("app {} is {}\n", loaded->m.app,
                       direction == Direction::kUp ? "up to date" : "down");
  } else {
    out << planJson(plan, loaded->m.app, true).dump() << "\n";
  }
  return 0;
}

}  // namespace

manifest::FunctionState functionStateFromJson(const json& v) {
  manifest::FunctionState s;
  auto number = [&](const char* key, double fallback) {
    auto it = v.find(key);
    return it != v.end() && it->is_number() ? it->get<double>() : fallback;
  };
  s.moduleSha256 = v.value("module_sha256", "");
  s.memoryMb = static_cast<uint32_t>(number("memory_mb", 128));
  s.timeoutMs = static_cast<uint32_t>(number("timeout_ms", 10000));
  s.concurrency = static_cast<uint32_t>(number("concurrency", 0));
  s.env = stringList(v.value("env", json::array()));
  s.triggers = stringList(v.value("triggers", json::array()));
  s.replyTopic = v.value("reply_topic", "");
  s.allow = stringList(v.value("allow", json::array()));
  s.sloMs = number("slo_ms", 0);
  s.sloPercentile = number("slo_percentile", 0);
  s.weight = number("weight", 1);
  json placement = v.value("placement", json::object());
  if (placement.is_object()) {
    s.sites = stringList(placement.value("sites", json::array()));
    s.tier = placement.value("tier", "");
    s.labels = stringList(placement.value("labels", json::array()));
  }
  s.compileTier = v.value("compile_tier", "auto");
  manifest::normalize(s);
  return s;
}

Result<manifest::WorkflowCalls> workflowCalls(std::string_view afcl, std::string_view types) {
  auto wf = workflow::parseAfcl(afcl);
  if (!wf.ok()) return wf.error();
  // The type mapping: functionType -> the tern functions and Serverless URIs that serve it.
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> mapped;
  if (!types.empty()) {
    json doc = json::parse(types, nullptr, false);
    if (!doc.is_array()) {
      return Error(ErrorCode::kInvalidArgument, "the type mapping is not a JSON list");
    }
    for (size_t i = 0; i < doc.size(); ++i) {
      const json& e = doc[i];
      if (!e.is_object() || !e.contains("functionType") || !e["functionType"].is_string() ||
          !e.contains("resources") || !e["resources"].is_array()) {
        return Error(ErrorCode::kInvalidArgument,
                     fmt::format("type mapping entry {}: needs \"functionType\" and \"resources\"", i));
      }
      auto& list = mapped[e["functionType"].get<std::string>()];
      for (const auto& r : e["resources"]) {
        if (!r.is_object()) continue;
        json props = r.value("properties", json::object());
        if (!props.is_object()) continue;
        list.emplace_back(r.value("type", ""), r.value("type", "") == "Serverless"
                                                   ? props.value("Uri", "")
                                                   : props.value("function", ""));
      }
    }
  }
  std::set<std::string> functions, workflows;
  for (const auto* e : (*wf)->functions) {
    auto it = mapped.find(e->type);
    if (it == mapped.end()) {
      // An unmapped type is the function of its name in lower case (workflow/type_map.h).
      std::string name = e->type;
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      functions.insert(name);
      continue;
    }
    for (const auto& [kind, target] : it->second) {
      if (kind != "Serverless") {
        functions.insert(target);
        continue;
      }
      // http://HOST[:PORT]/fn/NAME or /wf/NAME: a call back into tern.
      size_t scheme = target.find("://");
      size_t path = target.find('/', scheme == std::string::npos ? 0 : scheme + 3);
      if (path == std::string::npos) continue;
      std::string_view p = std::string_view(target).substr(path);
      p = p.substr(0, p.find_first_of("?#"));
      if (p.rfind("/fn/", 0) == 0) functions.insert(std::string(p.substr(4, p.find('/', 4) - 4)));
      if (p.rfind("/wf/", 0) == 0) workflows.insert(std::string(p.substr(4, p.find('/', 4) - 4)));
    }
  }
  return manifest::WorkflowCalls{{functions.begin(), functions.end()},
                                 {workflows.begin(), workflows.end()}};
}

std::string formatPlan(const manifest::Plan& plan, std::string_view app) {
  std::string out = fmt::format("plan for app {}:\n", app);
  std::vector<std::vector<std::string>> rows;
  for (const auto& s : plan.steps) {
    const char* mark = s.change == Change::kCreate   ? "+"
                       : s.change == Change::kUpdate ? "~"
                       : s.change == Change::kDelete ? "-"
                                                     : "=";
    rows.push_back({std::string("  ") + mark, std::string(manifest::kindName(s.kind)), s.name,
                    std::string(manifest::changeName(s.change)) +
                        (s.detail.empty() ? "" : ": " + s.detail)});
  }
  if (!rows.empty()) out += renderTable(rows);
  out += fmt::format("{} to create, {} to update, {} to delete, {} unchanged\n",
                     plan.count(Change::kCreate), plan.count(Change::kUpdate),
                     plan.count(Change::kDelete), plan.count(Change::kUnchanged));
  return out;
}

int upCommand(const NodeOptions& node, const UpOptions& options, std::ostream& out,
              std::ostream& err) {
  return run(node, options, Direction::kUp, out, err);
}

int downCommand(const NodeOptions& node, const UpOptions& options, std::ostream& out,
                std::ostream& err) {
  return run(node, options, Direction::kDown, out, err);
}

}  // namespace tern::cli
