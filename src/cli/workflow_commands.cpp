#include "cli/workflow_commands.h"

#include "cli/output_format.h"
#include "workflow/costless.h"

#include <fmt/format.h>

#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>

namespace tern::cli {

using json = nlohmann::json;

namespace {

Result<std::string> readText(const std::string& path, std::istream* in = nullptr) {
  if (path == "-" && in) return std::string(std::istreambuf_iterator<char>(*in), {});
  std::ifstream f(path, std::ios::binary);
  if (!f) return Error(ErrorCode::kIo, fmt::format("cannot read {}", path));
  return std::string(std::istreambuf_iterator<char>(f), {});
}

Result<ApiReply> call(const NodeOptions& node, const std::string& method, const std::string& target,
                      std::string body = {}) {
  auto client = NodeClient::open(node, NodeClient::TokenUse::kRequired);
  if (!client.ok()) return client.error();
  return client->call(method, target, std::move(body));
}

int print(const NodeOptions& node, const ApiReply& reply, std::ostream& out,
          const std::function<std::string(const json&)>& human) {
  if (node.format == OutputFormat::kJson) {
    out << reply.raw;
    if (!reply.raw.empty() && reply.raw.back() != '\n') out << '\n';
  } else {
    out << human(reply.doc);
  }
  return 0;
}

// "node:cloud-1 cloud#0": where a task ran, and in a planned workflow its tier and fused
// group.
std::string whereRan(const json& task) {
  std::string where = task.value("resource", "");
  if (task.contains("place")) where += fmt::format(" {}", task.value("place", ""));
  if (task.contains("group")) where += fmt::format("#{}", task.value("group", 0));
  return where;
}

std::string ms(int64_t us) { return fmt::format("{:.1f}ms", static_cast<double>(us) / 1000.0); }

}  // namespace

Result<std::string> workflowDeployBody(const WorkflowDeployOptions& o) {
  auto afcl = readText(o.file);
  if (!afcl.ok()) return afcl.error();
  json body{{"afcl", *afcl}};
  if (!o.types.empty()) {
    auto types = readText(o.types);
    if (!types.ok()) return types.error();
    body["types"] = *types;
  }
  json options = json::object();
  if (!o.policy.empty()) options["policy"] = o.policy;
  if (o.localCapacity) options["local_capacity"] = *o.localCapacity;
  if (o.attempts) options["attempts"] = *o.attempts;
  if (!o.plan.empty()) {
    auto text = readText(o.plan);
    if (!text.ok()) return text.error();
    json plan = json::parse(*text, nullptr, false);
    if (plan.is_discarded() || !plan.is_object()) {
      return Error(ErrorCode::kInvalidArgument,
                   fmt::format("{}: not a plan (a JSON object, as tern plan workflow --json prints)", o.plan));
    }
    options["plan"] = std::move(plan);
  }
  if (!options.empty()) body["options"] = options;
  return body.dump();
}

int workflowDeployCommand(const NodeOptions& node, const WorkflowDeployOptions& o,
                          std::ostream& out, std::ostream& err) {
  auto body = workflowDeployBody(o);
  if (!body.ok()) return reportFailure(err, body.error());
  auto reply = call(node, "PUT", "/v1/workflows/" + percentEncode(o.name), std::move(*body));
  if (!reply.ok()) return reportFailure(err, reply.error());
  return print(node, *reply, out, [](const json& d) {
    return fmt::format("deployed workflow {} ({} task(s), policy {})\n", d.value("name", ""),
                       d.value("functions", json::array()).size(),
                       d.value("options", json::object()).value("policy", ""));
  });
}

int workflowRunCommand(const NodeOptions& node, const WorkflowRunOptions& o, std::istream& in,
                       std::ostream& out, std::ostream& err) {
  std::string input = "{}";
  if (o.data) input = *o.data;
  if (o.input) {
    auto text = readText(*o.input, &in);
    if (!text.ok()) return reportFailure(err, text.error());
    input = std::move(*text);
  }
  // A node with --invoke-auth required wants a token that may run the workflow.
  auto client = NodeClient::open(node, NodeClient::TokenUse::kIfAvailable);
  if (!client.ok()) return reportFailure(err, client.error());
  HttpRequest req;
  req.method = "POST";
  req.target = "/wf/" + percentEncode(o.name);
  req.headers.push_back({"Content-Type", "application/json"});
  client->authorize(req);
  req.body = std::move(input);
  // A run takes as long as its tasks; the node bounds each of them.
  auto r = client->send(req, std::chrono::hours(1));
  if (!r.ok()) return reportFailure(err, r.error());
  for (const auto& h : r->headers) {
    if (h.name == "X-Tern-Run-Id") err << "run " << h.value << "\n";
  }
  if (r->status != 200) return reportFailure(err, errorFromResponse(*r, "/wf/" + o.name));
  out << r->body;
  if (!r->body.empty() && r->body.back() != '\n') out << '\n';
  return 0;
}

int workflowListCommand(const NodeOptions& node, std::ostream& out, std::ostream& err) {
  auto reply = call(node, "GET", "/v1/workflows");
  if (!reply.ok()) return reportFailure(err, reply.error());
  return print(node, *reply, out, [](const json& d) {
    std::string s = fmt::format("{:<24} {:>6}  {}\n", "NAME", "TASKS", "POLICY");
    for (const auto& w : d.value("workflows", json::array())) {
      s += fmt::format("{:<24} {:>6}  {}\n", w.value("name", ""), w.value("tasks", 0),
                       w.value("options", json::object()).value("policy", ""));
    }
    return s;
  });
}

int workflowRemoveCommand(const NodeOptions& node, const std::string& name, std::ostream& out,
                          std::ostream& err) {
  auto reply = call(node, "DELETE", "/v1/workflows/" + percentEncode(name));
  if (!reply.ok()) return reportFailure(err, reply.error());
  return print(node, *reply, out, [&](const json&) { return fmt::format("removed workflow {}\n", name); });
}

int workflowRunsCommand(const NodeOptions& node, const std::string& name, std::ostream& out,
                        std::ostream& err) {
  auto reply = call(node, "GET", "/v1/workflows/" + percentEncode(name) + "/runs");
  if (!reply.ok()) return reportFailure(err, reply.error());
  return print(node, *reply, out, [](const json& d) {
    std::string s = fmt::format("{:<24} {:<10} {:>10}  {}\n", "RUN", "STATUS", "DURATION", "ERROR");
    for (const auto& r : d.value("runs", json::array())) {
      int64_t started = r.value("started_ms", int64_t{0}), finished = r.value("finished_ms", int64_t{0});
      s += fmt::format("{:<24} {:<10} {:>10}  {}\n", r.value("id", ""), r.value("status", ""),
                       finished ? fmt::format("{}ms", finished - started) : "-", r.value("error", ""));
    }
    return s;
  });
}

std::string formatTrace(const json& t) {
  std::string s = fmt::format("run {} of {}: {}\n", t.value("id", ""), t.value("workflow", ""),
                              t.value("status", ""));
  if (t.contains("error")) s += fmt::format("error: {}\n", t.value("error", ""));
  const json tasks = t.value("tasks", json::array());
  int64_t first = 0;
  for (const auto& k : tasks) {
    int64_t st = k.value("start_us", int64_t{0});
    if (first == 0 || st < first) first = st;
  }
  s += fmt::format("{:<12} {:<24} {:<26} {:>10} {:>9} {:>10} {:>4}  {}\n", "TASK", "ITERATION",
                   "WHERE", "START", "QUEUE", "DURATION", "TRY", "OUTCOME");
  for (const auto& k : tasks) {
    s += fmt::format("{:<12} {:<24} {:<26} {:>10} {:>9} {:>10} {:>4}  {}{}\n", k.value("task", ""),
                     k.value("iteration", ""), whereRan(k),
                     fmt::format("+{}", ms(k.value("start_us", int64_t{0}) - first)), ms(k.value("queue_us", int64_t{0})),
                     ms(k.value("duration_us", int64_t{0})), k.value("attempts", 0),
                     k.value("outcome", ""), k.contains("error") ? ": " + k.value("error", "") : "");
  }
  return s;
}

int profileWorkflowCommand(const NodeOptions& node, const ProfileOptions& o, std::ostream& out,
                           std::ostream& err) {
  auto reply = call(node, "GET", fmt::format("/v1/workflows/{}/profile?limit={}", percentEncode(o.name), o.runs));
  if (!reply.ok()) return reportFailure(err, reply.error());
  json profile = reply->doc;
  if (!o.prices.empty()) {
    auto text = readText(o.prices);
    if (!text.ok()) return reportFailure(err, text.error());
    json prices = json::parse(*text, nullptr, false);
    if (prices.is_discarded() || !prices.is_object()) {
      return reportFailure(err, Error(ErrorCode::kInvalidArgument, o.prices + ": prices must be a JSON object"));
    }
    profile["prices"] = prices;
    // The same checks `tern plan workflow` makes, so that a bad price file writes nothing.
    if (auto ok = workflow::parseProfile(profile.dump()); !ok.ok()) {
      return reportFailure(err, Error(ErrorCode::kInvalidArgument, o.prices + ": " + ok.error().message()));
    }
  }
  out << profile.dump(2) << "\n";
  return 0;
}

int workflowTraceCommand(const NodeOptions& node, const std::string& runId, std::ostream& out,
                         std::ostream& err) {
  auto reply = call(node, "GET", "/v1/runs/" + percentEncode(runId));
  if (!reply.ok()) return reportFailure(err, reply.error());
  return print(node, *reply, out, formatTrace);
}

}  // namespace tern::cli
