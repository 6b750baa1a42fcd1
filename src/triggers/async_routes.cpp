// The gateway's async routes: POST /v1/async/NAME enqueues a durable invocation, GET
// /v1/invocations/ID reads its record (docs/http-api.md). Both run on the serving thread:
// the enqueue answers from the queue's dispatcher thread once the job is committed, and a
// record read uses the queue's own read connection.

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "async/async_queue.h"
#include "async/job_json.h"
#include "store/registry.h"
#include "triggers/http_gateway.h"
#include "util/names.h"

namespace tern::triggers {

namespace {

using json = nlohmann::json;

constexpr std::string_view kAsyncPrefix = "/v1/async/";
constexpr std::string_view kInvocationsPrefix = "/v1/invocations/";

http::Response jsonBody(int status, std::string body) {
  http::Response r;
  r.status = status;
  r.contentType = "application/json";
  r.body = std::move(body) + "\n";
  return r;
}

Error invalid(std::string message) { return Error(ErrorCode::kInvalidArgument, std::move(message)); }

// The one value of an optional query parameter; an error when it is given twice.
Result<std::string> singleParam(std::string_view query, const char* key) {
  auto values = http::queryValues(query, key);
  if (values.size() > 1) return invalid(fmt::format("{} may be given once", key));
  return values.empty() ? std::string() : std::move(values[0]);
}

// Job ids are hex; anything else cannot name a job.
bool isJobId(std::string_view id) {
  return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

}  // namespace

void HttpGateway::asyncRoute(http::Request&& req, http::Respond respond, const Caller& caller) {
  auto fail = [&respond](const Error& e) { respond(errorResponse(e)); };
  async::AsyncQueue* queue = deps_.asyncQueue;
  if (queue == nullptr) {
    return fail(Error(ErrorCode::kUnavailable, "async invocations are not enabled on this node"));
  }
  std::string_view path = req.path;
  if (path.starts_with(kInvocationsPrefix)) {
    if (req.method != "GET") {
      return fail(invalid(fmt::format("{} is not allowed on {}", req.method, req.path)));
    }
    std::string id(path.substr(kInvocationsPrefix.size()));
    if (!isJobId(id)) {
      return fail(Error(ErrorCode::kNotFound, fmt::format("no invocation \"{}\"",
                                                          id.substr(0, 64))));
    }
    auto job = queue->get(id);
    if (!job) return fail(job.error());
    if (!*job) return fail(Error(ErrorCode::kNotFound, fmt::format("no invocation \"{}\"", id)));
    // read sees every invocation; invoke:FN only FN's (access.h, Need::kInvocationRecord).
    if (!grants(caller.scopes, Access{Need::kRead, ""}) && !grantsInvoke(caller.scopes, (*job)->function)) {
      std::string scope = fmt::format("read or invoke:{}", (*job)->function);
      return respond(refusalResponse(Refusal{
          Error(ErrorCode::kForbidden,
                fmt::format("the token \"{}\" lacks the scope this request needs: {}", caller.name, scope)),
          "scope", scope, 0}));
    }
    return respond(jsonBody(200, async::jobJson(**job)));
  }

  if (req.method != "POST") {
    return fail(invalid(fmt::format("{} is not allowed on {}", req.method, req.path)));
  }
  async::JobRequest job;
  job.function = std::string(path.substr(kAsyncPrefix.size()));
  if (!isFunctionName(job.function)) {
    return fail(invalid(fmt::format("invalid function name \"{}\": use 1-63 characters a-z, "
                                    "0-9 and '-', starting with a letter or digit",
                                    job.function.substr(0, 64))));
  }
  auto callback = singleParam(req.query, "callback_url");
  if (!callback) return fail(callback.error());
  job.callbackUrl = std::move(*callback);
  auto key = singleParam(req.query, "idempotency_key");
  if (!key) return fail(key.error());
  job.idempotencyKey = std::move(*key);
  if (const std::string* header = req.header("Idempotency-Key")) {
    if (!job.idempotencyKey.empty() && job.idempotencyKey != *header) {
      return fail(invalid("the Idempotency-Key header and idempotency_key differ"));
    }
    job.idempotencyKey = *header;
    if (job.idempotencyKey.empty()) return fail(invalid("the Idempotency-Key header is empty"));
  }
  // The guest sees a CGI-like request, as through /fn, minus what belongs to the caller.
  job.env.push_back("REQUEST_METHOD=POST");
  job.env.push_back("SCRIPT_NAME=/fn/" + job.function);
  job.env.push_back("CONTENT_LENGTH=" + std::to_string(req.body.size()));
  if (const std::string* type = req.header("Content-Type")) {
    job.env.push_back("CONTENT_TYPE=" + *type);
  }
  job.body = std::move(req.body);
  queue->enqueue(std::move(job), [respond](Result<async::Accepted> accepted) {
    if (!accepted) return respond(errorResponse(accepted.error()));
    json body{{"id", accepted->id}, {"duplicate", accepted->duplicate}};
    http::Response r = jsonBody(accepted->duplicate ? 200 : 202, body.dump());
    r.headers.push_back({"Location", std::string(kInvocationsPrefix) + accepted->id});
    respond(std::move(r));
  });
}

}  // namespace tern::triggers
