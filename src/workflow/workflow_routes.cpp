#include "workflow/workflow_routes.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "http/request_rules.h"
#include "triggers/http_gateway.h"

namespace tern::workflow {

using json = nlohmann::json;

namespace {

http::Response jsonAnswer(int status, const json& body) {
  http::Response r;
  r.status = status;
  r.contentType = "application/json";
  // Outputs and errors may carry any bytes a function printed: invalid UTF-8 is replaced.
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  r.body += '\n';
  return r;
}

http::Response fromResult(const Result<json>& r, int status = 200) {
  return r.ok() ? jsonAnswer(status, *r) : triggers::errorResponse(r.error());
}

// The "limit" query parameter (1..1000), default 20; no other parameter.
Result<size_t> limitParam(std::string_view query) {
  static constexpr std::string_view kKnown[] = {"limit"};
  if (auto ok = http::checkParamNames(query, kKnown); !ok.ok()) return ok.error();
  auto limit = http::uintParam(query, "limit", 20, 1, 1000);
  if (!limit.ok()) return limit.error();
  return size_t{*limit};
}

http::Response deploy(WorkflowService& service, const std::string& name, const std::string& body) {
  json doc = json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return triggers::errorResponse(Error(ErrorCode::kInvalidArgument,
                                         "the body must be a JSON object {\"afcl\", \"types\", \"options\"}"));
  }
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    if (it.key() != "afcl" && it.key() != "types" && it.key() != "options") {
      return triggers::errorResponse(Error(ErrorCode::kInvalidArgument,
                                           fmt::format("unknown field \"{}\" (known: afcl, types, options)", it.key())));
    }
  }
  if (!doc.contains("afcl") || !doc["afcl"].is_string()) {
    return triggers::errorResponse(Error(ErrorCode::kInvalidArgument, "\"afcl\" (the workflow's YAML text) is required"));
  }
  std::string types;
  if (doc.contains("types") && !doc["types"].is_null()) {
    types = doc["types"].is_string() ? doc["types"].get<std::string>() : doc["types"].dump();
  }
  auto options = parseOptions(doc.value("options", json()));
  if (!options.ok()) return triggers::errorResponse(options.error());
  return fromResult(service.deploy(name, doc["afcl"].get<std::string>(), types, *options), 201);
}

}  // namespace

void handleWorkflowRequest(WorkflowService& service, http::Request&& req, http::Respond respond) {
  const std::string& path = req.path;
  const std::string& method = req.method;
  auto methodNotAllowed = [&](const char* allowed) {
    http::Response r = triggers::errorResponse(
        Error(ErrorCode::kInvalidArgument, fmt::format("{} {}: use {}", method, path, allowed)));
    r.status = 405;
    r.headers.push_back({"Allow", allowed});
    return respond(std::move(r));
  };
  auto runAnswer = [respond](const std::string& runId, RunOutcome o) {
    http::Response r = o.error ? triggers::errorResponse(*o.error) : jsonAnswer(200, o.output);
    if (!runId.empty()) r.headers.push_back({"X-Tern-Run-Id", runId});
    respond(std::move(r));
  };
  if (path.starts_with("/wf/")) {
    std::string name = path.substr(4);
    if (method != "POST") return methodNotAllowed("POST");
    service.start(name, req.body.empty() ? "{}" : req.body, WorkflowService::Answer::kAtEnd, runAnswer);
    return;
  }
  if (path.starts_with("/v1/async/wf/")) {
    if (method != "POST") return methodNotAllowed("POST");
    std::string name = path.substr(13);
    auto started = std::make_shared<std::optional<Error>>();
    std::string id = service.start(name, req.body.empty() ? "{}" : req.body,
                                   WorkflowService::Answer::kAtStart, [started](const std::string& runId, RunOutcome o) {
                                     if (runId.empty() && o.error) *started = o.error;
                                   });
    if (id.empty()) {
      return respond(triggers::errorResponse(started->value_or(Error(ErrorCode::kInternal, "the run did not start"))));
    }
    http::Response r = jsonAnswer(202, json{{"run_id", id}, {"status", "running"}});
    r.headers.push_back({"Location", "/v1/runs/" + id});
    r.headers.push_back({"X-Tern-Run-Id", id});
    return respond(std::move(r));
  }
  if (path.starts_with("/v1/runs/")) {
    if (method != "GET") return methodNotAllowed("GET");
    return respond(fromResult(service.trace(path.substr(9))));
  }
  if (path == "/v1/workflows") {
    if (method != "GET") return methodNotAllowed("GET");
    auto all = service.list();
    return respond(all.ok() ? jsonAnswer(200, json{{"workflows", *all}}) : triggers::errorResponse(all.error()));
  }
  std::string rest = path.substr(14);  // after "/v1/workflows/"
  size_t slash = rest.find('/');
  std::string name = rest.substr(0, slash);
  std::string tail = slash == std::string::npos ? "" : rest.substr(slash);
  if (tail == "/profile") {
    if (method != "GET") return methodNotAllowed("GET");
    auto limit = limitParam(req.query);
    if (!limit.ok()) return respond(triggers::errorResponse(limit.error()));
    return respond(fromResult(service.profile(name, *limit)));
  }
  if (tail == "/runs") {
    if (method != "GET") return methodNotAllowed("GET");
    auto limit = limitParam(req.query);
    if (!limit.ok()) return respond(triggers::errorResponse(limit.error()));
    auto runs = service.runs(name, *limit);
    return respond(runs.ok() ? jsonAnswer(200, json{{"runs", *runs}}) : triggers::errorResponse(runs.error()));
  }
  if (!tail.empty()) {
    return respond(triggers::errorResponse(Error(ErrorCode::kNotFound, "no route for " + path)));
  }
  if (method == "PUT") return respond(deploy(service, name, req.body));
  if (method == "DELETE") {
    auto removed = service.remove(name);
    return respond(removed.ok() ? jsonAnswer(200, json{{"removed", name}}) : triggers::errorResponse(removed.error()));
  }
  return methodNotAllowed("PUT, DELETE");
}

}  // namespace tern::workflow
