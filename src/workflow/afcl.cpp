#include "workflow/afcl.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>

#include <fmt/format.h>

#include <map>
#include <set>
#include <unordered_map>

#include "util/yaml_values.h"
#include "workflow/data_ops.h"

namespace tern::workflow {

using json = nlohmann::json;

const char* kindName(Kind k) {
  switch (k) {
    case Kind::kFunction: return "function";
    case Kind::kSequence: return "sequence";
    case Kind::kParallel: return "parallel";
    case Kind::kIf: return "if";
    case Kind::kSwitch: return "switch";
    case Kind::kParallelFor: return "parallelFor";
    case Kind::kWhile: return "while";
  }
  return "?";
}

namespace {

// yaml-cpp reports malformed YAML by exception; the parser's own findings take the same
// route inside this file, and parseAfcl turns both into one Result at its boundary.
struct AfclError {
  Mark mark;
  std::string message;
};

Mark markOf(const YAML::Node& n) {
  auto m = n.Mark();
  return Mark{m.line + 1, m.column + 1};
}

[[noreturn]] void fail(Mark m, std::string message) { throw AfclError{m, std::move(message)}; }
[[noreturn]] void fail(const YAML::Node& n, std::string message) { fail(markOf(n), std::move(message)); }

// Keys AFCL tools write that tern does not act on (documentation, deployment hints).
bool ignoredKey(std::string_view key) {
  return key == "properties" || key == "constraints" || key == "description" ||
         key == "saveto" || key == "passing" || key == "deployment";
}

void checkKeys(const YAML::Node& map, std::string_view what,
               std::initializer_list<std::string_view> known) {
  for (auto it = map.begin(); it != map.end(); ++it) {
    if (!it->first.IsScalar()) fail(it->first, fmt::format("{}: keys must be text", what));
    const std::string& key = it->first.Scalar();
    bool ok = ignoredKey(key);
    for (auto k : known) ok = ok || key == k;
    if (!ok) {
      std::string names;
      for (auto k : known) names += fmt::format("{}{}", names.empty() ? "" : ", ", k);
      fail(it->first, fmt::format("{}: unknown key \"{}\" (known: {})", what, key, names));
    }
  }
}

// Refuses a key or value that is not valid UTF-8 (an AFCL document is UTF-8 text, as YAML
// 1.2 requires; yaml-cpp passes other bytes through, and every value of a workflow is
// later written as JSON, which cannot hold them), a document whose aliases expand to
// more than kMaxValues keys and values, and an alias that names a node containing it.
void checkValues(const std::string& text, const YAML::Node& root) {
  constexpr size_t kMaxValues = 1000000;
  auto bad = findBadYamlValue(text, root, kMaxValues);
  if (!bad) return;
  Mark at{bad->mark.line + 1, bad->mark.column + 1};
  switch (bad->problem) {
    case YamlValueProblem::kTooMany:
      fail(at, fmt::format("the document expands to more than {} keys and values "
                           "(through aliases)", kMaxValues));
    case YamlValueProblem::kCycle:
      fail(at, "an alias names a sequence or map that contains it");
    case YamlValueProblem::kNotUtf8:
      break;
  }
  fail(at, "text that is not valid UTF-8");
}

enum class Need { kRequired, kOptional };

std::string scalar(const YAML::Node& map, const char* key, std::string_view what,
                   Need need = Need::kRequired) {
  YAML::Node n = map[key];
  if (!n || n.IsNull()) {
    if (need == Need::kRequired) fail(map, fmt::format("{}: \"{}\" is required", what, key));
    return {};
  }
  if (!n.IsScalar()) fail(n, fmt::format("{}: \"{}\" must be a single value", what, key));
  return n.Scalar();
}

// A plain YAML scalar as JSON (numbers, booleans, null by their text); quoted stays text.
json scalarJson(const YAML::Node& n) {
  const std::string& s = n.Scalar();
  if (n.Tag() == "!") return s;
  if (s == "true" || s == "True") return true;
  if (s == "false" || s == "False") return false;
  if (s == "null" || s == "~") return nullptr;
  if (json v = parseConstant(s); v.is_number()) return v;
  return s;
}

json toJson(const YAML::Node& n, size_t depth = 0) {
  if (depth > 64) fail(n, "a value nested more than 64 deep");
  if (n.IsScalar()) return scalarJson(n);
  if (n.IsSequence()) {
    json a = json::array();
    for (const auto& e : n) a.push_back(toJson(e, depth + 1));
    return a;
  }
  if (n.IsMap()) {
    json o = json::object();
    for (auto it = n.begin(); it != n.end(); ++it) {
      if (!it->first.IsScalar()) fail(it->first, "object keys must be text");
      o[it->first.Scalar()] = toJson(it->second, depth + 1);
    }
    return o;
  }
  return nullptr;
}

YAML::Node listOf(const YAML::Node& map, const char* key, std::string_view what, Need need) {
  YAML::Node n = map[key];
  if (!n || n.IsNull()) {
    if (need == Need::kRequired) fail(map, fmt::format("{}: \"{}\" is required", what, key));
    return YAML::Node(YAML::NodeType::Sequence);
  }
  if (!n.IsSequence()) fail(n, fmt::format("{}: \"{}\" must be a list", what, key));
  return n;
}

Ref unresolved(const YAML::Node& n) { return Ref{n.Scalar(), markOf(n), nullptr, nullptr, false}; }

Operand operand(const YAML::Node& n, Mark where, std::string_view what) {
  if (!n) fail(where, fmt::format("{}: an operand is missing", what));
  Operand o;
  if (n.IsScalar() && isReference(n.Scalar())) {
    o.ref = unresolved(n);
  } else {
    o.constant = toJson(n);
  }
  return o;
}

std::vector<CollectionOp> collectionOps(const YAML::Node& d, std::string_view what) {
  std::vector<CollectionOp> ops;
  YAML::Node c = d["constraints"];
  if (!c || !c.IsSequence()) return ops;
  for (const auto& op : c) {
    if (!op.IsMap()) fail(op, fmt::format("{}: a constraint is a map of name and value", what));
    std::string name = scalar(op, "name", what);
    if (!isCollectionOp(name)) continue;
    YAML::Node v = op["value"];
    if (!v || !v.IsScalar()) fail(op, fmt::format("{}: constraint \"{}\" needs a value", what, name));
    ops.push_back(CollectionOp{name, v.Scalar()});
  }
  return ops;
}

// Pass one reads the YAML into the tree with references as text; pass two (link) sets
// parent and loop pointers, once no vector of elements grows any more, and resolves
// every reference in the context it is read from.
class Parser {
 public:
  explicit Parser(ParseLimits limits) : limits_(limits) {}

  std::unique_ptr<Workflow> parse(std::string_view text) {
    std::string document(text);
    YAML::Node root = YAML::Load(document);
    checkValues(document, root);
    if (!root.IsMap()) fail(root, "an AFCL workflow is a map of name, dataIns, workflowBody and dataOuts");
    checkKeys(root, "workflow", {"name", "dataIns", "workflowBody", "dataOuts"});
    auto wf = std::make_unique<Workflow>();
    wf_ = wf.get();
    wf->name = scalar(root, "name", "workflow");
    if (wf->name.empty() || wf->name.find('/') != std::string::npos) {
      fail(root["name"], "workflow: the name must be non-empty and contain no \"/\"");
    }
    std::set<std::string> seen;
    for (const auto& d : listOf(root, "dataIns", "workflow", Need::kOptional)) {
      if (!d.IsMap()) fail(d, "workflow dataIn: must be a map");
      checkKeys(d, "workflow dataIn", {"name", "type", "source"});
      DataIn in;
      in.mark = markOf(d);
      in.name = scalar(d, "name", "workflow dataIn");
      in.type = scalar(d, "type", "workflow dataIn", Need::kOptional);
      std::string key = scalar(d, "source", "workflow dataIn", Need::kOptional);
      in.value = key.empty() ? in.name : key;  // the key of the run's input object
      if (!seen.insert(in.name).second) fail(d, fmt::format("workflow dataIn \"{}\" twice", in.name));
      wf->dataIns.push_back(std::move(in));
    }
    body(listOf(root, "workflowBody", "workflow", Need::kRequired), wf->body, 1);
    for (const auto& d : listOf(root, "dataOuts", "workflow", Need::kOptional)) {
      wf->dataOuts.push_back(dataOut(d, "workflow dataOut", Need::kRequired));
    }
    index(wf->body, nullptr, nullptr);
    link(wf->body);
    for (auto& d : wf->dataOuts) {
      if (d.sources.size() > 1) fail(d.mark, fmt::format("workflow dataOut \"{}\": one source", d.name));
      for (auto& r : d.sources) resolve(r, nullptr);
    }
    checkCycles();
    return wf;
  }

 private:
  DataIn dataIn(const YAML::Node& d, std::string_view what) {
    if (!d.IsMap()) fail(d, fmt::format("{}: must be a map", what));
    checkKeys(d, what, {"name", "type", "source", "value"});
    DataIn in;
    in.mark = markOf(d);
    in.name = scalar(d, "name", what);
    in.type = scalar(d, "type", what, Need::kOptional);
    in.ops = collectionOps(d, fmt::format("{} \"{}\"", what, in.name));
    if (d["value"]) {
      in.value = coerce(toJson(d["value"]), in.type);
    } else if (YAML::Node s = d["source"]; s && !s.IsNull()) {
      if (!s.IsScalar()) fail(s, fmt::format("{} \"{}\": source must be text", what, in.name));
      if (isReference(s.Scalar())) {
        in.source = unresolved(s);
      } else {
        in.value = coerce(scalarJson(s), in.type);
      }
    } else {
      fail(d, fmt::format("{} \"{}\": needs a source or a value", what, in.name));
    }
    return in;
  }

  DataOut dataOut(const YAML::Node& d, std::string_view what, Need source) {
    if (!d.IsMap()) fail(d, fmt::format("{}: must be a map", what));
    checkKeys(d, what, {"name", "type", "source"});
    DataOut out;
    out.mark = markOf(d);
    out.name = scalar(d, "name", what);
    out.type = scalar(d, "type", what, Need::kOptional);
    YAML::Node s = d["source"];
    if (source == Need::kOptional) return out;  // a function's declaration
    if (!s || !s.IsScalar() || s.Scalar().empty()) fail(d, fmt::format("{} \"{}\": source is required", what, out.name));
    // Alternatives "A/x,B/y" (if and switch); each a reference.
    std::string all = s.Scalar();
    size_t start = 0;
    while (start <= all.size()) {
      size_t comma = all.find(',', start);
      std::string one = all.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      while (!one.empty() && one.front() == ' ') one.erase(0, 1);
      while (!one.empty() && one.back() == ' ') one.pop_back();
      if (one != "NULL") {
        if (!isReference(one)) fail(s, fmt::format("{} \"{}\": \"{}\" is not a reference Producer/port", what, out.name, one));
        out.sources.push_back(Ref{one, markOf(s), nullptr, nullptr, false});
      }
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    if (out.sources.empty()) fail(s, fmt::format("{} \"{}\": needs a source other than NULL", what, out.name));
    return out;
  }

  void condition(const YAML::Node& n, Element& e) {
    std::string what = fmt::format("{} \"{}\" condition", kindName(e.kind), e.name);
    if (!n) fail(e.mark, what + ": required");
    YAML::Node items = n;
    bool orAll = false;
    if (n.IsMap()) {  // AFCL 1.0: {combinedWith, conditions: [...]}
      checkKeys(n, what, {"combinedWith", "conditions"});
      std::string cw = scalar(n, "combinedWith", what, Need::kOptional);
      if (!cw.empty() && cw != "and" && cw != "or") fail(n["combinedWith"], what + ": combinedWith is \"and\" or \"or\"");
      orAll = cw == "or";
      items = listOf(n, "conditions", what, Need::kRequired);
    }
    if (!items.IsSequence() || items.size() == 0) fail(n, what + ": a non-empty list of conditions");
    static const std::set<std::string> kOps = {"==", "!=", "<", "<=", "=<", ">", ">=",
                                               "contains", "startsWith", "endsWith"};
    for (const auto& c : items) {
      if (!c.IsMap()) fail(c, what + ": each condition is a map");
      checkKeys(c, what, {"data1", "data2", "operator", "type", "negation", "combinedWith"});
      ConditionItem item;
      item.mark = markOf(c);
      item.op = scalar(c, "operator", what);
      if (!kOps.count(item.op)) fail(c["operator"], fmt::format("{}: unknown operator \"{}\"", what, item.op));
      if (item.op == "=<") item.op = "<=";
      item.type = scalar(c, "type", what, Need::kOptional);
      if (!item.type.empty() && item.type != "number" && item.type != "string" &&
          item.type != "boolean" && item.type != "object") {
        fail(c["type"], what + ": type must be number, string, boolean or object");
      }
      std::string neg = scalar(c, "negation", what, Need::kOptional);
      if (!neg.empty() && neg != "true" && neg != "false") fail(c["negation"], what + ": negation is true or false");
      item.negation = neg == "true";
      std::string cw = scalar(c, "combinedWith", what, Need::kOptional);
      if (!cw.empty() && cw != "and" && cw != "or") fail(c["combinedWith"], what + ": combinedWith is \"and\" or \"or\"");
      item.orNext = cw.empty() ? orAll : cw == "or";
      item.data1 = operand(c["data1"], item.mark, what);
      item.data2 = operand(c["data2"], item.mark, what);
      e.condition.push_back(std::move(item));
    }
  }

  void body(const YAML::Node& list, std::vector<Element>& out, size_t depth) {
    if (depth > limits_.maxDepth) fail(list, fmt::format("compounds nested more than {} deep", limits_.maxDepth));
    out.reserve(out.size() + list.size());
    for (const auto& item : list) {
      if (!item.IsMap() || item.size() != 1) {
        fail(item, "each body item is one of function, sequence, parallel, if, switch, parallelFor, while");
      }
      if (++elements_ > limits_.maxElements) fail(item, fmt::format("more than {} elements", limits_.maxElements));
      out.push_back(element(item.begin()->first, item.begin()->second, depth));
    }
  }

  Element element(const YAML::Node& key, const YAML::Node& n, size_t depth) {
    static const std::map<std::string, Kind> kKinds = {
        {"function", Kind::kFunction}, {"sequence", Kind::kSequence},
        {"parallel", Kind::kParallel}, {"if", Kind::kIf},
        {"switch", Kind::kSwitch},     {"parallelFor", Kind::kParallelFor},
        {"while", Kind::kWhile}};
    std::string kind = key.IsScalar() ? key.Scalar() : "";
    auto k = kKinds.find(kind);
    if (k == kKinds.end()) {
      fail(key, fmt::format("unknown construct \"{}\" (tern runs function, sequence, parallel, "
                            "if, switch, parallelFor and while)", kind));
    }
    if (!n.IsMap()) fail(n, fmt::format("{}: must be a map", kind));
    Element e;
    e.kind = k->second;
    e.mark = markOf(key);
    e.name = scalar(n, "name", kind);
    if (e.name.empty() || e.name.find('/') != std::string::npos || e.name.find(',') != std::string::npos) {
      fail(n["name"], kind + ": the name must be non-empty and contain no \"/\" or \",\"");
    }
    std::string what = fmt::format("{} \"{}\"", kind, e.name);
    switch (e.kind) {
      case Kind::kFunction: checkKeys(n, what, {"name", "type", "dataIns", "dataOuts"}); break;
      case Kind::kSequence: checkKeys(n, what, {"name", "dataIns", "sequenceBody", "dataOuts"}); break;
      case Kind::kParallel: checkKeys(n, what, {"name", "dataIns", "parallelBody", "dataOuts"}); break;
      case Kind::kIf: checkKeys(n, what, {"name", "dataIns", "condition", "then", "else", "dataOuts"}); break;
      case Kind::kSwitch: checkKeys(n, what, {"name", "dataIns", "dataEval", "cases", "default", "dataOuts"}); break;
      case Kind::kParallelFor: checkKeys(n, what, {"name", "dataIns", "iterators", "loopCounter", "loopBody", "dataOuts"}); break;
      case Kind::kWhile: checkKeys(n, what, {"name", "dataIns", "dataLoops", "condition", "loopBody", "dataOuts"}); break;
    }
    for (const auto& d : listOf(n, "dataIns", what, Need::kOptional)) e.dataIns.push_back(dataIn(d, what + " dataIn"));
    if (e.kind == Kind::kFunction) e.type = scalar(n, "type", what);
    for (const auto& d : listOf(n, "dataOuts", what, Need::kOptional)) {
      e.dataOuts.push_back(dataOut(d, what + " dataOut", e.kind == Kind::kFunction ? Need::kOptional : Need::kRequired));
    }
    switch (e.kind) {
      case Kind::kFunction: break;
      case Kind::kSequence: body(listOf(n, "sequenceBody", what, Need::kRequired), e.body, depth + 1); break;
      case Kind::kParallel:
        for (const auto& s : listOf(n, "parallelBody", what, Need::kRequired)) {
          if (!s.IsMap() || !s["section"]) fail(s, what + ": parallelBody is a list of sections");
          body(listOf(s, "section", what, Need::kRequired), e.body, depth + 1);
        }
        break;
      case Kind::kIf:
        condition(n["condition"], e);
        body(listOf(n, "then", what, Need::kRequired), e.body, depth + 1);
        body(listOf(n, "else", what, Need::kOptional), e.elseBody, depth + 1);
        break;
      case Kind::kSwitch: {
        YAML::Node ev = n["dataEval"];
        if (!ev || !ev.IsMap()) fail(key, what + ": dataEval (name, type, source) is required");
        e.dataEval = dataIn(ev, what + " dataEval");
        for (const auto& c : listOf(n, "cases", what, Need::kRequired)) {
          if (!c.IsMap()) fail(c, what + ": each case is a map of value and functions");
          checkKeys(c, what + " case", {"value", "break", "functions"});
          if (!c["value"]) fail(c, what + ": a case needs a value");
          Case cs;
          cs.value = toJson(c["value"]);
          body(listOf(c, "functions", what + " case", Need::kRequired), cs.body, depth + 1);
          e.cases.push_back(std::move(cs));
        }
        body(listOf(n, "default", what, Need::kOptional), e.elseBody, depth + 1);
        break;
      }
      case Kind::kParallelFor: {
        YAML::Node its = n["iterators"], lc = n["loopCounter"];
        if (its && lc) fail(key, what + ": iterators and loopCounter exclude each other");
        if (its) {
          if (!its.IsSequence() || its.size() == 0) fail(its, what + ": iterators is a non-empty list");
          for (const auto& it : its) {
            if (!it.IsScalar()) fail(it, what + ": an iterator is a dataIn's name, a count or a reference");
            bool isIn = false;
            for (const auto& d : e.dataIns) isIn = isIn || d.name == it.Scalar();
            if (isIn) {
              e.iterators.push_back(it.Scalar());
            } else if (its.size() == 1) {
              e.count = operand(it, markOf(it), what);
            } else {
              fail(it, fmt::format("{}: iterator \"{}\" is not one of its dataIns", what, it.Scalar()));
            }
          }
        } else if (lc) {
          if (!lc.IsMap()) fail(lc, what + ": loopCounter is a map of from, to and step");
          checkKeys(lc, what + " loopCounter", {"name", "type", "from", "to", "step"});
          if (!lc["to"]) fail(lc, what + ": loopCounter needs \"to\"");
          e.counterName = scalar(lc, "name", what, Need::kOptional);
          e.from = lc["from"] ? operand(lc["from"], markOf(lc), what) : Operand{std::nullopt, 0};
          e.to = operand(lc["to"], markOf(lc), what);
          e.step = lc["step"] ? operand(lc["step"], markOf(lc), what) : Operand{std::nullopt, 1};
        } else {
          fail(key, what + ": needs iterators or loopCounter");
        }
        body(listOf(n, "loopBody", what, Need::kRequired), e.body, depth + 1);
        break;
      }
      case Kind::kWhile:
        condition(n["condition"], e);
        loopValues(n["dataLoops"], e, what);
        body(listOf(n, "loopBody", what, Need::kRequired), e.body, depth + 1);
        break;
    }
    return e;
  }

  // A while's loop-carried values: 1.0 dataLoops, and every dataIn with a dataOut of the
  // same name (1.1).
  void loopValues(const YAML::Node& dataLoops, Element& e, const std::string& what) {
    if (dataLoops && !dataLoops.IsNull()) {
      if (!dataLoops.IsSequence()) fail(dataLoops, what + ": dataLoops must be a list");
      for (const auto& d : dataLoops) {
        if (!d.IsMap()) fail(d, what + " dataLoop: must be a map");
        checkKeys(d, what + " dataLoop", {"name", "type", "initSource", "loopSource", "value"});
        LoopValue lv;
        lv.name = scalar(d, "name", what + " dataLoop");
        lv.initial.name = lv.name;
        lv.initial.mark = markOf(d);
        lv.initial.type = scalar(d, "type", what + " dataLoop", Need::kOptional);
        if (YAML::Node s = d["initSource"]; s && s.IsScalar() && isReference(s.Scalar())) {
          lv.initial.source = unresolved(s);
        } else if (d["value"]) {
          lv.initial.value = coerce(toJson(d["value"]), lv.initial.type);
        } else {
          fail(d, fmt::format("{} dataLoop \"{}\": needs initSource or value", what, lv.name));
        }
        YAML::Node ls = d["loopSource"];
        if (!ls || !ls.IsScalar() || !isReference(ls.Scalar())) {
          fail(d, fmt::format("{} dataLoop \"{}\": loopSource must be a reference", what, lv.name));
        }
        lv.next = unresolved(ls);
        e.loopValues.push_back(std::move(lv));
      }
    }
  }

  // Names, parents and loops; 1.1 loop-carried values, which need dataIns and dataOuts.
  void index(std::vector<Element>& list, const Element* parent, const Element* loop) {
    for (Element& e : list) {
      e.parent = parent;
      e.loop = loop;
      if (e.name == wf_->name || !byName_.emplace(e.name, &e).second) {
        fail(e.mark, fmt::format("the name \"{}\" is used twice", e.name));
      }
      if (e.kind == Kind::kFunction) wf_->functions.push_back(&e);
      std::set<std::string> ports;
      for (const auto& d : e.dataIns) {
        if (!ports.insert(d.name).second) fail(d.mark, fmt::format("{} \"{}\": dataIn \"{}\" twice", kindName(e.kind), e.name, d.name));
      }
      // A compound other than a loop keeps its inputs and outputs in one scope: their
      // names must differ (a loop's inputs live in its iterations).
      bool sharedScope = e.kind != Kind::kFunction && e.kind != Kind::kWhile && e.kind != Kind::kParallelFor;
      std::set<std::string> outs;
      for (const auto& d : e.dataOuts) {
        if (!outs.insert(d.name).second) fail(d.mark, fmt::format("{} \"{}\": dataOut \"{}\" twice", kindName(e.kind), e.name, d.name));
        if (sharedScope && ports.count(d.name)) {
          fail(d.mark, fmt::format("{} \"{}\": dataIn and dataOut \"{}\" share a name", kindName(e.kind), e.name, d.name));
        }
        if (d.sources.size() > 1 && e.kind != Kind::kIf && e.kind != Kind::kSwitch) {
          fail(d.mark, fmt::format("{} \"{}\": dataOut \"{}\": alternatives (A/x,B/y) are for if and switch", kindName(e.kind), e.name, d.name));
        }
      }
      if (e.kind == Kind::kWhile) {
        for (const auto& in : e.dataIns) {
          for (const auto& out : e.dataOuts) {
            if (out.name != in.name) continue;
            if (out.sources.size() != 1) fail(out.mark, fmt::format("while \"{}\": the loop value \"{}\" has one source", e.name, out.name));
            e.loopValues.push_back(LoopValue{in.name, in, out.sources.front()});
          }
        }
      }
      const Element* inner = (e.kind == Kind::kParallelFor || e.kind == Kind::kWhile) ? &e : loop;
      index(e.body, &e, inner);
      index(e.elseBody, &e, inner);
      for (auto& c : e.cases) index(c.body, &e, inner);
    }
  }

  static bool insideOf(const Element* e, const Element* ancestor) {
    for (; e; e = e->parent) {
      if (e == ancestor) return true;
    }
    return false;
  }

  static bool opaque(const Element* e) {
    return e->kind == Kind::kIf || e->kind == Kind::kSwitch || e->kind == Kind::kParallelFor ||
           e->kind == Kind::kWhile;
  }

  // Resolves `r`, read from inside `context` (null: the top level). Records the
  // dependency of `reader` (start of the element that needs the value) for the cycle check.
  void resolve(Ref& r, const Element* context, int reader = -1) {
    size_t slash = r.text.find('/');
    std::string producer = r.text.substr(0, slash), port = r.text.substr(slash + 1);
    if (port.find('/') != std::string::npos) {
      fail(r.mark, fmt::format("\"{}\": a reference is Producer/port (no paths inside values)", r.text));
    }
    if (producer == wf_->name) {
      bool found = false;
      for (const auto& d : wf_->dataIns) found = found || d.name == port;
      if (!found) fail(r.mark, fmt::format("\"{}\": the workflow has no dataIn \"{}\"", r.text, port));
      return;
    }
    auto it = byName_.find(producer);
    if (it == byName_.end()) fail(r.mark, fmt::format("\"{}\": no function or compound is named \"{}\"", r.text, producer));
    const Element* p = it->second;
    r.producer = p;
    if (context && insideOf(context, p)) {
      // Read inside p: one of its inputs.
      bool found = false;
      for (const auto& d : p->dataIns) found = found || d.name == port;
      for (const auto& lv : p->loopValues) found = found || lv.name == port;
      if (p->kind == Kind::kWhile) found = found || port == "counter";
      if (p->kind == Kind::kParallelFor && !p->counterName.empty()) found = found || port == p->counterName;
      if (p->kind == Kind::kFunction) fail(r.mark, fmt::format("\"{}\": a function cannot read its own data", r.text));
      if (!found) fail(r.mark, fmt::format("\"{}\": {} \"{}\" has no dataIn \"{}\"", r.text, kindName(p->kind), p->name, port));
      r.alias = true;
      r.loop = (p->kind == Kind::kParallelFor || p->kind == Kind::kWhile) ? p : p->loop;
      // A compound reading its own inputs (its condition) waits for nothing more.
      if (reader >= 0 && reader != startOf(p)) edges_[reader].push_back(startOf(p));
      return;
    }
    bool found = false;
    for (const auto& d : p->dataOuts) found = found || d.name == port;
    if (!found) fail(r.mark, fmt::format("\"{}\": {} \"{}\" has no dataOut \"{}\"", r.text, kindName(p->kind), p->name, port));
    // Outputs of elements inside an if, switch or loop are read from outside only through
    // that compound's dataOuts.
    for (const Element* owner = p->parent; owner; owner = owner->parent) {
      if (!opaque(owner)) continue;
      if (!context || !insideOf(context, owner)) {
        fail(r.mark, fmt::format("\"{}\": \"{}\" is inside {} \"{}\"; read that compound's dataOuts instead",
                                 r.text, p->name, kindName(owner->kind), owner->name));
      }
      break;
    }
    r.loop = p->loop;
    if (reader >= 0) edges_[reader].push_back(doneOf(p));
  }

  void resolve(Operand& o, const Element* context, int reader) {
    if (o.ref) resolve(*o.ref, context, reader);
  }

  int startOf(const Element* e) { return 2 * ids_.at(e); }
  int doneOf(const Element* e) { return 2 * ids_.at(e) + 1; }

  void number(std::vector<Element>& list) {
    for (Element& e : list) {
      ids_[&e] = static_cast<int>(order_.size());
      order_.push_back(&e);
      number(e.body);
      number(e.elseBody);
      for (auto& c : e.cases) number(c.body);
    }
  }

  void link(std::vector<Element>& top) {
    number(top);
    edges_.assign(2 * order_.size(), {});
    for (const Element* ce : order_) {
      Element& e = const_cast<Element&>(*ce);
      int start = startOf(&e), done = doneOf(&e);
      edges_[done].push_back(start);
      if (e.parent) edges_[start].push_back(startOf(e.parent));
      // Inputs: a function reads them as itself; a compound from outside.
      const Element* outside = e.kind == Kind::kFunction ? &e : e.parent;
      for (auto& d : e.dataIns) {
        if (d.source) resolve(*d.source, outside, start);
      }
      if (e.dataEval && e.dataEval->source) resolve(*e.dataEval->source, &e, start);
      for (auto& c : e.condition) {
        // A while's condition is read after each iteration, in the iteration.
        int reader = e.kind == Kind::kWhile ? -1 : start;
        resolve(c.data1, &e, reader);
        resolve(c.data2, &e, reader);
      }
      if (e.count) resolve(*e.count, e.parent, start);
      for (auto* o : {&e.from, &e.to, &e.step}) {
        if (*o) resolve(**o, e.parent, start);
      }
      for (auto& lv : e.loopValues) {
        bool fromDataIns = false;
        for (const auto& d : e.dataIns) {
          if (d.name != lv.name) continue;
          fromDataIns = true;
          lv.initial = d;  // a 1.1 loop value: its dataIn, resolved above
        }
        if (!fromDataIns && lv.initial.source) resolve(*lv.initial.source, e.parent, start);
        resolve(lv.next, &e, -1);
      }
      for (auto& d : e.dataOuts) {
        for (auto& r : d.sources) resolve(r, &e, -1);
        if (e.kind != Kind::kFunction) {
          // The compound is done when its outputs are (a loop's: after its iterations).
          for (auto& r : d.sources) {
            if (r.producer && !r.alias && insideOf(r.producer, &e)) edges_[done].push_back(doneOf(r.producer));
          }
        }
      }
    }
  }

  void checkCycles() {
    // Iterative depth-first search over start/done nodes: 0 new, 1 on the path, 2 done.
    std::vector<uint8_t> state(edges_.size(), 0);
    std::vector<std::pair<int, size_t>> stack;
    std::vector<int> path;
    for (int root = 0; root < static_cast<int>(edges_.size()); ++root) {
      if (state[root]) continue;
      stack.push_back({root, 0});
      state[root] = 1;
      while (!stack.empty()) {
        auto& [node, next] = stack.back();
        if (next < edges_[node].size()) {
          int to = edges_[node][next++];
          if (state[to] == 1) {
            std::string names;
            const Element* last = nullptr;
            bool on = false;
            for (const auto& entry : stack) {
              on = on || entry.first == to;
              const Element* el = order_[entry.first / 2];
              if (!on || el == last) continue;
              names += (names.empty() ? "" : " -> ") + el->name;
              last = el;
            }
            fail(order_[to / 2]->mark, fmt::format("a cycle of data dependencies: {} -> {}", names, order_[to / 2]->name));
          }
          if (state[to] == 0) {
            state[to] = 1;
            stack.push_back({to, 0});
          }
        } else {
          state[node] = 2;
          stack.pop_back();
        }
      }
    }
  }

  ParseLimits limits_;
  Workflow* wf_ = nullptr;
  size_t elements_ = 0;
  std::unordered_map<std::string, const Element*> byName_;
  std::unordered_map<const Element*, int> ids_;
  std::vector<const Element*> order_;
  std::vector<std::vector<int>> edges_;  // node -> nodes it waits for
};

}  // namespace

Result<std::unique_ptr<Workflow>> parseAfcl(std::string_view yaml, ParseLimits limits) {
  try {
    return Parser(limits).parse(yaml);
  } catch (const AfclError& e) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("line {}, column {}: {}", e.mark.line, e.mark.column, e.message));
  } catch (const YAML::Exception& e) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("line {}, column {}: malformed YAML: {}", e.mark.line + 1,
                             e.mark.column + 1, e.msg));
  }
}

namespace {

// The function elements whose outputs a reference reads (compounds followed to the
// functions inside them; `depth` bounds the walk).
void producersOf(const Ref& ref, int depth, std::vector<const Element*>& out) {
  const Element* p = ref.producer;
  if (!p || depth > 64) return;
  if (p->kind == Kind::kFunction && !ref.alias) {
    if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
    return;
  }
  if (ref.alias) {
    // One of the compound's (or the function's) own inputs: what feeds them.
    for (const auto& in : p->dataIns) {
      if (in.source) producersOf(*in.source, depth + 1, out);
    }
    return;
  }
  // The compound's output the reference names ("Producer/port"), and what feeds it.
  std::string_view port = ref.text;
  port.remove_prefix(std::min(port.size(), port.find('/') + 1));
  for (const auto& o : p->dataOuts) {
    if (o.name != port) continue;
    for (const auto& src : o.sources) producersOf(src, depth + 1, out);
  }
}

}  // namespace

std::vector<TaskEdge> taskEdges(const Workflow& wf) {
  std::vector<TaskEdge> edges;
  for (const Element* f : wf.functions) {
    std::vector<const Element*> from;
    for (const auto& in : f->dataIns) {
      if (in.source) producersOf(*in.source, 0, from);
    }
    for (const Element* p : from) {
      if (p == f) continue;
      bool seen = std::any_of(edges.begin(), edges.end(), [&](const TaskEdge& e) {
        return e.from == p->name && e.to == f->name;
      });
      if (!seen) edges.push_back(TaskEdge{p->name, f->name});
    }
  }
  return edges;
}

}  // namespace tern::workflow
