#include "http/http_client.h"
#include "workflow/workflow_service.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
#include <random>

#include "async/http_callback.h"
#include "store/registry.h"
#include "util/clock.h"
#include "workflow/costless.h"
#include "workflow/type_map.h"
#include "util/names.h"
#include "util/thread_annotations.h"

namespace tern::workflow {

using json = nlohmann::json;

namespace {


constexpr size_t kMaxServerlessAnswer = 6u << 20;
constexpr double kEwmaWeight = 0.2;

bool hasLabels(const std::vector<std::string>& have, const std::vector<std::string>& want) {
  return std::all_of(want.begin(), want.end(), [&](const std::string& l) {
    return std::find(have.begin(), have.end(), l) != have.end();
  });
}

bool admits(const Implementation& impl, const PeerView& node) {
  if (!impl.tier.empty() && impl.tier != node.tier) return false;
  if (!impl.sites.empty() && std::find(impl.sites.begin(), impl.sites.end(), node.site) == impl.sites.end()) return false;
  return hasLabels(node.labels, impl.labels);
}

}  // namespace

json optionsJson(const WorkflowOptions& o) {
  json j{{"policy", policyName(o.policy)},
         {"local_capacity", o.localCapacity},
         {"size_threshold_bytes", o.sizeThresholdBytes},
         {"attempts", o.attempts},
         {"max_tasks_in_flight", o.maxTasksInFlight},
         {"serverless_timeout_ms", o.serverlessTimeoutMs}};
  if (!o.plan.is_null()) j["plan"] = o.plan;
  return j;
}

Result<WorkflowOptions> parseOptions(const json& j) {
  WorkflowOptions o;
  if (j.is_null()) return o;
  if (!j.is_object()) return Error(ErrorCode::kInvalidArgument, "workflow options must be a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    if (k == "policy") {
      if (!it->is_string()) return Error(ErrorCode::kInvalidArgument, "policy must be text");
      auto p = parsePolicy(it->get<std::string>());
      if (!p.ok()) return p.error();
      o.policy = *p;
      continue;
    }
    if (k == "plan") {
      // Checked against the workflow when it is built (applyPlan).
      if (!it->is_object()) return Error(ErrorCode::kInvalidArgument, "plan must be a JSON object (tern plan workflow --json)");
      o.plan = *it;
      continue;
    }
    struct Field {
      const char* name;
      uint64_t min, max;
      std::function<void(uint64_t)> set;
    };
    const Field fields[] = {
        {"local_capacity", 0, 65536, [&](uint64_t v) { o.localCapacity = static_cast<uint32_t>(v); }},
        {"size_threshold_bytes", 0, uint64_t{1} << 40, [&](uint64_t v) { o.sizeThresholdBytes = v; }},
        {"attempts", 1, 100, [&](uint64_t v) { o.attempts = static_cast<uint32_t>(v); }},
        {"max_tasks_in_flight", 1, 100000, [&](uint64_t v) { o.maxTasksInFlight = static_cast<uint32_t>(v); }},
        {"serverless_timeout_ms", 1, 900000, [&](uint64_t v) { o.serverlessTimeoutMs = static_cast<uint32_t>(v); }},
    };
    bool known = false;
    for (const auto& f : fields) {
      if (k != f.name) continue;
      known = true;
      if (!it->is_number_unsigned() || it->get<uint64_t>() < f.min || it->get<uint64_t>() > f.max) {
        return Error(ErrorCode::kInvalidArgument, fmt::format("{} must be a whole number in {}..{}", k, f.min, f.max));
      }
      f.set(it->get<uint64_t>());
    }
    if (!known) return Error(ErrorCode::kInvalidArgument, fmt::format("unknown workflow option \"{}\"", k));
  }
  return o;
}

// A deployed definition and the placement of its tasks: the resources each task may use,
// how many of its tasks run where, and the tasks waiting for room (first come, first
// served). Runs hold it while they go on, also after a new deploy replaced it.
struct WorkflowService::Deployed : TaskRunner {
  WorkflowService* service = nullptr;
  std::string name;
  std::string definition;  // JSON of the record, kept with each run
  std::shared_ptr<const Workflow> wf;
  TypeMap types;
  WorkflowOptions options;
  std::optional<Fusion> fusion;  // with a plan
  Counter* tasksLocal = nullptr;
  Counter* tasksNode = nullptr;
  Counter* tasksServerless = nullptr;

  struct Waiting {
    TaskCall call;
    std::function<void(TaskResult)> done;
  };
  struct Resource {
    ResourceView::Kind kind;
    std::string id;  // "local", the node id, the URI
    std::string function;
    std::vector<std::string> unit;  // a fused unit: every member's function, in order
  };
  Mutex mu;
  std::deque<Waiting> waiting TERN_GUARDED_BY(mu);
  std::map<std::string, uint32_t> inFlight TERN_GUARDED_BY(mu);  // resource id -> tasks
  std::map<std::string, double> meanMs TERN_GUARDED_BY(mu);      // resource id + function -> EWMA
  std::mt19937_64 random TERN_GUARDED_BY(mu){std::random_device{}()};
  bool pumping TERN_GUARDED_BY(mu) = false;
  bool again TERN_GUARDED_BY(mu) = false;

  void runTask(const TaskCall& call, std::function<void(TaskResult)> done) override {
    {
      MutexLock lock(mu);
      waiting.push_back(Waiting{call, std::move(done)});
    }
    pump();
  }

  // The tern function implementing `task` on `node` (this node when `local`), if any.
  std::optional<std::string> functionOn(const Element& task, const PeerView& node, bool local) const {
    const ServiceDeps& deps = service->deps_;
    for (const auto& impl : types.implementations(task.type)) {
      if (impl.kind != Implementation::Kind::kTern) continue;
      bool serves = local ? deps.table.find(impl.function) != nullptr
                          : std::find(node.functions.begin(), node.functions.end(), impl.function) != node.functions.end();
      bool admitted = local && node.id.empty() ? true : admits(impl, node);
      if (serves && admitted) return impl.function;
    }
    return std::nullopt;
  }

  // The resources that may run `call` (a task, or a fused unit), given a snapshot of the
  // cluster's other nodes. A planned call runs only at its unit's tier; a fused unit only
  // on a node that serves every member.
  std::vector<Resource> resources(const TaskCall& call, const std::vector<PeerView>& peers) {
    std::vector<Resource> out;
    const ServiceDeps& deps = service->deps_;
    const Unit* unit = call.unit;
    if (unit && unit->group >= 0) {
      auto candidate = [&](const PeerView& node, bool local) {
        std::vector<std::string> fns;
        for (const auto* m : unit->members) {
          auto f = functionOn(*m, node, local);
          if (!f) return;
          fns.push_back(*f);
        }
        // `function` names the unit, so that its latency history is its own.
        std::string all;
        for (const auto& f : fns) all += fmt::format("{}{}", all.empty() ? "" : "+", f);
        out.push_back(Resource{local ? ResourceView::Kind::kLocal : ResourceView::Kind::kNode,
                               local ? "local" : node.id, all, fns});
      };
      if (tierOf(deps.self) == unit->tier) candidate(deps.self, true);
      if (deps.segmentOn) {
        for (const auto& p : peers) {
          if (p.tier == unit->tier) candidate(p, false);
        }
      }
      return out;
    }
    for (const auto& impl : types.implementations(call.task->type)) {
      if (impl.kind == Implementation::Kind::kServerless) {
        // A Serverless endpoint is cloud: never a planned edge task's place.
        if (!unit) out.push_back(Resource{ResourceView::Kind::kServerless, impl.uri, {}, {}});
        continue;
      }
      bool here = deps.table.find(impl.function) != nullptr &&
                  (deps.self.id.empty() || admits(impl, deps.self)) &&
                  (!unit || tierOf(deps.self) == unit->tier);
      if (here) out.push_back(Resource{ResourceView::Kind::kLocal, "local", impl.function, {}});
      if (!deps.invokeOn) continue;
      for (const auto& p : peers) {
        if (!admits(impl, p) || (unit && p.tier != unit->tier)) continue;
        if (std::find(p.functions.begin(), p.functions.end(), impl.function) == p.functions.end()) continue;
        out.push_back(Resource{ResourceView::Kind::kNode, p.id, impl.function, {}});
      }
    }
    return out;
  }

  static std::string noResource(const TaskCall& call) {
    const Unit* u = call.unit;
    if (!u) {
      return fmt::format("no resource runs type \"{}\" (function not deployed here or on a node its "
                         "placement admits)", call.task->type);
    }
    if (u->group < 0) {
      return fmt::format("no {}-tier resource runs type \"{}\" (the plan runs it at the edge)", u->tier, call.task->type);
    }
    std::string members;
    for (const auto* m : u->members) members += fmt::format("{}{}", members.empty() ? "" : ", ", m->name);
    return fmt::format("no {}-tier node serves every function of cloud group {} ({}), which the plan runs fused",
                       u->tier, u->group, members);
  }

  // Fails a task at once (no resource, or the node is stopping).
  static void refuse(Waiting task, std::string why) {
    TaskResult r;
    r.error = std::move(why);
    r.startUs = unixMicros();
    task.done(std::move(r));
  }

  // Places waiting tasks in arrival order until the first that has no room. One thread
  // pumps at a time; a completion during the pump asks it to go round again, so tasks that
  // finish at once do not nest. The cluster's view is read before the lock is taken.
  void pump() {
    {
      MutexLock lock(mu);
      if (pumping) {
        again = true;
        return;
      }
      pumping = true;
    }
    while (true) {
      std::vector<PeerView> peers;
      if (service->deps_.peers) peers = service->deps_.peers();
      MutexLock lock(mu);
      again = false;
      while (!waiting.empty()) {
        if (service->closed()) {
          Waiting gone = std::move(waiting.front());
          waiting.pop_front();
          lock.unlock();
          refuse(std::move(gone), "the node is shutting down");
          lock.lock();
          continue;
        }
        Waiting& w = waiting.front();
        auto rs = resources(w.call, peers);
        if (rs.empty()) {
          Waiting gone = std::move(w);
          waiting.pop_front();
          lock.unlock();
          refuse(std::move(gone), noResource(gone.call));
          lock.lock();
          continue;
        }
        std::vector<ResourceView> views;
        for (const auto& r : rs) {
          ResourceView v;
          v.kind = r.kind;
          v.inFlight = inFlight[r.id];
          if (r.kind == ResourceView::Kind::kLocal) {
            v.capacity = options.localCapacity ? options.localCapacity : service->deps_.workerSlots;
          }
          auto m = meanMs.find(r.id + "|" + r.function);
          v.expectedMs = m == meanMs.end() ? -1 : m->second;
          for (const auto& p : peers) {
            if (p.id == r.id) v.spare = p.spare;
          }
          views.push_back(v);
        }
        std::uniform_real_distribution<double> uniform(0, 1);
        auto choice = placeTask(w.call.input.size(), views,
                                PlacementParams{options.policy, options.sizeThresholdBytes},
                                uniform(random));
        if (!choice) break;  // first come, first served: the head waits for room
        Resource chosen = rs[*choice];
        Waiting task = std::move(w);
        waiting.pop_front();
        ++inFlight[chosen.id];
        lock.unlock();
        execute(std::move(chosen), std::move(task));
        lock.lock();
      }
      if (!again) {
        pumping = false;
        return;
      }
    }
  }

  void finished(const Resource& r, TaskResult& result) {
    MutexLock lock(mu);
    --inFlight[r.id];
    if (!result.error) {
      double ms = static_cast<double>(result.durationUs) / 1000.0;
      auto [it, fresh] = meanMs.emplace(r.id + "|" + r.function, ms);
      if (!fresh) it->second = (1 - kEwmaWeight) * it->second + kEwmaWeight * ms;
    }
  }

  // The wire form of a fused unit's call: each member's function on the chosen node, its
  // inputs known now, and its inputs from earlier members.
  Segment segmentFor(const TaskCall& call, const std::vector<std::string>& functions) const {
    const Unit& u = *call.unit;
    json in = json::parse(call.input, nullptr, false);
    std::string prefix = call.key.substr(0, call.key.size() - u.members.front()->name.size());
    Segment s;
    std::string keys;
    for (size_t i = 0; i < u.members.size(); ++i) {
      const Element* m = u.members[i];
      SegmentMember sm;
      sm.key = prefix + m->name;
      sm.function = functions[i];
      if (in.is_object() && in.contains(m->name)) sm.input = in[m->name];
      for (const auto& d : m->dataIns) {
        if (!d.source) continue;
        auto at = std::find(u.members.begin(), u.members.end(), d.source->producer);
        if (at == u.members.end()) continue;
        const std::string& ref = d.source->text;
        sm.bindings.push_back(Binding{d.name, static_cast<size_t>(at - u.members.begin()),
                                      ref.substr(ref.find('/') + 1), d.ops});
      }
      keys += fmt::format("{}{}", keys.empty() ? "" : "+", sm.key);
      s.members.push_back(std::move(sm));
    }
    s.env = {"TERN_WORKFLOW=" + name, "TERN_RUN_ID=" + call.runId, "TERN_TASK=" + keys};
    return s;
  }

  void execute(Resource r, Waiting task) {
    const ServiceDeps& deps = service->deps_;
    int64_t start = unixMicros();
    auto self = std::static_pointer_cast<Deployed>(selfRef.lock());
    auto complete = [self, r, start, done = std::move(task.done)](TaskResult result) mutable {
      result.startUs = start;
      result.durationUs = unixMicros() - start;
      self->finished(r, result);
      done(std::move(result));
      self->pump();
    };
    if (!r.unit.empty()) {
      (r.kind == ResourceView::Kind::kLocal ? tasksLocal : tasksNode)->inc(r.unit.size());
      std::string resource = r.kind == ResourceView::Kind::kLocal ? "local" : "node:" + r.id;
      auto onResult = [resource, complete = std::move(complete)](SegmentResult sr) mutable {
        TaskResult result;
        result.resource = resource;
        for (auto& m : sr.members) {
          TaskResult t;
          t.resource = resource;
          t.output = std::move(m.output);
          t.startUs = m.startUs;
          t.durationUs = m.durationUs;
          t.execUs = m.execUs;
          t.error = std::move(m.error);
          result.members.push_back(std::move(t));
        }
        if (sr.error) result.error = sr.error->message();
        complete(std::move(result));
      };
      Segment segment = segmentFor(task.call, r.unit);
      if (r.kind == ResourceView::Kind::kLocal) return runSegment(deps.invoker, std::move(segment), std::move(onResult));
      return deps.segmentOn(r.id, segment, std::move(onResult));
    }
    if (r.kind == ResourceView::Kind::kServerless) {
      tasksServerless->inc();
      service->serverless_.post([uri = r.id, body = std::move(task.call.input), key = task.call.key,
                                 runId = task.call.runId, timeout = options.serverlessTimeoutMs,
                                 complete = std::move(complete)]() mutable {
        TaskResult result;
        result.resource = uri;
        auto url = http::parseUrl(uri, http::UrlUse::kRequest);
        auto answer = url.ok() ? async::post(*url, body, runId + "/" + key,
                                             std::chrono::milliseconds(timeout), kMaxServerlessAnswer)
                               : Result<async::PostAnswer>(url.error());
        if (!answer.ok()) {
          result.error = answer.error().message();
        } else if (answer->truncated) {
          result.error = fmt::format("{} answered more than {} bytes", uri, kMaxServerlessAnswer);
        } else if (answer->status < 200 || answer->status > 299) {
          result.error = fmt::format("{} answered HTTP {}", uri, answer->status);
        } else {
          result.output = std::move(answer->body);
        }
        complete(std::move(result));
      });
      return;
    }
    exec::InvokeInput in;
    in.function = r.function;
    in.body = std::move(task.call.input);
    in.env.add("TERN_WORKFLOW", name);
    in.env.add("TERN_RUN_ID", task.call.runId);
    in.env.add("TERN_TASK", task.call.key);
    auto onOutput = [resource = r.kind == ResourceView::Kind::kLocal ? std::string() : r.id,
                     complete = std::move(complete)](exec::InvokeOutput out) mutable {
      TaskResult result;
      result.resource = !out.node.empty() ? "node:" + out.node : resource.empty() ? "local" : "node:" + resource;
      if (out.ran) result.execUs = out.result.durationNs / 1000;
      if (out.error) {
        result.error = out.error->message();
      } else {
        result.output = std::move(out.result.stdoutData);
      }
      complete(std::move(result));
    };
    if (r.kind == ResourceView::Kind::kLocal) {
      tasksLocal->inc();
      deps.invoker.invoke(std::move(in), std::move(onOutput));
    } else {
      tasksNode->inc();
      deps.invokeOn(r.id, std::move(in), std::move(onOutput));
    }
  }

  std::weak_ptr<TaskRunner> selfRef;
};

Result<std::unique_ptr<WorkflowService>> WorkflowService::open(const std::filesystem::path& file,
                                                               ServiceDeps deps) {
  auto store = RunStore::open(file);
  if (!store.ok()) return store.error();
  auto s = std::unique_ptr<WorkflowService>(new WorkflowService(std::move(*store), std::move(deps)));
  auto records = s->store_->workflows();
  if (!records.ok()) return records.error();
  for (const auto& w : *records) {
    auto options = parseOptions(json::parse(w.options, nullptr, false));
    auto d = options.ok() ? s->build(w.name, w.afcl, w.types, *options)
                          : Result<std::shared_ptr<Deployed>>(options.error());
    if (!d.ok()) {
      spdlog::error("workflow {}: {}", w.name, d.error().message());
      continue;
    }
    MutexLock lock(s->mu_);  // nobody else sees it yet
    s->deployed_[w.name] = *d;
  }
  return s;
}

WorkflowService::WorkflowService(std::unique_ptr<RunStore> store, ServiceDeps deps)
    : store_(std::move(store)), deps_(std::move(deps)), serverless_(8) {
  std::random_device rd;
  idSalt_ = (uint64_t{rd()} << 32) ^ rd();
}

WorkflowService::~WorkflowService() { stop(std::chrono::milliseconds(0)); }

Result<std::shared_ptr<WorkflowService::Deployed>> WorkflowService::build(
    const std::string& name, const std::string& afcl, const std::string& types,
    const WorkflowOptions& options) {
  auto wf = parseAfcl(afcl);
  if (!wf.ok()) return Error(ErrorCode::kInvalidArgument, "workflow file: " + wf.error().message());
  auto map = types.empty() ? Result<TypeMap>(TypeMap()) : TypeMap::parse(types);
  if (!map.ok()) return map.error();
  auto d = std::make_shared<Deployed>();
  d->service = this;
  d->name = name;
  d->definition = json{{"afcl", afcl}, {"types", types}, {"options", optionsJson(options)}}.dump();
  d->wf = std::shared_ptr<const Workflow>(std::move(*wf));
  d->types = std::move(*map);
  d->options = options;
  if (!options.plan.is_null()) {
    auto fusion = applyPlan(*d->wf, options.plan);
    if (!fusion.ok()) return fusion.error();
    for (const auto& u : fusion->units) {
      for (const auto* m : u.members) {
        auto impls = d->types.implementations(m->type);
        bool tern = std::any_of(impls.begin(), impls.end(), [](const Implementation& i) {
          return i.kind == Implementation::Kind::kTern;
        });
        if (!tern) {
          return Error(ErrorCode::kInvalidArgument,
                       fmt::format("plan: function \"{}\" has no tern function among its type's "
                                   "implementations; a planned chain runs on tern nodes", m->name));
        }
      }
    }
    d->fusion = std::move(*fusion);
  }
  d->selfRef = d;
  const char* help = "Workflow tasks started, by where they ran";
  d->tasksLocal = &deps_.metrics.counter("tern_workflow_tasks_total", help, {{"workflow", name}, {"resource", "local"}});
  d->tasksNode = &deps_.metrics.counter("tern_workflow_tasks_total", help, {{"workflow", name}, {"resource", "node"}});
  d->tasksServerless = &deps_.metrics.counter("tern_workflow_tasks_total", help, {{"workflow", name}, {"resource", "serverless"}});
  return d;
}

Result<json> WorkflowService::deploy(const std::string& name, const std::string& afcl,
                                     const std::string& types, const WorkflowOptions& options) {
  if (!isFunctionName(name)) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("\"{}\" is not a valid workflow name (letters, digits, '-', '_'; up "
                             "to 64; starting with a letter)", name));
  }
  auto d = build(name, afcl, types, options);
  if (!d.ok()) return d.error();
  WorkflowRecord rec{name, afcl, types, optionsJson(options).dump(), unixMillis()};
  if (auto ok = store_->putWorkflow(rec); !ok.ok()) return ok.error();
  std::vector<std::string> fns;
  for (const auto* f : (*d)->wf->functions) fns.push_back(f->name);
  {
    MutexLock lock(mu_);
    deployed_[name] = *d;
  }
  return json{{"name", name},
              {"workflow", (*d)->wf->name},
              {"functions", fns},
              {"options", optionsJson(options)}};
}

Result<void> WorkflowService::remove(const std::string& name) {
  {
    MutexLock lock(mu_);
    if (!deployed_.erase(name)) {
      return Error(ErrorCode::kNotFound, fmt::format("no workflow named \"{}\"", name));
    }
  }
  deps_.metrics.removeSeries("workflow", name);
  return store_->removeWorkflow(name);
}

Result<json> WorkflowService::list() const {
  std::vector<std::pair<std::string, std::shared_ptr<Deployed>>> all;
  {
    MutexLock lock(mu_);
    for (const auto& [n, d] : deployed_) all.emplace_back(n, d);
  }
  json out = json::array();
  for (const auto& [n, d] : all) {
    out.push_back(json{{"name", n},
                       {"workflow", d->wf->name},
                       {"tasks", d->wf->functions.size()},
                       {"options", optionsJson(d->options)}});
  }
  return out;
}

namespace {

json runJson(const RunRecord& r) {
  json j{{"id", r.id},         {"workflow", r.workflow},     {"status", r.status},
         {"started_ms", r.startedMs}};
  if (r.finishedMs) j["finished_ms"] = r.finishedMs;
  if (!r.error.empty()) j["error"] = r.error;
  if (!r.output.empty()) j["output"] = json::parse(r.output, nullptr, false);
  return j;
}

}  // namespace

Result<json> WorkflowService::runs(const std::string& name, size_t limit) const {
  auto rs = store_->runs(name, limit);
  if (!rs.ok()) return rs.error();
  json out = json::array();
  for (const auto& r : *rs) out.push_back(runJson(r));
  return out;
}

Result<json> WorkflowService::trace(const std::string& runId) const {
  auto r = store_->run(runId);
  if (!r.ok()) return r.error();
  if (!*r) return Error(ErrorCode::kNotFound, fmt::format("no workflow run \"{}\"", runId));
  auto tasks = store_->tasks(runId);
  if (!tasks.ok()) return tasks.error();
  json j = runJson(**r);
  json ts = json::array();
  for (const auto& t : *tasks) {
    json tj{{"key", t.key},
            {"task", t.task},
            {"iteration", t.iteration},
            {"resource", t.resource},
            {"start_us", t.startUs},
            {"queue_us", t.queueUs},
            {"duration_us", t.durationUs},
            {"attempts", t.attempts},
            {"outcome", t.outcome}};
    if (t.execUs >= 0) tj["exec_us"] = t.execUs;
    if (!t.place.empty()) tj["place"] = t.place;
    if (t.group >= 0) tj["group"] = t.group;
    if (!t.error.empty()) tj["error"] = t.error;
    ts.push_back(std::move(tj));
  }
  j["tasks"] = std::move(ts);
  // The data flow between the tasks, while the workflow is deployed (the console draws it).
  std::shared_ptr<Deployed> d;
  {
    MutexLock lock(mu_);
    auto it = deployed_.find((*r)->workflow);
    if (it != deployed_.end()) d = it->second;
  }
  if (d) {
    json edges = json::array();
    for (const auto& e : taskEdges(*d->wf)) edges.push_back(json{{"from", e.from}, {"to", e.to}});
    j["edges"] = std::move(edges);
  }
  return j;
}

Result<json> WorkflowService::profile(const std::string& name, size_t runs) const {
  std::shared_ptr<Deployed> d;
  {
    MutexLock lock(mu_);
    auto it = deployed_.find(name);
    if (it == deployed_.end()) return Error(ErrorCode::kNotFound, fmt::format("no workflow named \"{}\"", name));
    d = it->second;
  }
  auto chain = chainOf(*d->wf);
  if (!chain.ok()) return chain.error();
  std::map<std::string, std::string> tierByResource;
  tierByResource["local"] = tierOf(deps_.self);
  if (deps_.peers) {
    for (const auto& p : deps_.peers()) tierByResource["node:" + p.id] = p.tier;
  }
  struct Samples {
    std::vector<double> edge, cloud, transfer;
  };
  std::map<std::string, Samples> samples;
  auto recent = store_->runs(name, runs);
  if (!recent.ok()) return recent.error();
  size_t used = 0;
  for (const auto& r : *recent) {
    if (r.status != "succeeded") continue;
    auto tasks = store_->tasks(r.id);
    if (!tasks.ok()) return tasks.error();
    ++used;
    for (const auto& t : *tasks) {
      if (t.outcome != "ok") continue;
      bool serverless = t.resource.starts_with("http://");
      auto tier = serverless ? std::optional<std::string>("cloud")
                  : tierByResource.count(t.resource) ? std::optional<std::string>(tierByResource[t.resource]) : std::nullopt;
      if (!tier) continue;  // a node no longer in the cluster
      double exec = (t.execUs >= 0 ? t.execUs : t.durationUs) / 1000.0;
      Samples& s = samples[t.task];
      if (*tier == "edge") {
        s.edge.push_back(exec);
      } else {
        s.cloud.push_back(exec);
        s.transfer.push_back(t.execUs >= 0 ? std::max<double>(0, (t.durationUs - t.execUs) / 1000.0) : 0);
      }
    }
  }
  auto mean = [](const std::vector<double>& v) {
    double sum = 0;
    for (double x : v) sum += x;
    return v.empty() ? 0 : sum / static_cast<double>(v.size());
  };
  json functions = json::object();
  std::vector<std::string> missing;
  std::vector<double> allTransfers;
  for (const auto& fn : *chain) {
    Samples& s = samples[fn];
    if (s.edge.empty()) missing.push_back(fn + " at the edge");
    if (s.cloud.empty()) missing.push_back(fn + " in the cloud");
    allTransfers.insert(allTransfers.end(), s.transfer.begin(), s.transfer.end());
    uint32_t memoryMb = 128;
    for (const auto* e : d->wf->functions) {
      if (e->name != fn) continue;
      for (const auto& impl : d->types.implementations(e->type)) {
        if (impl.kind != Implementation::Kind::kTern) continue;
        if (auto entry = deps_.table.find(impl.function)) {
          if (auto active = entry->active()) memoryMb = active->config.memoryMb;
        }
        break;
      }
    }
    functions[fn] = json{{"edge_ms", mean(s.edge)},
                         {"cloud_ms", mean(s.cloud)},
                         {"cloud_memory_mb", memoryMb},
                         {"transfer_ms", mean(s.transfer)}};
  }
  if (!missing.empty()) {
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("no measurements of {} in the last {} succeeded run(s): run the workflow "
                             "with those functions placed there first", list, used));
  }
  // Default prices: a cloud FaaS's list prices (per GB-second, per request), a state
  // transition of a hosted workflow service, and no fixed edge price.
  return json{{"functions", functions},
              {"cloud_group_delay_ms", mean(allTransfers)},
              {"prices", {{"gb_second", 0.0000166667}, {"request", 0.0000002}, {"transition", 0.000025}, {"edge_fixed", 0.0}}}};
}

std::string WorkflowService::start(const std::string& name, const std::string& input,
                                   Answer answer,
                                   std::function<void(const std::string&, RunOutcome)> done) {
  auto refuse = [&](Error e) {
    done("", RunOutcome{std::move(e), json()});
    return std::string();
  };
  json in = json::parse(input, nullptr, false);
  if (in.is_discarded() || !in.is_object()) {
    return refuse(Error(ErrorCode::kInvalidArgument, "the run's input must be a JSON object"));
  }
  std::shared_ptr<Deployed> d;
  std::string id;
  {
    MutexLock lock(mu_);
    if (stopping_) return refuse(Error(ErrorCode::kUnavailable, "the node is shutting down"));
    auto it = deployed_.find(name);
    if (it == deployed_.end()) return refuse(Error(ErrorCode::kNotFound, fmt::format("no workflow named \"{}\"", name)));
    d = it->second;
    // Ended runs past the retention go, at most once a minute, with the writes of runs.
    if (int64_t now = unixMillis(); now - lastPurgeMs_ >= 60000) {
      lastPurgeMs_ = now;
      store_->purgeEndedBefore(now - deps_.retention.count());
    }
    id = fmt::format("{:016x}{:08x}", idSalt_ ^ static_cast<uint64_t>(unixMicros()), ++runCounter_ & 0xffffffff);
  }
  int64_t started = unixMillis();
  RunRecord rec{id, name, d->definition, "running", in.dump(), "", "", started, 0};
  auto durability = answer == Answer::kAtStart ? RunStore::Durability::kWaitForDisk
                                               : RunStore::Durability::kGroupCommit;
  if (auto ok = store_->startRun(rec, durability); !ok.ok()) return refuse(ok.error());
  launch(d, id, std::move(in), {}, std::move(done), started);
  return id;
}

void WorkflowService::launch(const std::shared_ptr<Deployed>& d, const std::string& runId, json input,
                             std::map<std::string, std::string> finished,
                             std::function<void(const std::string&, RunOutcome)> done, int64_t startedMs) {
  Counter& ok = deps_.metrics.counter("tern_workflow_runs_total", "Workflow runs ended, by outcome",
                                      {{"workflow", d->name}, {"outcome", "succeeded"}});
  Counter& failed = deps_.metrics.counter("tern_workflow_runs_total", "Workflow runs ended, by outcome",
                                          {{"workflow", d->name}, {"outcome", "failed"}});
  Histogram& seconds = deps_.metrics.histogram("tern_workflow_run_seconds", "Workflow run durations",
                                               {{"workflow", d->name}});
  RunLimits limits;
  limits.attempts = d->options.attempts;
  limits.maxTasksInFlight = d->options.maxTasksInFlight;
  auto run = std::make_shared<Run>(
      runId, d->wf, std::move(input), limits, *d, std::move(finished),
      [this](TaskRecord t) { store_->putTask(std::move(t)); },
      [this, runId, name = d->name, startedMs, done = std::move(done), &ok, &failed,
       &seconds](RunOutcome outcome) mutable {
        bool stopping;
        {
          MutexLock lock(mu_);
          stopping = stopping_;
        }
        auto end = [this, runId, done = std::move(done)](RunOutcome o) mutable {
          done(runId, std::move(o));
          MutexLock lock(mu_);
          active_.erase(runId);
          idle_.notify_all();
        };
        if (stopping && outcome.error) {
          // Failed because the node is going down: left unfinished, resumed at the next start.
          outcome.error = Error(ErrorCode::kUnavailable,
                                fmt::format("the node stopped during run {}; it resumes when the node starts again", runId));
          return end(std::move(outcome));
        }
        (outcome.error ? failed : ok).inc();
        seconds.observe(static_cast<double>(unixMillis() - startedMs) / 1000.0);
        RunRecord rec;
        rec.id = runId;
        rec.workflow = name;
        rec.status = outcome.error ? "failed" : "succeeded";
        rec.output = outcome.error ? "" : outcome.output.dump();
        rec.error = outcome.error ? outcome.error->message() : "";
        rec.finishedMs = unixMillis();
        // The end is group-committed; the answer does not wait for the disk (a crash
        // before the commit resumes the run, whose tasks run at least once).
        store_->finishRun(rec, [runId](Result<void> written) {
          if (!written.ok()) {
            spdlog::error("workflow run {}: its end was not recorded: {}", runId, written.error().message());
          }
        });
        end(std::move(outcome));
      },
      d->fusion ? &*d->fusion : nullptr);
  {
    MutexLock lock(mu_);
    active_[runId] = {run, d};
  }
  run->start();
}

size_t WorkflowService::resumeUnfinished() {
  auto runs = store_->unfinishedRuns();
  if (!runs.ok()) {
    spdlog::error("workflows: cannot list unfinished runs: {}", runs.error().message());
    return 0;
  }
  size_t resumed = 0;
  for (const auto& r : *runs) {
    json def = json::parse(r.definition, nullptr, false);
    auto fail = [&](const std::string& why) {
      RunRecord rec = r;
      rec.status = "failed";
      rec.error = "cannot resume: " + why;
      rec.finishedMs = unixMillis();
      store_->finishRun(rec, nullptr);
      spdlog::error("workflow run {}: {}", r.id, rec.error);
    };
    if (def.is_discarded() || !def.is_object()) {
      fail("its definition is unreadable");
      continue;
    }
    auto options = parseOptions(def.value("options", json()));
    if (!options.ok()) {
      fail(options.error().message());
      continue;
    }
    std::shared_ptr<Deployed> d;
    {
      MutexLock lock(mu_);
      auto it = deployed_.find(r.workflow);
      if (it != deployed_.end() && it->second->definition == r.definition) d = it->second;
    }
    if (!d) {
      auto built = build(r.workflow, def.value("afcl", ""), def.value("types", ""), *options);
      if (!built.ok()) {
        fail(built.error().message());
        continue;
      }
      d = *built;
    }
    std::map<std::string, std::string> finished;
    if (auto tasks = store_->tasks(r.id); tasks.ok()) {
      for (auto& t : *tasks) {
        if (t.outcome == "ok") finished[t.key] = std::move(t.output);
      }
    }
    spdlog::info("workflow run {} of {}: resumed ({} task(s) already finished)", r.id, r.workflow, finished.size());
    launch(d, r.id, json::parse(r.input, nullptr, false), std::move(finished),
           [](const std::string&, RunOutcome) {}, r.startedMs);
    ++resumed;
  }
  return resumed;
}

void WorkflowService::stop(std::chrono::milliseconds drain) {
  {
    MutexLock lock(mu_);
    stopping_ = true;
    lock.waitFor(idle_, drain, [this]() TERN_REQUIRES(mu_) { return active_.empty(); });
  }
  // Runs still going start no more tasks: those waiting fail at once, and the runs stay
  // unfinished on disk for the next start.
  closed_ = true;
  serverless_.stop();
}

}  // namespace tern::workflow
