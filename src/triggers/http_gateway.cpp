#include "triggers/http_gateway.h"

#include "http/request_rules.h"
#include "store/kv_store.h"
#include "util/ascii.h"
#include "util/quote.h"
#include "util/device_id.h"
#include "triggers/cgi_response.h"
#include "util/names.h"
#include "util/clock.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <span>
#include <nlohmann/json.hpp>

namespace tern::triggers {

using json = nlohmann::json;

http::Response errorResponse(const Error& e) {
  const auto& kind = errorKind(e.code());
  http::Response r;
  r.status = kind.httpStatus;
  r.contentType = "application/json";
  r.body = json{{"error", {{"code", kind.name}, {"message", e.message()}}}}.dump(
               -1, ' ', false, json::error_handler_t::replace) +
           "\n";
  if (e.code() == ErrorCode::kSaturated) r.headers.push_back({"Retry-After", "1"});
  if (e.code() == ErrorCode::kUnauthorized) {
    r.headers.push_back({"WWW-Authenticate", "Bearer realm=\"tern\""});
  }
  return r;
}

http::Response refusalResponse(const Refusal& refusal) {
  const auto& kind = errorKind(refusal.error.code());
  json error{{"code", kind.name}, {"message", refusal.error.message()}};
  if (!refusal.reason.empty()) error["reason"] = refusal.reason;
  if (!refusal.scopeNeeded.empty()) error["scope_needed"] = refusal.scopeNeeded;
  http::Response r = jsonResponse(kind.httpStatus, json{{"error", error}});
  if (refusal.error.code() == ErrorCode::kUnauthorized) {
    // RFC 6750 3: a token that was sent and refused is an invalid_token.
    r.headers.push_back({"WWW-Authenticate", refusal.reason == "missing"
                                                 ? std::string("Bearer realm=\"tern\"")
                                                 : std::string("Bearer realm=\"tern\", error=\"invalid_token\"")});
  }
  if (refusal.error.code() == ErrorCode::kForbidden) {
    r.headers.push_back({"WWW-Authenticate", "Bearer realm=\"tern\", error=\"insufficient_scope\""});
  }
  if (refusal.error.code() == ErrorCode::kRateLimited || refusal.error.code() == ErrorCode::kSaturated) {
    r.headers.push_back({"Retry-After", std::to_string(std::max<int64_t>(1, refusal.retryAfterSeconds))});
  }
  return r;
}

http::Response jsonResponse(int status, const nlohmann::json& body) {
  http::Response r;
  r.status = status;
  r.contentType = "application/json";
  // Guest output (log lines) may be any bytes: invalid UTF-8 is replaced, never thrown on.
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  return r;
}

http::Response methodNotAllowed(std::string_view allowed) {
  auto r = errorResponse(Error(ErrorCode::kInvalidArgument, fmt::format("this route takes {}", allowed)));
  r.status = 405;
  r.headers.push_back({"Allow", std::string(allowed)});
  return r;
}

json recordJson(const exec::InvocationRecord& r) {
  return json{{"id", r.id},
              {"version", r.version},
              {"start_ms", r.startMs},
              {"duration_us", r.durationUs},
              {"queue_wait_us", r.queueWaitUs},
              {"outcome", r.outcome},
              {"exit_code", r.exitCode},
              {"detail", r.detail}};
}

json logLineJson(const exec::LogLine& l) {
  return json{{"seq", l.seq},
              {"time_ms", l.timeMs},
              {"invocation_id", l.invocationId},
              {"version", l.version},
              {"text", l.text}};
}

json seriesJson(const std::vector<exec::SeriesPoint>& points, size_t slots) {
  json out = json::array();
  for (const auto& p : points) {
    double seconds = static_cast<double>(p.spanMs) / 1000.0;
    double slotSeconds = seconds * static_cast<double>(std::max<size_t>(slots, 1));
    out.push_back(json{{"start_ms", p.startMs},
                       {"span_ms", p.spanMs},
                       {"count", p.count},
                       {"errors", p.errors},
                       {"rate", static_cast<double>(p.count) / seconds},
                       {"error_ratio", p.count ? static_cast<double>(p.errors) / static_cast<double>(p.count) : 0.0},
                       {"slot_share", std::min(1.0, static_cast<double>(p.busyUs) / 1e6 / slotSeconds)},
                       {"p50_ms", p.p50Us / 1000.0},
                       {"p95_ms", p.p95Us / 1000.0},
                       {"p99_ms", p.p99Us / 1000.0}});
  }
  return out;
}

namespace {

json versionJson(const store::FunctionVersion& v) {
  return json{{"name", v.name},
              {"version", v.version},
              {"module_sha256", v.moduleHash},
              {"module_bytes", v.moduleSize},
              {"memory_mb", v.settings.memoryMb},
              {"timeout_ms", v.settings.timeoutMs},
              {"concurrency", v.settings.concurrency},
              {"env", v.settings.env},
              {"triggers", v.settings.triggers},
              {"reply_topic", v.settings.replyTopic},
              {"allow", v.settings.allow},
              {"slo_ms", v.settings.sloMs},
              {"slo_percentile", v.settings.sloPercentile},
              {"weight", v.settings.weight},
              {"placement",
               {{"sites", v.settings.placement.sites},
                {"tier", v.settings.placement.tier},
                {"labels", v.settings.placement.labels}}},
              {"compile_tier", store::compileTierName(v.settings.compileTier)},
              {"created_at_ms", v.createdAtMs}};
}

// Parses a number query parameter (given at most once); the default if absent. The value's
// range is checked by whoever uses it.
Result<double> numberParam(std::string_view query, const char* key, double fallback) {
  auto values = http::queryValues(query, key);
  if (values.empty()) return fallback;
  if (values.size() > 1) {
    return Error(ErrorCode::kInvalidArgument, fmt::format("{} may be given once", key));
  }
  const std::string& v = values[0];
  double out = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || end != v.data() + v.size() || v.empty()) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("{} must be a number, got \"{}\"", key, v));
  }
  return out;
}

// The scheduler's view of one function (docs/design/scheduler.md).
json scheduleJson(const exec::Executor::FunctionReport& r) {
  json objective = nullptr;
  if (r.objective) {
    objective = json{{"slo_ms", r.objective->sloMs},
                     {"percentile", r.objective->percentile ? json(*r.objective->percentile)
                                                            : json("mean")}};
  }
  json refused = json::object();
  json refusedWindow = json::object();
  for (size_t i = 0; i < exec::kRefusalKinds; ++i) {
    const char* name = exec::refusalName(static_cast<exec::Refusal>(i));
    refused[name] = r.refusedTotal[i];
    refusedWindow[name] = r.window.refusals[i];
  }
  return json{{"objective", objective},
              {"weight", r.weight},
              {"window_seconds", r.window.windowSeconds},
              {"arrival_rate", r.window.ratePerSecond},
              {"service_ms", {{"mean", r.service.meanNs / 1e6},
                              {"p50", r.service.p50Ns / 1e6},
                              {"p95", r.service.p95Ns / 1e6},
                              {"p99", r.service.p99Ns / 1e6},
                              {"samples", r.service.samples}}},
              {"target_slots", r.targetSlots},
              {"allocated_slots", r.allocatedSlots},
              {"used_slots", r.window.slotsUsed},
              {"objective_unreachable", r.unreachable},
              {"running", r.running},
              {"queued", r.queued},
              {"completed", r.window.completions},
              {"attainment", r.objective ? json(r.window.attainment()) : json(nullptr)},
              {"refused_window", refusedWindow},
              {"refused_total", refused}};
}

// The parameters of a deploy (PUT /v1/functions/NAME): those that may repeat, then those
// given at most once (their parsers refuse a repeat).
constexpr std::array<std::string_view, 5> kDeployListParams = {"env", "trigger", "allow", "site",
                                                               "label"};
constexpr std::array<std::string_view, 9> kDeployOneParams = {
    "memory_mb", "timeout_ms", "concurrency", "reply_topic", "slo_ms", "slo_percentile",
    "weight",    "tier",       "compile_tier"};


// What a request header becomes in the function's environment: an HTTP_* variable, but
// for these (RFC 3875 §4.1.2-4.1.3, and the node's own credential).
enum class HeaderUse { kVariable, kContentType, kAuthorization, kDropped };

HeaderUse headerUse(std::string_view name) {
  switch (name.size()) {  // most names match none: one comparison of lengths
    case 12:
      return iequals(name, "Content-Type") ? HeaderUse::kContentType : HeaderUse::kVariable;
    case 13:
      return iequals(name, "Authorization") ? HeaderUse::kAuthorization : HeaderUse::kVariable;
    case 14:
      return iequals(name, "Content-Length") ? HeaderUse::kDropped : HeaderUse::kVariable;
    case 19:
      return iequals(name, "Proxy-Authorization") ? HeaderUse::kDropped : HeaderUse::kVariable;
    default:
      return HeaderUse::kVariable;
  }
}

// The CGI variable name for an HTTP header, into `out`: HTTP_ + upper case, '-' -> '_'.
void cgiHeaderName(std::string_view name, std::string& out) {
  out.resize(5 + name.size());
  char* p = out.data();
  std::memcpy(p, "HTTP_", 5);
  p += 5;
  for (char c : name) *p++ = c == '-' ? '_' : (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c;
}

}  // namespace

HttpGateway::HttpGateway(GatewayDeps deps, GatewayLimits limits)
    : deps_(std::move(deps)),
      limits_(limits),
      started_(std::chrono::steady_clock::now()),
      guestHeadersRefused_(deps_.metrics.counter(
          "tern_guest_headers_refused_total",
          "Header lines of functions' CGI output not sent: framing, hop-by-hop and X-Tern-* "
          "headers, and invalid values",
          {})),
      feedsCut_(deps_.metrics.counter(
          "tern_event_feeds_cut_total",
          "Live event feeds (GET /v1/events) closed because their client did not keep up", {})) {}

size_t HttpGateway::bodyLimit(std::string_view method, std::string_view target) const {
  if (target.starts_with("/fn/") || target.starts_with("/wf/") || target.starts_with("/v1/async/")) {
    return limits_.maxInvokeBody;
  }
  if (method == "PUT" && (target.starts_with("/v1/functions/") || target.starts_with("/v1/devices/"))) {
    return limits_.maxModuleBytes;
  }
  return limits_.maxManagementBody;
}

std::variant<Caller, http::Response> HttpGateway::admit(const http::Request& req) {
  auto route = routeAccess(req.method, req.path);
  // A path with no route, or a method it does not take, is answered only to a caller with
  // a valid token (any scope), so the API's shape is not shown to strangers.
  Access need = route.match == RouteAccess::Match::kRoute ? route.access : Access{Need::kRead, ""};
  const std::string* authorization = req.header("Authorization");
  AuthResult who = route.match == RouteAccess::Match::kRoute
                       ? deps_.auth.authorize(authorization, need)
                       : deps_.auth.identify(authorization);
  if (auto* refusal = std::get_if<Refusal>(&who)) {
    if (refusal->reason.empty()) return errorResponse(refusal->error);  // the store failed
    return refusalResponse(*refusal);
  }
  if (route.match == RouteAccess::Match::kNoRoute) {
    return errorResponse(Error(ErrorCode::kNotFound, "no route for " + req.path));
  }
  if (route.match == RouteAccess::Match::kWrongMethod) {
    auto r = errorResponse(Error(ErrorCode::kInvalidArgument,
                                 fmt::format("{} is not allowed on {}: use {}", req.method, req.path,
                                             route.allowed)));
    r.status = 405;
    r.headers.push_back({"Allow", route.allowed});
    return r;
  }
  return std::get<Caller>(std::move(who));
}

void HttpGateway::handle(http::Request&& req, http::Respond respond) {
  const std::string& path = req.path;
  if (path.starts_with("/fn/")) {
    std::string_view rest = std::string_view(path).substr(4);
    size_t slash = rest.find('/');
    std::string name(rest.substr(0, slash));
    std::string tail = slash == std::string_view::npos ? "" : std::string(rest.substr(slash));
    if (deps_.invokeAuth == InvokeAuth::kRequired) {
      auto who = deps_.auth.authorize(req.header("Authorization"), Access{Need::kInvoke, name});
      if (auto* refusal = std::get_if<Refusal>(&who)) {
        return respond(refusal->reason.empty() ? errorResponse(refusal->error) : refusalResponse(*refusal));
      }
    }
    return invoke(std::move(req), std::move(name), std::move(tail), std::move(respond));
  }
  if (path.starts_with("/wf/") && deps_.workflows) {
    if (deps_.invokeAuth == InvokeAuth::kRequired) {
      auto who = deps_.auth.authorize(req.header("Authorization"), Access{Need::kInvoke, std::string("wf/").append(path, 4)});
      if (auto* refusal = std::get_if<Refusal>(&who)) {
        return respond(refusal->reason.empty() ? errorResponse(refusal->error) : refusalResponse(*refusal));
      }
    }
    return deps_.workflows(std::move(req), std::move(respond));
  }
  if (path == "/healthz") {
    return respond(jsonResponse(200, json{{"status", "ok"}}));
  }
  if (path == "/metrics") {
    http::Response r;
    r.contentType = "text/plain; version=0.0.4; charset=utf-8";
    r.body = deps_.metrics.render();
    if (deps_.extraMetrics) r.body += deps_.extraMetrics();
    return respond(std::move(r));
  }
  if (path == "/ui" || path.starts_with("/ui/")) {
    return respond(consoleAsset(req));
  }
  if (path == "/v1" || path.starts_with("/v1/")) {
    // Every /v1 route is a row of the table in access.h; what matches none goes no further.
    auto admitted = admit(req);
    if (auto* refused = std::get_if<http::Response>(&admitted)) return respond(std::move(*refused));
    Caller caller = std::get<Caller>(std::move(admitted));
    if (deps_.workflows && (path == "/v1/workflows" || path.starts_with("/v1/workflows/") ||
                            path.starts_with("/v1/runs/") || path.starts_with("/v1/async/wf/"))) {
      return deps_.workflows(std::move(req), std::move(respond));
    }
    // Enqueueing waits for a commit, not for a deploy: these routes skip the management thread.
    if (deps_.streams && (path == "/v1/topics" || path.starts_with("/v1/topics/") ||
                          path == "/v1/apps" || path.starts_with("/v1/apps/") ||
                          path == "/v1/streams")) {
      return deps_.streams(std::move(req), std::move(respond));
    }
    if (deps_.providers && (path == "/v1/providers" || path.starts_with("/v1/providers/") ||
                            path == "/v1/routes" || path.starts_with("/v1/routes/"))) {
      return deps_.providers(std::move(req), std::move(respond));
    }
    if (path.starts_with("/v1/async/") || path.starts_with("/v1/invocations/")) {
      return asyncRoute(std::move(req), std::move(respond), caller);
    }
    // Token changes may be JetStream calls in a cluster: off the serving threads too.
    if (path == "/v1/tokens" || path.starts_with("/v1/tokens/")) {
      deps_.managementQueue.post(
          [this, req = std::move(req), respond = std::move(respond)] { respond(tokensRoute(req)); });
      return;
    }
    // Management work (a deploy compiles) runs on its own thread, off the serving threads.
    deps_.managementQueue.post(
        [this, req = std::move(req), respond = std::move(respond)] { respond(management(req)); });
    return;
  }
  respond(errorResponse(Error(ErrorCode::kNotFound, "no route for " + path)));
}

void HttpGateway::invoke(http::Request&& req, std::string name, std::string rest,
                         http::Respond respond) {
  exec::InvokeInput in;
  in.function = std::move(name);
  // One block, sized for the variables below and the function's own that follow them.
  size_t bytes = 256 + req.method.size() + 2 * in.function.size() + rest.size() +
                 req.query.size() + req.remoteAddress.size();
  for (const auto& h : req.headers) bytes += h.name.size() + h.value.size() + 7;
  in.env.reserve(bytes);
  in.env.add("REQUEST_METHOD", req.method);
  std::string variable = "/fn/";  // a scratch buffer, for the header variables below too
  variable += in.function;
  in.env.add("SCRIPT_NAME", variable);
  in.env.add("PATH_INFO", rest);
  in.env.add("QUERY_STRING", req.query);
  in.env.add("SERVER_PROTOCOL=HTTP/1.1");
  in.env.add("REMOTE_ADDR", req.remoteAddress);
  char length[24];
  in.env.add("CONTENT_LENGTH",
             std::string_view(length, std::to_chars(length, length + sizeof length,
                                                    req.body.size()).ptr - length));
  for (const auto& h : req.headers) {
    switch (headerUse(h.name)) {
      case HeaderUse::kContentType:
        in.env.add("CONTENT_TYPE", h.value);
        break;
      case HeaderUse::kAuthorization:
        // A tern token (the caller's credential for the node) never reaches the function.
        if (deps_.auth.isCredential(h.value)) break;
        [[fallthrough]];
      case HeaderUse::kVariable:
        cgiHeaderName(h.name, variable);
        in.env.add(variable, h.value);
        break;
      case HeaderUse::kDropped:
        break;
    }
  }
  // A device's call: its state is the function's namespace for that device, here.
  if (const auto* device = req.header("X-Tern-Device")) {
    if (!isDeviceId(*device)) {
      return respond(errorResponse(Error(
          ErrorCode::kInvalidArgument,
          fmt::format("invalid X-Tern-Device {}: use 8-64 of A-Z, a-z, 0-9, '-' and '_'",
                      quoteUntrusted(*device)))));
    }
    in.device = *device;
  }
  in.body = std::move(req.body);
  std::string here = deps_.clusterNodeId ? deps_.clusterNodeId() : std::string();
  deps_.invoker.invoke(std::move(in), [respond = std::move(respond), here = std::move(here),
                                       &refused = guestHeadersRefused_](exec::InvokeOutput out) {
    http::Response r;
    if (out.error) {
      r = errorResponse(*out.error);
    } else if (out.httpStatus != 0) {
      // A provider's HTTP answer, passed on as it came.
      r.status = out.httpStatus;
      r.contentType = out.contentType.empty() ? "application/octet-stream" : out.contentType;
      r.body = std::move(out.result.stdoutData);
    } else {
      auto cgi = parseCgiResponse(std::move(out.result.stdoutData));
      r = std::move(cgi.response);
      if (!cgi.refusedHeaders.empty()) refused.inc(cgi.refusedHeaders.size());
    }
    r.literalHeaders.reserve(4);
    r.literalHeaders.push_back({"X-Tern-Invocation-Id", std::move(out.invocationId)});
    if (out.version) {
      r.literalHeaders.push_back({"X-Tern-Function-Version", std::to_string(out.version)});
    }
    if (!out.provider.empty()) r.literalHeaders.push_back({"X-Tern-Provider", out.provider});
    // Where it ran, in a cluster: here, or the node the call was forwarded to.
    if (!out.node.empty() || !here.empty()) {
      r.literalHeaders.push_back({"X-Tern-Node", out.node.empty() ? here : out.node});
    }
    respond(std::move(r));
  });
}

nlohmann::json HttpGateway::schedulerJson() const {
  auto ex = deps_.executor.stats();
  json fns = json::object();
  for (const auto& fn : deps_.table.all()) {
    fns[fn->name] = scheduleJson(deps_.executor.report(fn->admission));
  }
  return json{{"policy", ex.policy == exec::SchedulingPolicy::kDeadline ? "deadline" : "fifo"},
              {"control_period_ms", ex.controlPeriod.count()},
              {"replans", ex.replans},
              {"sharp_replans", ex.sharpReplans},
              {"last_replan_us", static_cast<double>(ex.lastReplanNs) / 1e3},
              {"max_replan_us", static_cast<double>(ex.maxReplanNs) / 1e3},
              {"functions", fns}};
}

http::Response HttpGateway::management(const http::Request& req) {
  std::string_view path = req.path;
  const std::string& method = req.method;
  auto fail = [](const Error& e) { return errorResponse(e); };
  auto methodNotAllowed = [&] {
    return fail(Error(ErrorCode::kInvalidArgument,
                      fmt::format("{} is not allowed on {}", method, req.path)));
  };

  if (path.starts_with("/v1/devices/")) return deviceStateRoute(req);
  if (path == "/v1/events") {
    // The upgrade handler (eventsUpgrade) takes the WebSocket requests.
    auto r = fail(Error(ErrorCode::kInvalidArgument,
                        "GET /v1/events is a WebSocket: send it with Upgrade: websocket"));
    r.status = 426;
    r.headers.push_back({"Upgrade", "websocket"});
    return r;
  }
  if (path == "/v1/status") {
    auto ex = deps_.executor.stats();
    auto list = deps_.registry.list();
    double uptime =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    return jsonResponse(200, json{{"version", deps_.nodeVersion},
                                  {"uptime_seconds", uptime},
                                  {"slots", ex.slots},
                                  {"running", ex.running},
                                  {"queued", ex.queued},
                                  {"rejected", ex.rejected},
                                  {"functions", list.ok() ? list->size() : 0},
                                  {"scheduler", schedulerJson()}});
  }
  if (path == "/v1/cluster/nodes") {
    if (method != "GET") return methodNotAllowed();
    std::string body = deps_.clusterNodes ? deps_.clusterNodes() : std::string();
    if (body.empty()) {
      return fail(Error(ErrorCode::kNotFound,
                        "this node is standalone: start ternd with --cluster to join a cluster"));
    }
    http::Response r;
    r.contentType = "application/json";
    r.body = std::move(body);
    return r;
  }
  if (path == "/v1/functions") {
    if (method != "GET") return methodNotAllowed();
    // ?series=1: each function's time series too (as GET /v1/functions/NAME/series), so the
    // console's functions page is one request however many functions there are.
    auto seriesParam = http::uintParam(req.query, "series", 0, 0, 1);
    if (!seriesParam.ok()) return fail(seriesParam.error());
    auto list = deps_.registry.list();
    if (!list.ok()) return fail(list.error());
    size_t slots = deps_.executor.stats().slots;
    int64_t now = unixMillis();
    json fns = json::array();
    for (const auto& f : *list) {
      json entry{{"name", f.name},
                 {"active_version", f.activeVersion},
                 {"latest_version", f.latestVersion},
                 {"versions", f.versionCount},
                 {"updated_at_ms", f.updatedAtMs}};
      if (*seriesParam) {
        auto fn = deps_.table.find(f.name);
        entry["points"] = fn ? seriesJson(fn->log.series(now), slots) : json::array();
      }
      fns.push_back(std::move(entry));
    }
    json body{{"functions", fns}};
    if (*seriesParam) {
      body["bucket_ms"] = exec::FunctionSeries::kBucketMs;
      body["slots"] = slots;
    }
    return jsonResponse(200, body);
  }
  static constexpr std::string_view kPrefix = "/v1/functions/";
  if (!path.starts_with(kPrefix)) {
    return fail(Error(ErrorCode::kNotFound, "no route for " + req.path));
  }
  std::string_view rest = path.substr(kPrefix.size());
  size_t slash = rest.find('/');
  std::string name(rest.substr(0, slash));
  std::string_view action = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
  if (!isFunctionName(name)) {
    return fail(Error(ErrorCode::kInvalidArgument,
                      fmt::format("invalid function name \"{}\": use 1-63 characters a-z, 0-9 "
                                  "and '-', starting with a letter or digit",
                                  name)));
  }

  if (action.empty()) {
    if (method == "PUT") {
      store::FunctionSettings s;
      if (auto known = http::checkParamNames(req.query, kDeployOneParams, kDeployListParams);
          !known.ok()) {
        return fail(known.error());
      }
      auto mem = http::uintParam(req.query, "memory_mb", s.memoryMb, 1, limits_.maxMemoryMb);
      if (!mem.ok()) return fail(mem.error());
      auto timeout = http::uintParam(req.query, "timeout_ms", s.timeoutMs, 1, limits_.maxTimeoutMs);
      if (!timeout.ok()) return fail(timeout.error());
      auto conc = http::uintParam(req.query, "concurrency", 0, 0, 1u << 16);
      if (!conc.ok()) return fail(conc.error());
      s.memoryMb = *mem;
      s.timeoutMs = *timeout;
      s.concurrency = *conc;
      for (auto& kv : http::queryValues(req.query, "env")) {
        size_t eq = kv.find('=');
        if (eq == 0 || eq == std::string::npos || kv.find('\0') != std::string::npos) {
          return fail(Error(ErrorCode::kInvalidArgument,
                            fmt::format("env must be KEY=VALUE, got \"{}\"", kv)));
        }
        s.env.push_back(std::move(kv));
      }
      // Triggers, reply topic and capabilities are checked by Deployments::deploy.
      s.triggers = http::queryValues(req.query, "trigger");
      auto reply = http::queryValues(req.query, "reply_topic");
      if (reply.size() > 1) {
        return fail(Error(ErrorCode::kInvalidArgument, "reply_topic may be given once"));
      }
      if (!reply.empty()) s.replyTopic = std::move(reply[0]);
      s.allow = http::queryValues(req.query, "allow");
      // The objective and weight are checked by Deployments::deploy.
      auto slo = numberParam(req.query, "slo_ms", 0);
      if (!slo.ok()) return fail(slo.error());
      auto percentile = numberParam(req.query, "slo_percentile", 0);
      if (!percentile.ok()) return fail(percentile.error());
      auto weight = numberParam(req.query, "weight", 1);
      if (!weight.ok()) return fail(weight.error());
      // Stored settings use 0 for "no objective" and "mean"; a 0 given explicitly is checked
      // as the number it is.
      if (!http::queryValues(req.query, "slo_ms").empty() && *slo == 0) {
        return fail(exec::checkObjective(exec::Objective{0, std::nullopt}).error());
      }
      if (!http::queryValues(req.query, "slo_percentile").empty() && *percentile == 0) {
        return fail(exec::checkObjective(exec::Objective{1, 0.0}).error());
      }
      s.sloMs = *slo;
      s.sloPercentile = *percentile;
      s.weight = *weight;
      // Placement in a cluster (checked by Deployments::deploy).
      s.placement.sites = http::queryValues(req.query, "site");
      auto tier = http::queryValues(req.query, "tier");
      if (tier.size() > 1) return fail(Error(ErrorCode::kInvalidArgument, "tier may be given once"));
      if (!tier.empty()) s.placement.tier = std::move(tier[0]);
      s.placement.labels = http::queryValues(req.query, "label");
      // Which compiler builds the function's object (docs/design/tiers.md).
      auto compileTier = http::queryValues(req.query, "compile_tier");
      if (compileTier.size() > 1) {
        return fail(Error(ErrorCode::kInvalidArgument, "compile_tier may be given once"));
      }
      if (!compileTier.empty()) {
        auto t = store::parseCompileTier(compileTier[0]);
        if (!t.ok()) return fail(t.error());
        s.compileTier = *t;
      }
      if (req.body.empty()) {
        return fail(Error(ErrorCode::kInvalidModule, "the request body must be a .wasm module"));
      }
      auto v = deps_.deployments.deploy(
          name, std::span(reinterpret_cast<const uint8_t*>(req.body.data()), req.body.size()), s);
      if (!v.ok()) return fail(v.error());
      return jsonResponse(201, versionJson(*v));
    }
    if (method == "GET") {
      auto v = deps_.registry.active(name);
      if (!v.ok()) return fail(v.error());
      if (!*v) return fail(Error(ErrorCode::kNotFound, fmt::format("no function named \"{}\"", name)));
      json info = versionJson(**v);
      info["active_version"] = (*v)->version;
      if (auto fn = deps_.table.find(name)) {
        json recent = json::array();
        for (const auto& r : fn->log.records()) recent.push_back(recordJson(r));
        info["recent_invocations"] = recent;
        json outcomes = json::object();
        for (int i = 0; i <= exec::FunctionEntry::kRejected; ++i) {
          const char* o = i == exec::FunctionEntry::kRejected
                              ? "rejected"
                              : wasm::outcomeName(static_cast<wasm::Outcome>(i));
          outcomes[o] = fn->outcomes[i]->value();
        }
        info["invocations"] = outcomes;
        info["in_flight"] = fn->inFlight->value();
        // The tier of the object serving the function now, and why, when it is not final.
        if (auto active = fn->active(); active && active->module) {
          info["tier"] = wasm::tierName(active->module->tier());
          if (!active->tierNote.empty()) info["tier_note"] = active->tierNote;
        }
        info["schedule"] = scheduleJson(deps_.executor.report(fn->admission));
      }
      return jsonResponse(200, info);
    }
    if (method == "DELETE") {
      auto ok = deps_.deployments.remove(name);
      if (!ok.ok()) return fail(ok.error());
      return jsonResponse(200, json{{"deleted", name}});
    }
    return methodNotAllowed();
  }
  if (action == "versions") {
    if (method != "GET") return methodNotAllowed();
    auto vs = deps_.registry.versions(name);
    if (!vs.ok()) return fail(vs.error());
    if (vs->empty()) {
      return fail(Error(ErrorCode::kNotFound, fmt::format("no function named \"{}\"", name)));
    }
    auto active = deps_.registry.active(name);
    json arr = json::array();
    for (const auto& v : *vs) arr.push_back(versionJson(v));
    return jsonResponse(200, json{{"name", name},
                                  {"active_version", active.ok() && *active ? (*active)->version : 0},
                                  {"versions", arr}});
  }
  if (action == "module") {
    // The active version's module, for devices that run the function themselves.
    if (method != "GET") return methodNotAllowed();
    auto v = deps_.registry.active(name);
    if (!v.ok()) return fail(v.error());
    if (!*v) return fail(Error(ErrorCode::kNotFound, fmt::format("no function named \"{}\"", name)));
    auto bytes = deps_.registry.readModule((*v)->moduleHash);
    if (!bytes.ok()) return fail(bytes.error());
    http::Response r;
    r.contentType = "application/wasm";
    r.body.assign(bytes->begin(), bytes->end());
    r.headers.push_back({"X-Tern-Module-Sha256", (*v)->moduleHash});
    r.headers.push_back({"X-Tern-Function-Version", std::to_string((*v)->version)});
    return r;
  }
  if (action == "object") {
    // The active version compiled for a device's machine (?target=x86_64|aarch64), so that
    // a device runs it without a compiler of its own (docs/design/devices.md).
    if (method != "GET") return methodNotAllowed();
    auto targets = http::queryValues(req.query, "target");
    if (targets.size() != 1) {
      return fail(Error(ErrorCode::kInvalidArgument,
                        "name the device's machine once: ?target=x86_64 or ?target=aarch64"));
    }
    const std::string target = targets[0];
    auto object = deps_.deployments.objectFor(name, target);
    if (!object.ok()) return fail(object.error());
    http::Response r;
    r.contentType = "application/octet-stream";
    r.body = std::move(object->bytes);
    r.headers.push_back({"X-Tern-Module-Sha256", object->moduleHash});
    r.headers.push_back({"X-Tern-Function-Version", std::to_string(object->version)});
    r.headers.push_back({"X-Tern-Object-Target", target});
    return r;
  }
  if (action == "rollback") {
    if (method != "POST") return methodNotAllowed();
    auto v = deps_.deployments.rollback(name);
    if (!v.ok()) return fail(v.error());
    return jsonResponse(200, versionJson(*v));
  }
  if (action == "logs") {
    if (method != "GET") return methodNotAllowed();
    auto fn = deps_.table.find(name);
    if (!fn) return fail(Error(ErrorCode::kNotFound, fmt::format("no function named \"{}\"", name)));
    auto after = http::uintParam(req.query, "after", 0, 0, UINT32_MAX);
    if (!after.ok()) return fail(after.error());
    auto limit = http::uintParam(req.query, "limit", 1000, 1, 10000);
    if (!limit.ok()) return fail(limit.error());
    json lines = json::array();
    uint64_t next = *after;
    for (const auto& l : fn->log.lines(*after, *limit, std::chrono::milliseconds(0))) {
      lines.push_back(logLineJson(l));
      next = l.seq;
    }
    json records = json::array();
    for (const auto& r : fn->log.records()) records.push_back(recordJson(r));
    return jsonResponse(200, json{{"name", name}, {"lines", lines}, {"next", next},
                                  {"invocations", records}});
  }
  if (action == "series") {
    if (method != "GET") return methodNotAllowed();
    auto fn = deps_.table.find(name);
    if (!fn) return fail(Error(ErrorCode::kNotFound, fmt::format("no function named \"{}\"", name)));
    size_t slots = deps_.executor.stats().slots;
    return jsonResponse(200, json{{"name", name},
                                  {"bucket_ms", exec::FunctionSeries::kBucketMs},
                                  {"slots", slots},
                                  {"points", seriesJson(fn->log.series(unixMillis()), slots)}});
  }
  return fail(Error(ErrorCode::kNotFound, "no route for " + req.path));
}

}  // namespace tern::triggers
