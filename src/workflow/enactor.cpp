#include "workflow/enactor.h"

#include <fmt/format.h>

#include <chrono>
#include <algorithm>
#include <cmath>

#include "util/clock.h"
#include "workflow/data_ops.h"
#include "workflow/fusion.h"

namespace tern::workflow {

using json = nlohmann::json;

namespace {


bool insideOf(const Element* e, const Element* ancestor) {
  for (; e; e = e->parent) {
    if (e == ancestor) return true;
  }
  return false;
}

bool inBody(const Element* e, const std::vector<Element>& body) {
  for (const auto& child : body) {
    if (insideOf(e, &child)) return true;
  }
  return false;
}

// Text of a value for loose equality (a switch's case "5" matches the number 5).
std::string looseText(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

std::string where(const Element& e, const std::string& iteration) {
  return iteration.empty() ? fmt::format("{} \"{}\"", kindName(e.kind), e.name)
                           : fmt::format("{} \"{}\" (iteration {})", kindName(e.kind), e.name, iteration);
}

// The start of a task's output for an error message: printable ASCII only (other bytes
// become '?'), so the message is valid UTF-8 whatever the task printed.
std::string excerpt(std::string_view s) {
  std::string out(s.substr(0, 120));
  for (char& c : out) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) c = u < 0x20 ? ' ' : '?';
  }
  return s.size() > 120 ? out + "..." : out;
}

// Case matching: numbers by value (5 matches 5.0), the rest by their text.
bool sameCase(const json& a, const json& b) {
  if (a.is_number() && b.is_number()) return a.get<double>() == b.get<double>();
  return looseText(a) == looseText(b);
}

}  // namespace

Run::Run(std::string id, std::shared_ptr<const Workflow> workflow, json input, RunLimits limits,
         TaskRunner& runner, std::map<std::string, std::string> finished,
         std::function<void(TaskRecord)> onTask, std::function<void(RunOutcome)> onDone,
         const Fusion* fusion)
    : id_(std::move(id)),
      wf_(std::move(workflow)),
      fusion_(fusion),
      input_(std::move(input)),
      limits_(limits),
      runner_(runner),
      finished_(std::move(finished)),
      onTask_(std::move(onTask)),
      onDone_(std::move(onDone)) {}

void Run::start() {
  post([this]() TERN_REQUIRES(mu_) {
    Scope* root = newScope(nullptr, nullptr, "");
    if (!input_.is_object()) return fail(Error(ErrorCode::kInvalidArgument, "the run's input must be a JSON object"));
    for (const auto& d : wf_->dataIns) {
      const std::string key = d.value->get<std::string>();
      auto it = input_.find(key);
      if (it == input_.end()) {
        return fail(Error(ErrorCode::kInvalidArgument,
                          fmt::format("the input has no \"{}\" (workflow dataIn \"{}\")", key, d.name)));
      }
      set(root, wf_->name + "/" + d.name, coerce(*it, d.type));
    }
    activateAll(wf_->body, root);
    std::vector<const Ref*> refs;
    for (const auto& d : wf_->dataOuts) refs.push_back(&d.sources.front());
    when(root, refs, [this, root]() TERN_REQUIRES(mu_) {
      json out = json::object();
      for (const auto& d : wf_->dataOuts) out[d.name] = *lookup(root, d.sources.front());
      outputsReady_ = true;
      outcome_ = RunOutcome{std::nullopt, std::move(out)};
    });
  });
}

void Run::post(std::function<void()> event) {
  MutexLock lock(mu_);
  events_.push_back(std::move(event));
  if (driving_) return;
  driving_ = true;
  auto self = shared_from_this();
  while (true) {
    while (!events_.empty()) {
      auto e = std::move(events_.front());
      events_.pop_front();
      if (ended_) continue;
      // Nothing in an event should throw; if something does (memory), the run ends with
      // the error rather than staying driven forever.
      try {
        e();
      } catch (const std::exception& ex) {
        fail(Error(ErrorCode::kInternal, fmt::format("run {}: {}", id_, ex.what())));
      }
    }
    dispatchReady();
    if (ended_ || toDispatch_.empty()) break;
    std::vector<Pending> batch = std::move(toDispatch_);
    toDispatch_.clear();
    lock.unlock();
    for (auto& p : batch) {
      TaskCall call = p.call;
      runner_.runTask(call, [self, p = std::move(p)](TaskResult r) mutable {
        self->post([self, p = std::move(p), r = std::move(r)]() TERN_REQUIRES(self->mu_) mutable {
          if (p.call.unit && p.call.unit->group >= 0) return self->unitDone(std::move(p), std::move(r));
          self->taskDone(std::move(p), std::move(r));
        });
      });
    }
    lock.lock();
  }
  checkFinished();
  driving_ = false;
  std::optional<RunOutcome> report;
  if (ended_ && outcome_) {
    report = std::move(outcome_);
    outcome_.reset();
  }
  lock.unlock();
  if (report) onDone_(std::move(*report));
}

Run::Scope* Run::newScope(Scope* parent, const Element* loop, std::string path) {
  if (scopes_.size() > limits_.maxScopes) {
    // Nested loops multiply; the run as a whole is bounded too. The caller goes on with a
    // scope that is never used: the run has ended.
    fail(Error(ErrorCode::kInvalidArgument,
               fmt::format("the run needs more than {} loop iterations in all", limits_.maxScopes)));
  }
  scopes_.push_back(std::make_unique<Scope>());
  Scope* s = scopes_.back().get();
  s->parent = parent;
  s->loop = loop;
  s->path = std::move(path);
  return s;
}

Run::Scope* Run::home(Scope* s, const Ref& r) const {
  for (Scope* x = s; x; x = x->parent) {
    if (x->loop == r.loop) return x;
  }
  return scopes_.front().get();
}

const json* Run::lookup(Scope* s, const Ref& r) const {
  Scope* h = home(s, r);
  auto it = h->values.find(r.text);
  return it == h->values.end() ? nullptr : &it->second;
}

void Run::set(Scope* s, const std::string& key, json value) {
  s->values[key] = std::move(value);
  auto it = s->waiters.find(key);
  if (it == s->waiters.end()) return;
  std::vector<size_t> ids = std::move(it->second);
  s->waiters.erase(it);
  // A waiter whose last value this was fires as an event, so that chains of compounds
  // passing values on do not nest calls.
  for (size_t id : ids) {
    if (--waiters_[id].missing == 0) events_.push_back(std::move(waiters_[id].fire));
  }
}

void Run::when(Scope* s, std::vector<const Ref*> refs, std::function<void()> then) {
  size_t id = waiters_.size();
  waiters_.push_back(Waiter{0, std::move(then)});
  for (const Ref* r : refs) {
    Scope* h = home(s, *r);
    if (h->values.count(r->text)) continue;
    h->waiters[r->text].push_back(id);
    ++waiters_[id].missing;
  }
  if (waiters_[id].missing == 0) {
    auto fire = std::move(waiters_[id].fire);
    fire();
  }
}

void Run::fail(Error e) {
  if (ended_) return;
  ended_ = true;
  outcome_ = RunOutcome{std::move(e), json()};
}

Result<json> Run::inputValue(Scope* s, const DataIn& d) {
  json v;
  if (d.source) {
    const json* p = lookup(s, *d.source);
    if (!p) return Error(ErrorCode::kInternal, fmt::format("\"{}\" is not available", d.source->text));
    v = *p;
  } else {
    v = d.value.value_or(json());
  }
  for (const auto& op : d.ops) {
    auto r = applyCollectionOp(v, op.name, op.value, [s](std::string_view ref) -> Result<double> {
      // A reference in an operation's arguments: the nearest value under that key.
      for (Scope* x = s; x; x = x->parent) {
        auto it = x->values.find(std::string(ref));
        if (it != x->values.end() && it->second.is_number()) return it->second.get<double>();
      }
      return Error(ErrorCode::kInvalidArgument, fmt::format("\"{}\" is not a number available here", ref));
    });
    if (!r.ok()) return Error(ErrorCode::kInvalidArgument, fmt::format("dataIn \"{}\": {}", d.name, r.error().message()));
    v = std::move(*r);
  }
  return v;
}

Result<json> Run::operandValue(Scope* s, const Operand& o) {
  if (!o.ref) return o.constant;
  const json* p = lookup(s, *o.ref);
  if (!p) return Error(ErrorCode::kInternal, fmt::format("\"{}\" is not available", o.ref->text));
  return *p;
}

void Run::activateAll(const std::vector<Element>& list, Scope* s) {
  for (const auto& e : list) activate(e, s);
}

void Run::activate(const Element& e, Scope* s) {
  switch (e.kind) {
    case Kind::kFunction: return activateFunction(e, s);
    case Kind::kSequence:
    case Kind::kParallel:
      withInputs(e, s, s, [] {});
      activateAll(e.body, s);
      return publishOutputs(e, s, s, nullptr);
    case Kind::kIf:
    case Kind::kSwitch: return activateBranching(e, s);
    case Kind::kParallelFor: return activateParallelFor(e, s);
    case Kind::kWhile: {
      std::vector<const Ref*> refs;
      for (const auto& d : e.dataIns) {
        if (d.source) refs.push_back(&*d.source);
      }
      for (const auto& lv : e.loopValues) {
        if (lv.initial.source) refs.push_back(&*lv.initial.source);
      }
      return when(s, refs, [this, &e, s]() TERN_REQUIRES(mu_) {
        std::map<std::string, json> carried;
        for (const auto& d : e.dataIns) {
          auto v = inputValue(s, d);
          if (!v.ok()) return fail(Error(ErrorCode::kInvalidArgument, where(e, s->path) + ": " + v.error().message()));
          carried[d.name] = std::move(*v);
        }
        for (const auto& lv : e.loopValues) {
          auto v = inputValue(s, lv.initial);
          if (!v.ok()) return fail(Error(ErrorCode::kInvalidArgument, where(e, s->path) + ": " + v.error().message()));
          carried[lv.name] = std::move(*v);
        }
        iterateWhile(e, s, 1, std::move(carried));
      });
    }
  }
}

void Run::withInputs(const Element& e, Scope* s, Scope* target, std::function<void()> then) {
  std::vector<const Ref*> refs;
  for (const auto& d : e.dataIns) {
    if (d.source) refs.push_back(&*d.source);
  }
  when(s, refs, [this, &e, s, target, then = std::move(then)]() TERN_REQUIRES(mu_) {
    for (const auto& d : e.dataIns) {
      auto v = inputValue(s, d);
      if (!v.ok()) return fail(Error(ErrorCode::kInvalidArgument, where(e, s->path) + ": " + v.error().message()));
      set(target, e.name + "/" + d.name, std::move(*v));
    }
    then();
  });
}

void Run::activateFunction(const Element& e, Scope* s) {
  const Unit* unit = fusion_ ? fusion_->of(&e) : nullptr;
  if (unit && unit->group >= 0) {
    // A fused unit starts with its first member; the others are part of it.
    if (unit->members.front() == &e) activateUnit(*unit, s);
    return;
  }
  std::vector<const Ref*> refs;
  for (const auto& d : e.dataIns) {
    if (d.source) refs.push_back(&*d.source);
  }
  when(s, refs, [this, &e, s, unit]() TERN_REQUIRES(mu_) {
    json in = json::object();
    for (const auto& d : e.dataIns) {
      auto v = inputValue(s, d);
      if (!v.ok()) return fail(Error(ErrorCode::kInvalidArgument, where(e, s->path) + ": " + v.error().message()));
      in[d.name] = std::move(*v);
    }
    Pending p;
    p.call.runId = id_;
    p.call.key = s->path.empty() ? e.name : s->path + "/" + e.name;
    p.call.task = &e;
    p.call.input = in.dump();
    p.call.unit = unit;
    p.scope = s;
    p.readyUs = unixMicros();
    if (auto done = finished_.find(p.call.key); done != finished_.end()) {
      // Finished before a restart: its output stands. Handled as an event, so that long
      // replays do not nest.
      TaskResult r;
      r.output = done->second;
      ++inFlight_;
      events_.push_back([this, p = std::move(p), r = std::move(r)]() TERN_REQUIRES(mu_) mutable {
        p.call.attempt = 0;  // not run again, not recorded again
        taskDone(std::move(p), std::move(r));
      });
      return;
    }
    ready_.push_back(std::move(p));
  });
}

void Run::activateUnit(const Unit& u, Scope* s) {
  auto inUnit = [&u](const Element* e) {
    return std::find(u.members.begin(), u.members.end(), e) != u.members.end();
  };
  std::vector<const Ref*> refs;
  for (const auto* m : u.members) {
    for (const auto& d : m->dataIns) {
      if (d.source && !inUnit(d.source->producer)) refs.push_back(&*d.source);
    }
  }
  when(s, refs, [this, &u, s, inUnit]() TERN_REQUIRES(mu_) {
    json in = json::object();
    for (const auto* m : u.members) {
      json mine = json::object();
      for (const auto& d : m->dataIns) {
        if (d.source && inUnit(d.source->producer)) continue;
        auto v = inputValue(s, d);
        if (!v.ok()) return fail(Error(ErrorCode::kInvalidArgument, where(*m, s->path) + ": " + v.error().message()));
        mine[d.name] = std::move(*v);
      }
      in[m->name] = std::move(mine);
    }
    auto keyOf = [s](const Element* m) { return s->path.empty() ? m->name : s->path + "/" + m->name; };
    Pending p;
    p.call.runId = id_;
    p.call.key = keyOf(u.members.front());
    p.call.task = u.members.front();
    p.call.input = in.dump();
    p.call.unit = &u;
    p.scope = s;
    p.readyUs = unixMicros();
    TaskResult replay;
    for (const auto* m : u.members) {
      auto done = finished_.find(keyOf(m));
      if (done == finished_.end()) break;
      TaskResult r;
      r.output = done->second;
      replay.members.push_back(std::move(r));
    }
    if (replay.members.size() == u.members.size()) {
      // Finished before a restart, every member: their outputs stand.
      ++inFlight_;
      events_.push_back([this, p = std::move(p), r = std::move(replay)]() TERN_REQUIRES(mu_) mutable {
        p.call.attempt = 0;
        unitDone(std::move(p), std::move(r));
      });
      return;
    }
    ready_.push_back(std::move(p));
  });
}

void Run::activateBranching(const Element& e, Scope* s) {
  withInputs(e, s, s, [this, &e, s]() TERN_REQUIRES(mu_) {
    std::vector<const Ref*> refs;
    for (const auto& c : e.condition) {
      if (c.data1.ref) refs.push_back(&*c.data1.ref);
      if (c.data2.ref) refs.push_back(&*c.data2.ref);
    }
    if (e.dataEval && e.dataEval->source) refs.push_back(&*e.dataEval->source);
    when(s, refs, [this, &e, s]() TERN_REQUIRES(mu_) {
      const std::vector<Element>* taken = &e.elseBody;
      if (e.kind == Kind::kIf) {
        std::vector<std::pair<json, json>> values;
        for (const auto& c : e.condition) {
          auto a = operandValue(s, c.data1), b = operandValue(s, c.data2);
          if (!a.ok() || !b.ok()) return fail((a.ok() ? b : a).error());
          values.emplace_back(std::move(*a), std::move(*b));
        }
        auto holds = evaluateCondition(e.condition, values);
        if (!holds.ok()) return fail(Error(ErrorCode::kInvalidArgument, where(e, s->path) + ": " + holds.error().message()));
        if (*holds) taken = &e.body;
      } else {
        auto v = inputValue(s, *e.dataEval);
        if (!v.ok()) return fail(Error(ErrorCode::kInvalidArgument, where(e, s->path) + ": " + v.error().message()));
        for (const auto& c : e.cases) {
          if (sameCase(c.value, *v)) {
            taken = &c.body;
            break;
          }
        }
      }
      activateAll(*taken, s);
      publishOutputs(e, s, s, taken);
    });
  });
}

void Run::activateParallelFor(const Element& e, Scope* s) {
  std::vector<const Ref*> refs;
  for (const auto& d : e.dataIns) {
    if (d.source) refs.push_back(&*d.source);
  }
  for (const auto* o : {&e.count, &e.from, &e.to, &e.step}) {
    if (*o && (*o)->ref) refs.push_back(&*(*o)->ref);
  }
  when(s, refs, [this, &e, s]() TERN_REQUIRES(mu_) {
    auto bad = [&](const std::string& why) TERN_REQUIRES(mu_) { fail(Error(ErrorCode::kInvalidArgument, where(e, s->path) + ": " + why)); };
    std::map<std::string, json> values;
    for (const auto& d : e.dataIns) {
      auto v = inputValue(s, d);
      if (!v.ok()) return bad(v.error().message());
      values[d.name] = std::move(*v);
    }
    double from = 0, step = 1, n = 0;
    auto number = [&](const std::optional<Operand>& o, double& out) TERN_REQUIRES(mu_) -> bool {
      auto v = operandValue(s, *o);
      if (!v.ok()) return false;
      json c = coerce(*v, "number");
      if (!c.is_number()) return false;
      out = c.get<double>();
      return true;
    };
    if (!e.iterators.empty()) {
      std::optional<size_t> size;
      for (const auto& name : e.iterators) {
        const json& v = values[name];
        if (!v.is_array()) return bad(fmt::format("iterator \"{}\" is not a collection", name));
        if (size && *size != v.size()) return bad(fmt::format("iterators differ in size ({} and {})", *size, v.size()));
        size = v.size();
      }
      n = static_cast<double>(*size);
    } else if (e.count) {
      if (!number(e.count, n)) return bad("the iteration count is not a number");
    } else {
      double to = 0;
      if (!number(e.from, from) || !number(e.to, to) || !number(e.step, step) || step <= 0) {
        return bad("loopCounter from, to and step must be numbers, step positive");
      }
      n = std::max(0.0, std::ceil((to - from) / step));
    }
    if (n < 0 || n != std::floor(n)) return bad(fmt::format("{} is not an iteration count", n));
    if (n > static_cast<double>(limits_.maxIterations)) {
      return bad(fmt::format("{} iterations exceed the limit of {}", static_cast<uint64_t>(n), limits_.maxIterations));
    }
    size_t count = static_cast<size_t>(n);
    auto iterations = std::make_shared<std::vector<Scope*>>();
    iterations->reserve(count);
    std::string prefix = s->path.empty() ? "" : s->path + "/";
    for (size_t i = 0; i < count; ++i) {
      if (ended_) return;
      Scope* it = newScope(s, &e, fmt::format("{}{}[{}]", prefix, e.name, i));
      iterations->push_back(it);
      for (const auto& d : e.dataIns) {
        bool iterated = std::find(e.iterators.begin(), e.iterators.end(), d.name) != e.iterators.end();
        set(it, e.name + "/" + d.name, iterated ? values[d.name][i] : values[d.name]);
      }
      if (!e.counterName.empty()) set(it, e.name + "/" + e.counterName, from + static_cast<double>(i) * step);
    }
    for (Scope* it : *iterations) activateAll(e.body, it);
    // Each dataOut: the collection of its source's values, in iteration order.
    for (const auto& d : e.dataOuts) {
      const Ref* src = &d.sources.front();
      std::string key = e.name + "/" + d.name;
      if (count == 0) {
        set(s, key, json::array());
        continue;
      }
      auto remaining = std::make_shared<size_t>(count);
      for (Scope* it : *iterations) {
        when(it, {src}, [this, s, src, key, remaining, iterations]() TERN_REQUIRES(mu_) {
          if (--*remaining > 0) return;
          json all = json::array();
          for (Scope* x : *iterations) all.push_back(*lookup(x, *src));
          set(s, key, std::move(all));
        });
      }
    }
  });
}

void Run::iterateWhile(const Element& e, Scope* outer, uint64_t k, std::map<std::string, json> carried) {
  if (k > limits_.maxIterations) {
    return fail(Error(ErrorCode::kInvalidArgument,
                      fmt::format("{}: more than {} iterations", where(e, outer->path), limits_.maxIterations)));
  }
  std::string prefix = outer->path.empty() ? "" : outer->path + "/";
  Scope* it = newScope(outer, &e, fmt::format("{}{}[{}]", prefix, e.name, k));
  set(it, e.name + "/counter", static_cast<double>(k));
  for (auto& [name, v] : carried) set(it, e.name + "/" + name, v);
  activateAll(e.body, it);
  std::vector<const Ref*> refs;
  for (const auto& lv : e.loopValues) refs.push_back(&lv.next);
  for (const auto& c : e.condition) {
    if (c.data1.ref) refs.push_back(&*c.data1.ref);
    if (c.data2.ref) refs.push_back(&*c.data2.ref);
  }
  when(it, refs, [this, &e, outer, it, k, carried = std::move(carried)]() TERN_REQUIRES(mu_) mutable {
    std::vector<std::pair<json, json>> values;
    for (const auto& c : e.condition) {
      auto a = operandValue(it, c.data1), b = operandValue(it, c.data2);
      if (!a.ok() || !b.ok()) return fail((a.ok() ? b : a).error());
      values.emplace_back(std::move(*a), std::move(*b));
    }
    auto again = evaluateCondition(e.condition, values);
    if (!again.ok()) return fail(Error(ErrorCode::kInvalidArgument, where(e, it->path) + ": " + again.error().message()));
    if (!*again) return publishOutputs(e, it, outer, nullptr);
    for (const auto& lv : e.loopValues) carried[lv.name] = *lookup(it, lv.next);
    // The next iteration starts as an event, so that a long loop does not nest calls.
    events_.push_back([this, &e, outer, k, carried = std::move(carried)]() TERN_REQUIRES(mu_) mutable {
      iterateWhile(e, outer, k + 1, std::move(carried));
    });
  });
}

void Run::publishOutputs(const Element& e, Scope* from, Scope* to, const std::vector<Element>* taken) {
  for (const auto& d : e.dataOuts) {
    const Ref* src = nullptr;
    if (!taken) {
      src = &d.sources.front();
    } else {
      // The alternative from the branch taken, else one from outside the compound.
      for (const auto& r : d.sources) {
        if (r.producer && inBody(r.producer, *taken)) {
          src = &r;
          break;
        }
      }
      for (const auto& r : d.sources) {
        if (!src && (r.alias || !r.producer || !insideOf(r.producer, &e))) src = &r;
      }
      if (!src) {
        return fail(Error(ErrorCode::kInvalidArgument,
                          fmt::format("{}: dataOut \"{}\" has no source in the branch taken",
                                      where(e, from->path), d.name)));
      }
    }
    std::string key = e.name + "/" + d.name;
    when(from, {src}, [this, from, to, src, key]() TERN_REQUIRES(mu_) { set(to, key, *lookup(from, *src)); });
  }
}

json Run::checkedOutput(const Element& e, const std::string& output, std::optional<std::string>& error) {
  if (error || e.dataOuts.empty()) return json();
  json out = json::parse(output, nullptr, /*allow_exceptions=*/false);
  if (out.is_discarded() || !out.is_object()) {
    error = fmt::format("its output is not a JSON object: \"{}\"", excerpt(output));
    return json();
  }
  for (const auto& d : e.dataOuts) {
    if (!out.contains(d.name)) {
      error = fmt::format("its output has no \"{}\" (declared in dataOuts)", d.name);
      break;
    }
  }
  return out;
}

void Run::record(const Pending& p, const Element& e, const TaskResult& r, const std::string& key) {
  TaskRecord t;
  t.runId = id_;
  t.key = key;
  t.task = e.name;
  t.iteration = p.scope->path;
  t.resource = r.resource;
  t.startUs = r.startUs;
  t.queueUs = std::max<int64_t>(0, r.startUs - p.readyUs);
  t.durationUs = r.durationUs;
  t.execUs = r.execUs;
  t.attempts = p.call.attempt;
  t.outcome = r.error ? "failed" : "ok";
  t.output = r.error ? std::string() : r.output;
  t.error = r.error.value_or("");
  if (p.call.unit) {
    t.place = p.call.unit->tier;
    t.group = p.call.unit->group;
  }
  onTask_(std::move(t));
}

void Run::taskDone(Pending p, TaskResult r) {
  --inFlight_;
  const Element& e = *p.call.task;
  json out = checkedOutput(e, r.output, r.error);
  bool replayed = p.call.attempt == 0;
  if (r.error && !replayed && p.call.attempt < limits_.attempts) {
    ++p.call.attempt;
    p.readyUs = unixMicros();
    ready_.push_back(std::move(p));
    return;
  }
  if (!replayed) record(p, e, r, p.call.key);
  if (r.error) {
    return fail(Error(ErrorCode::kFunctionFailed,
                      fmt::format("task \"{}\"{} failed after {} attempt{}: {}", e.name,
                                  p.scope->path.empty() ? "" : " (iteration " + p.scope->path + ")",
                                  p.call.attempt, p.call.attempt == 1 ? "" : "s", *r.error)));
  }
  for (const auto& d : e.dataOuts) set(p.scope, e.name + "/" + d.name, std::move(out[d.name]));
}

void Run::unitDone(Pending p, TaskResult r) {
  --inFlight_;
  const Unit& u = *p.call.unit;
  if (r.members.size() > u.members.size()) {
    r.error = fmt::format("the unit's answer lists {} members for {}", r.members.size(), u.members.size());
    r.members.clear();
  }
  // The unit fails at its first member without a good output; the members after it did not run.
  std::vector<json> outs;
  const Element* failed = nullptr;
  for (size_t i = 0; i < u.members.size() && !failed; ++i) {
    if (i >= r.members.size()) {
      failed = u.members[i];
      if (!r.error) r.error = "the unit stopped before it";
      break;
    }
    TaskResult& m = r.members[i];
    outs.push_back(checkedOutput(*u.members[i], m.output, m.error));
    if (m.error) {
      failed = u.members[i];
      r.error = m.error;
    }
  }
  if (failed && !r.error) r.error = "failed";
  bool replayed = p.call.attempt == 0;
  if (failed && !replayed && p.call.attempt < limits_.attempts) {
    ++p.call.attempt;
    p.readyUs = unixMicros();
    ready_.push_back(std::move(p));
    return;
  }
  const std::string prefix = p.scope->path.empty() ? "" : p.scope->path + "/";
  if (!replayed) {
    for (size_t i = 0; i < r.members.size(); ++i) {
      TaskResult& m = r.members[i];
      if (m.resource.empty()) m.resource = r.resource;
      record(p, *u.members[i], m, prefix + u.members[i]->name);
    }
  }
  if (failed) {
    return fail(Error(ErrorCode::kFunctionFailed,
                      fmt::format("task \"{}\" (fused with {}) failed after {} attempt{}: {}", failed->name,
                                  u.members.size() - 1 == 1 ? "1 other" : fmt::format("{} others", u.members.size() - 1),
                                  p.call.attempt, p.call.attempt == 1 ? "" : "s", *r.error)));
  }
  for (size_t i = 0; i < u.members.size(); ++i) {
    for (const auto& d : u.members[i]->dataOuts) set(p.scope, u.members[i]->name + "/" + d.name, std::move(outs[i][d.name]));
  }
}

void Run::dispatchReady() {
  while (!ended_ && !ready_.empty() && inFlight_ < limits_.maxTasksInFlight) {
    toDispatch_.push_back(std::move(ready_.front()));
    ready_.pop_front();
    ++inFlight_;
  }
}

void Run::checkFinished() {
  if (ended_) return;
  if (inFlight_ > 0 || !ready_.empty() || !events_.empty()) return;
  if (outputsReady_) {
    ended_ = true;
    return;
  }
  // Nothing runs and nothing can start: a value the rest waits for never comes.
  std::string missing;
  for (const auto& s : scopes_) {
    for (const auto& [key, ids] : s->waiters) {
      if (!ids.empty()) {
        missing = s->path.empty() ? key : key + " in " + s->path;
        break;
      }
    }
    if (!missing.empty()) break;
  }
  fail(Error(ErrorCode::kInvalidArgument,
             fmt::format("the run cannot go on: nothing runs and \"{}\" never came", missing)));
}

}  // namespace tern::workflow
