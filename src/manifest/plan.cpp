#include "manifest/plan.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>

namespace tern::manifest {

using json = nlohmann::json;

FunctionState declaredFunction(const FunctionSpec& f, std::string moduleSha256) {
  FunctionState s;
  s.moduleSha256 = std::move(moduleSha256);
  if (f.memoryMb) s.memoryMb = *f.memoryMb;
  if (f.timeoutMs) s.timeoutMs = *f.timeoutMs;
  if (f.concurrency) s.concurrency = *f.concurrency;
  s.env = f.env;
  for (const auto& t : f.triggers) s.triggers.push_back(t.value);
  s.replyTopic = f.replyTopic;
  for (const auto& a : f.allow) s.allow.push_back(a.value);
  if (f.sloMs) s.sloMs = *f.sloMs;
  if (f.sloPercentile) s.sloPercentile = *f.sloPercentile;
  if (f.weight) s.weight = *f.weight;
  s.sites = f.sites;
  s.tier = f.tier;
  s.labels = f.labels;
  if (!f.compileTier.empty()) s.compileTier = f.compileTier;
  normalize(s);
  return s;
}

void normalize(FunctionState& s) {
  for (auto* l : {&s.env, &s.triggers, &s.allow, &s.sites, &s.labels}) {
    std::sort(l->begin(), l->end());
  }
}

std::vector<std::string> functionDifferences(const FunctionState& want, const FunctionState& have) {
  std::vector<std::string> out;
  auto diff = [&](bool differs, const char* name) {
    if (differs) out.emplace_back(name);
  };
  diff(want.moduleSha256 != have.moduleSha256, "module");
  diff(want.memoryMb != have.memoryMb, "memory_mb");
  diff(want.timeoutMs != have.timeoutMs, "timeout_ms");
  diff(want.concurrency != have.concurrency, "concurrency");
  diff(want.env != have.env, "env");
  diff(want.triggers != have.triggers, "triggers");
  diff(want.replyTopic != have.replyTopic, "reply_topic");
  diff(want.allow != have.allow, "allow");
  diff(want.sloMs != have.sloMs || want.sloPercentile != have.sloPercentile ||
           want.weight != have.weight,
       "objective");
  diff(want.sites != have.sites || want.tier != have.tier || want.labels != have.labels,
       "placement");
  diff(want.compileTier != have.compileTier, "compile_tier");
  return out;
}

std::string encodeRecord(const AppRecord& r) {
  return json{{"functions", r.functions},
              {"routes", r.routes},
              {"streams", r.streams},
              {"workflows", r.workflows}}
      .dump();
}

Result<AppRecord> decodeRecord(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  auto bad = [](std::string_view what) {
    return Error(ErrorCode::kInternal, fmt::format("the app's record on the node is malformed: {}", what));
  };
  if (!j.is_object()) return bad("not a JSON object");
  AppRecord r;
  for (auto [key, set] : {std::pair{"functions", &r.functions}, std::pair{"routes", &r.routes},
                          std::pair{"streams", &r.streams}}) {
    if (!j.contains(key)) continue;
    if (!j[key].is_array()) return bad(fmt::format("\"{}\" is not a list", key));
    for (const auto& n : j[key]) {
      if (!n.is_string()) return bad(fmt::format("\"{}\" holds a value that is not text", key));
      set->insert(n.get<std::string>());
    }
  }
  if (j.contains("workflows")) {
    if (!j["workflows"].is_object()) return bad("\"workflows\" is not an object");
    for (const auto& [name, digest] : j["workflows"].items()) {
      if (!digest.is_string()) return bad("a workflow's digest is not text");
      r.workflows[name] = digest.get<std::string>();
    }
  }
  return r;
}

std::string recordFunctionName(std::string_view app) { return "tern-app-" + std::string(app); }

std::string_view kindName(ObjectKind k) {
  switch (k) {
    case ObjectKind::kFunction: return "function";
    case ObjectKind::kRoute: return "route";
    case ObjectKind::kStreamApp: return "stream app";
    case ObjectKind::kWorkflow: return "workflow";
  }
  return "object";
}

std::string_view changeName(Change c) {
  switch (c) {
    case Change::kCreate: return "create";
    case Change::kUpdate: return "update";
    case Change::kUnchanged: return "unchanged";
    case Change::kDelete: return "delete";
  }
  return "change";
}

size_t Plan::count(Change c) const {
  return static_cast<size_t>(
      std::count_if(steps.begin(), steps.end(), [c](const Step& s) { return s.change == c; }));
}

namespace {

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// One kind's creates and updates (into `apply`) and deletes (into `remove`).
template <typename State>
void planKind(ObjectKind kind, const std::map<std::string, State>& want,
              const std::map<std::string, State>& have, const std::set<std::string>& owned,
              std::vector<Step>& apply, std::vector<Step>& remove,
              std::vector<std::string>& conflicts) {
  for (const auto& [name, state] : want) {
    auto it = have.find(name);
    if (it == have.end()) {
      apply.push_back(Step{kind, name, Change::kCreate, ""});
      continue;
    }
    if (!owned.count(name)) {
      conflicts.push_back(fmt::format("{} \"{}\"", kindName(kind), name));
      continue;
    }
    if (it->second == state) {
      apply.push_back(Step{kind, name, Change::kUnchanged, ""});
      continue;
    }
    std::string detail;
    if constexpr (std::is_same_v<State, FunctionState>) {
      detail = joined(functionDifferences(state, it->second)) + " changed";
    } else if constexpr (std::is_same_v<State, RouteState>) {
      detail = it->second.providers != state.providers ? "providers changed" : "policy changed";
    } else {
      detail = it->second.processor != state.processor ? "processor changed" : "max_per_second changed";
    }
    apply.push_back(Step{kind, name, Change::kUpdate, detail});
  }
  for (const auto& name : owned) {
    if (!want.count(name) && have.count(name)) {
      remove.push_back(Step{kind, name, Change::kDelete, "no longer declared"});
    }
  }
}

}  // namespace

Result<Plan> planUp(const DeclaredState& declared, const DeployedState& deployed) {
  AppRecord before = deployed.record.value_or(AppRecord{});
  std::vector<Step> apply, remove;
  std::vector<std::string> conflicts;
  planKind(ObjectKind::kFunction, declared.functions, deployed.functions, before.functions,
           apply, remove, conflicts);
  planKind(ObjectKind::kRoute, declared.routes, deployed.routes, before.routes, apply, remove,
           conflicts);
  planKind(ObjectKind::kStreamApp, declared.streams, deployed.streams, before.streams, apply,
           remove, conflicts);
  // Workflows: the node does not give their definition back, so the record's digest of what
  // was deployed stands for it.
  for (const auto& [name, digest] : declared.workflows) {
    if (!deployed.workflows.count(name)) {
      apply.push_back(Step{ObjectKind::kWorkflow, name, Change::kCreate, ""});
    } else if (!before.workflows.count(name)) {
      conflicts.push_back(fmt::format("workflow \"{}\"", name));
    } else if (before.workflows.at(name) == digest) {
      apply.push_back(Step{ObjectKind::kWorkflow, name, Change::kUnchanged, ""});
    } else {
      apply.push_back(Step{ObjectKind::kWorkflow, name, Change::kUpdate, "definition changed"});
    }
  }
  for (const auto& [name, digest] : before.workflows) {
    if (!declared.workflows.count(name) && deployed.workflows.count(name)) {
      remove.push_back(Step{ObjectKind::kWorkflow, name, Change::kDelete, "no longer declared"});
    }
  }
  if (!conflicts.empty()) {
    std::string list;
    for (const auto& c : conflicts) list += (list.empty() ? "" : ", ") + c;
    return Error(ErrorCode::kConflict,
                 fmt::format("{} already on the node and not owned by this app (deployed by "
                             "hand or by another app): remove {} or rename {} in the manifest",
                             list, conflicts.size() == 1 ? "it" : "them",
                             conflicts.size() == 1 ? "it" : "them"));
  }
  Plan plan;
  plan.steps = std::move(apply);
  // Deletes: workflows and stream apps before the routes and functions they name.
  std::stable_sort(remove.begin(), remove.end(), [](const Step& a, const Step& b) {
    return static_cast<int>(a.kind) > static_cast<int>(b.kind);
  });
  plan.steps.insert(plan.steps.end(), remove.begin(), remove.end());

  for (const auto& [n, s] : declared.functions) plan.record.functions.insert(n);
  for (const auto& [n, s] : declared.routes) plan.record.routes.insert(n);
  for (const auto& [n, s] : declared.streams) plan.record.streams.insert(n);
  plan.record.workflows = declared.workflows;

  plan.recordBefore = before;
  plan.recordBefore.functions.insert(plan.record.functions.begin(), plan.record.functions.end());
  plan.recordBefore.routes.insert(plan.record.routes.begin(), plan.record.routes.end());
  plan.recordBefore.streams.insert(plan.record.streams.begin(), plan.record.streams.end());
  for (const auto& [n, d] : declared.workflows) plan.recordBefore.workflows.try_emplace(n, "");
  plan.writeRecord = !deployed.record || !(*deployed.record == plan.record);
  plan.recordNow = deployed.record;
  return plan;
}

Plan planDown(const DeclaredState& declared, const DeployedState& deployed) {
  AppRecord before = deployed.record.value_or(AppRecord{});
  Plan plan;
  plan.record = before;
  auto consider = [&](ObjectKind kind, const std::string& name, bool declaredHere, bool exists,
                      bool owned) {
    if (!declaredHere) return;
    if (!exists) {
      plan.steps.push_back(Step{kind, name, Change::kUnchanged, "not on the node"});
    } else if (!owned) {
      plan.steps.push_back(Step{kind, name, Change::kUnchanged, "not owned by this app: left alone"});
    } else {
      plan.steps.push_back(Step{kind, name, Change::kDelete, ""});
    }
  };
  for (const auto& [n, d] : declared.workflows) {
    consider(ObjectKind::kWorkflow, n, true, deployed.workflows.count(n) > 0,
             before.workflows.count(n) > 0);
    plan.record.workflows.erase(n);
  }
  for (const auto& [n, s] : declared.streams) {
    consider(ObjectKind::kStreamApp, n, true, deployed.streams.count(n) > 0, before.streams.count(n) > 0);
    plan.record.streams.erase(n);
  }
  for (const auto& [n, s] : declared.routes) {
    consider(ObjectKind::kRoute, n, true, deployed.routes.count(n) > 0, before.routes.count(n) > 0);
    plan.record.routes.erase(n);
  }
  for (const auto& [n, s] : declared.functions) {
    consider(ObjectKind::kFunction, n, true, deployed.functions.count(n) > 0,
             before.functions.count(n) > 0);
    plan.record.functions.erase(n);
  }
  plan.recordBefore = before;
  plan.recordNow = deployed.record;
  if (deployed.record) {
    plan.removeRecord = plan.record.empty();
    plan.writeRecord = !plan.removeRecord && !(plan.record == before);
  }
  return plan;
}

}  // namespace tern::manifest
