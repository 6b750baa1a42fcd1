#include "workflow/fusion.h"

#include <fmt/format.h>

#include <algorithm>
#include <memory>

#include "util/clock.h"
#include "workflow/costless.h"
#include "workflow/data_ops.h"

namespace tern::workflow {

using json = nlohmann::json;

namespace {

Error bad(std::string what) { return Error(ErrorCode::kInvalidArgument, std::move(what)); }

Result<std::vector<std::string>> names(const json& j, const std::string& field) {
  if (!j.is_array()) return bad(fmt::format("plan: {} must be a list of function names", field));
  std::vector<std::string> out;
  for (const auto& n : j) {
    if (!n.is_string()) return bad(fmt::format("plan: {} must be a list of function names", field));
    out.push_back(n.get<std::string>());
  }
  return out;
}

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += fmt::format("{}{}", out.empty() ? "" : ", ", s);
  return out;
}

}  // namespace

Result<Fusion> applyPlan(const Workflow& workflow, const json& plan) {
  if (!plan.is_object()) return bad("plan: must be a JSON object {\"edge\", \"cloud_groups\", ...}");
  for (auto it = plan.begin(); it != plan.end(); ++it) {
    const std::string& k = it.key();
    if (k == "feasible") {
      if (!it->is_boolean()) return bad("plan: feasible must be true or false");
      if (!it->get<bool>()) return bad("plan: it is not feasible (no configuration met its latency bound)");
    } else if (k == "price" || k == "latency_ms") {
      if (!it->is_number()) return bad(fmt::format("plan: {} must be a number", k));
    } else if (k != "edge" && k != "cloud_groups") {
      return bad(fmt::format("plan: unknown field \"{}\" (known: feasible, edge, cloud_groups, price, latency_ms)", k));
    }
  }
  if (!plan.contains("edge") || !plan.contains("cloud_groups")) return bad("plan: needs edge and cloud_groups");
  auto edge = names(plan["edge"], "edge");
  if (!edge.ok()) return edge.error();
  const json& groups = plan["cloud_groups"];
  if (!groups.is_array()) return bad("plan: cloud_groups must be a list of lists of function names");
  std::vector<std::vector<std::string>> cloud;
  for (size_t g = 0; g < groups.size(); ++g) {
    auto n = names(groups[g], fmt::format("cloud_groups[{}]", g));
    if (!n.ok()) return n.error();
    if (n->empty()) return bad(fmt::format("plan: cloud_groups[{}] is empty", g));
    cloud.push_back(std::move(*n));
  }
  auto chain = chainOf(workflow);
  if (!chain.ok()) return Error(ErrorCode::kInvalidArgument, "a plan needs a chain: " + chain.error().message());
  std::vector<std::string> planned = *edge;
  for (const auto& g : cloud) planned.insert(planned.end(), g.begin(), g.end());
  if (planned != *chain) {
    return bad(fmt::format("plan: its functions ({}) are not the workflow's chain ({}) in order",
                           joined(planned), joined(*chain)));
  }
  std::unordered_map<std::string, const Element*> byName;
  std::unordered_map<const Element*, size_t> position;
  for (const auto* f : workflow.functions) byName[f->name] = f;
  for (size_t i = 0; i < chain->size(); ++i) position[byName[(*chain)[i]]] = i;
  // Every function reads only what exists before it in the chain, so a unit's inputs from
  // outside are known when it starts.
  for (size_t i = 0; i < chain->size(); ++i) {
    const Element* f = byName[(*chain)[i]];
    for (const auto& d : f->dataIns) {
      if (!d.source || !d.source->producer) continue;
      auto p = position.find(d.source->producer);
      if (p == position.end() || p->second >= i) {
        return bad(fmt::format("line {}: function \"{}\" reads \"{}\"; a planned chain's functions read "
                               "only the workflow's inputs and outputs of functions before them",
                               d.mark.line, f->name, d.source->text));
      }
    }
  }
  Fusion fusion;
  for (const auto& n : *edge) fusion.units.push_back(Unit{"edge", {byName[n]}, -1});
  for (size_t g = 0; g < cloud.size(); ++g) {
    Unit u{"cloud", {}, static_cast<int>(g)};
    for (const auto& n : cloud[g]) u.members.push_back(byName[n]);
    fusion.units.push_back(std::move(u));
  }
  for (size_t k = 0; k < fusion.units.size(); ++k) {
    for (const auto* m : fusion.units[k].members) fusion.unitOf[m] = k;
  }
  return fusion;
}

json segmentJson(const Segment& s) {
  json members = json::array();
  for (const auto& m : s.members) {
    json from = json::array();
    for (const auto& b : m.bindings) {
      json ops = json::array();
      for (const auto& op : b.ops) ops.push_back(json{{"name", op.name}, {"value", op.value}});
      from.push_back(json{{"name", b.name}, {"member", b.member}, {"port", b.port}, {"ops", ops}});
    }
    members.push_back(json{{"key", m.key}, {"fn", m.function}, {"in", m.input}, {"from", from}});
  }
  return json{{"env", s.env}, {"members", members}};
}

Result<Segment> parseSegment(const json& j) {
  auto text = [](const json& o, const char* k, std::string& out) {
    auto it = o.find(k);
    if (it == o.end() || !it->is_string()) return false;
    out = it->get<std::string>();
    return true;
  };
  if (!j.is_object()) return bad("segment: not a JSON object");
  auto env = j.find("env");
  auto members = j.find("members");
  if (env == j.end() || !env->is_array()) return bad("segment: env must be a list");
  if (members == j.end() || !members->is_array() || members->empty()) return bad("segment: members must be a non-empty list");
  Segment s;
  for (const auto& e : *env) {
    if (!e.is_string()) return bad("segment: env must be a list of text");
    s.env.push_back(e.get<std::string>());
  }
  for (size_t i = 0; i < members->size(); ++i) {
    const json& m = (*members)[i];
    SegmentMember out;
    if (!m.is_object() || !text(m, "key", out.key) || !text(m, "fn", out.function)) {
      return bad(fmt::format("segment: members[{}] needs key and fn", i));
    }
    auto in = m.find("in");
    auto from = m.find("from");
    if (in == m.end() || !in->is_object()) return bad(fmt::format("segment: members[{}].in must be an object", i));
    if (from == m.end() || !from->is_array()) return bad(fmt::format("segment: members[{}].from must be a list", i));
    out.input = *in;
    for (const auto& b : *from) {
      Binding binding;
      auto member = b.is_object() ? b.find("member") : b.end();
      auto ops = b.is_object() ? b.find("ops") : b.end();
      if (!b.is_object() || !text(b, "name", binding.name) || !text(b, "port", binding.port) ||
          member == b.end() || !member->is_number_unsigned() || member->get<uint64_t>() >= i ||
          ops == b.end() || !ops->is_array()) {
        return bad(fmt::format("segment: members[{}].from: each needs name, port, an earlier member and ops", i));
      }
      binding.member = member->get<size_t>();
      for (const auto& op : *ops) {
        CollectionOp c;
        if (!op.is_object() || !text(op, "name", c.name) || !text(op, "value", c.value)) {
          return bad(fmt::format("segment: members[{}].from: ops need name and value", i));
        }
        binding.ops.push_back(std::move(c));
      }
      out.bindings.push_back(std::move(binding));
    }
    s.members.push_back(std::move(out));
  }
  return s;
}

Result<std::string> memberInput(const Segment& s, size_t i, const std::vector<std::string>& outputs) {
  const SegmentMember& m = s.members.at(i);
  json in = m.input;
  std::vector<json> parsed(outputs.size());
  for (const auto& b : m.bindings) {
    if (b.member >= outputs.size()) return bad(fmt::format("dataIn \"{}\": member {} has not run", b.name, b.member));
    json& out = parsed[b.member];
    if (out.is_null()) {
      out = json::parse(outputs[b.member], nullptr, false);
      if (out.is_discarded() || !out.is_object()) {
        return bad(fmt::format("the output of \"{}\" is not a JSON object", s.members[b.member].key));
      }
    }
    auto v = out.find(b.port);
    if (v == out.end()) {
      return bad(fmt::format("the output of \"{}\" has no \"{}\" (declared in dataOuts)", s.members[b.member].key, b.port));
    }
    json value = *v;
    for (const auto& op : b.ops) {
      auto r = applyCollectionOp(value, op.name, op.value, [](std::string_view ref) -> Result<double> {
        return bad(fmt::format("\"{}\": in a fused unit, collection operations take numbers", ref));
      });
      if (!r.ok()) return bad(fmt::format("dataIn \"{}\": {}", b.name, r.error().message()));
      value = std::move(*r);
    }
    in[b.name] = std::move(value);
  }
  return in.dump();
}

json segmentResultJson(const SegmentResult& r) {
  json members = json::array();
  for (const auto& m : r.members) {
    json j{{"key", m.key},
           {"output", m.output},
           {"start_us", m.startUs},
           {"duration_us", m.durationUs},
           {"exec_us", m.execUs}};
    if (m.error) j["error"] = *m.error;
    members.push_back(std::move(j));
  }
  json out{{"members", members}};
  if (r.error) out["error"] = json{{"code", errorKind(r.error->code()).name}, {"message", r.error->message()}};
  return out;
}

Result<SegmentResult> parseSegmentResult(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  auto members = j.is_object() ? j.find("members") : j.end();
  if (!j.is_object() || members == j.end() || !members->is_array()) {
    return bad("a fused unit's answer is not {\"members\": [...]}");
  }
  SegmentResult r;
  for (const auto& m : *members) {
    MemberResult out;
    auto num = [&](const char* k, int64_t& v) {
      auto it = m.find(k);
      if (it == m.end() || !it->is_number_integer()) return false;
      v = it->get<int64_t>();
      return true;
    };
    auto key = m.is_object() ? m.find("key") : m.end();
    auto output = m.is_object() ? m.find("output") : m.end();
    if (!m.is_object() || key == m.end() || !key->is_string() || output == m.end() || !output->is_string() ||
        !num("start_us", out.startUs) || !num("duration_us", out.durationUs) || !num("exec_us", out.execUs)) {
      return bad("a fused unit's answer has a malformed member");
    }
    out.key = key->get<std::string>();
    out.output = output->get<std::string>();
    if (auto e = m.find("error"); e != m.end()) {
      if (!e->is_string()) return bad("a fused unit's answer has a malformed member error");
      out.error = e->get<std::string>();
    }
    r.members.push_back(std::move(out));
  }
  if (auto e = j.find("error"); e != j.end()) {
    auto code = e->is_object() ? e->find("code") : e->end();
    auto message = e->is_object() ? e->find("message") : e->end();
    if (!e->is_object() || code == e->end() || !code->is_string() || message == e->end() || !message->is_string()) {
      return bad("a fused unit's answer has a malformed error");
    }
    r.error = Error(errorCodeByName(code->get<std::string>()).value_or(ErrorCode::kInternal),
                    message->get<std::string>());
  }
  return r;
}

void runSegment(exec::Invoker& invoker, Segment segment, std::function<void(SegmentResult)> done) {
  auto s = std::make_shared<Segment>(std::move(segment));
  // Start times and durations per member, measured around the sandbox on the slot's thread.
  auto starts = std::make_shared<std::vector<int64_t>>();
  exec::FusedInput in;
  for (const auto& m : s->members) in.functions.push_back(m.function);
  in.env = Environment(s->env);
  in.input = [s, starts](size_t i, const std::vector<exec::InvokeOutput>& before) -> Result<std::string> {
    std::vector<std::string> outputs;
    for (const auto& o : before) outputs.push_back(o.result.stdoutData);
    starts->push_back(unixMicros());
    return memberInput(*s, i, outputs);
  };
  invoker.invokeFused(std::move(in), [s, starts, done = std::move(done)](exec::FusedOutput out) {
    SegmentResult r;
    int64_t end = unixMicros();
    for (size_t i = 0; i < out.members.size(); ++i) {
      const exec::InvokeOutput& o = out.members[i];
      MemberResult m;
      m.key = s->members[i].key;
      m.startUs = i < starts->size() ? (*starts)[i] : end;
      m.durationUs = (i + 1 < starts->size() ? (*starts)[i + 1] : end) - m.startUs;
      m.execUs = o.ran ? o.result.durationNs / 1000 : -1;
      if (o.error) {
        m.error = o.error->message();
      } else {
        m.output = o.result.stdoutData;
      }
      r.members.push_back(std::move(m));
    }
    r.error = std::move(out.error);
    done(std::move(r));
  });
}

}  // namespace tern::workflow
