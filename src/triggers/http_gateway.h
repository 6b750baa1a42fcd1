#pragma once
// The node's HTTP surface: function invocation (/fn/NAME[/REST], CGI/WAGI style; a token
// with --invoke-auth required), the management API (/v1, scoped bearer tokens: every route
// is a row of triggers/access.h), /healthz and /metrics. Transport comes from
// http::Server; this class maps requests to the invoker and the deployments, and results
// to responses. See docs/http-api.md.

#include <chrono>
#include <cstdint>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <variant>

#include "exec/executor.h"
#include "exec/function_table.h"
#include "exec/invoker.h"
#include "http/http_server.h"
#include "store/deployments.h"
#include "store/registry.h"
#include "triggers/token_auth.h"
#include "util/metrics.h"
#include "util/work_queue.h"

namespace tern::async {
class AsyncQueue;
}

namespace tern::triggers {

struct GatewayLimits {
  size_t maxInvokeBody = 6u << 20;     // request body of /fn
  size_t maxModuleBytes = 64u << 20;   // deploy body
  size_t maxManagementBody = 1u << 20; // other requests
  uint32_t maxMemoryMb = 4096;         // settings accepted at deploy
  uint32_t maxTimeoutMs = 15 * 60 * 1000;
};

struct GatewayDeps {
  exec::Invoker& invoker;
  exec::Executor& executor;
  exec::FunctionTable& table;
  store::Registry& registry;
  store::Deployments& deployments;
  MetricsRegistry& metrics;
  WorkQueue& managementQueue;
  // The node's tokens: the admin token and the scoped tokens (token_auth.h).
  TokenAuth& auth;
  std::string nodeVersion;
  // Extra metric lines appended to /metrics (engine, process), rendered at scrape time.
  std::function<std::string()> extraMetrics;
  // Durable async invocations (/v1/async, /v1/invocations); null: those routes answer 503.
  async::AsyncQueue* asyncQueue = nullptr;
  // In a cluster: this node's id (invocation responses carry X-Tern-Node) and the JSON of
  // GET /v1/cluster/nodes. Empty or unset for a standalone node.
  std::function<std::string()> clusterNodeId;
  std::function<std::string()> clusterNodes;
  // Workflows (workflow/workflow_routes.h): /wf/NAME, and after the token check
  // /v1/workflows, /v1/runs and /v1/async/wf; unset: those paths are 404.
  std::function<void(http::Request&&, http::Respond)> workflows;
  // Functions' key-value state, for /v1/devices/DEVICE/state/FUNCTION (a device's state
  // moving between nodes); null: those routes answer 503.
  store::KvStore* kv = nullptr;
  // Streams (stream/stream_routes.h): after the token check /v1/topics, /v1/apps and
  // /v1/streams; unset: those paths are 404.
  std::function<void(http::Request&&, http::Respond)> streams;
  // Providers and routes (providers/provider_routes.h): after the token check
  // /v1/providers and /v1/routes; unset: those paths are 404.
  std::function<void(http::Request&&, http::Respond)> providers;
  // Whether /fn/NAME and /wf/NAME demand a token that may invoke NAME.
  InvokeAuth invokeAuth = InvokeAuth::kOpen;
};

class HttpGateway {
 public:
  HttpGateway(GatewayDeps deps, GatewayLimits limits);

  size_t bodyLimit(std::string_view method, std::string_view target) const;
  void handle(http::Request&& req, http::Respond respond);
  // The server's upgrade handler for GET /v1/events?function=NAME (event_feed.cpp): a live
  // feed of NAME's invocation records and stderr lines, for a caller with the read scope
  // (an Authorization header on the upgrade, or the first message {"token": "..."} from a
  // browser); other paths are left to the ordinary handler.
  http::UpgradeDecision eventsUpgrade(const http::Request& req);

 private:
  void invoke(http::Request&& req, std::string name, std::string rest, http::Respond respond);
  http::Response management(const http::Request& req);
  // GET /ui and /ui/... : the web console's files (console_routes.cpp); open to anyone, as
  // they hold no data: the pages ask /v1 for it with the user's token.
  http::Response consoleAsset(const http::Request& req) const;
  http::Response deviceStateRoute(const http::Request& req);  // device_routes.cpp
  // The scheduler's state for /v1/status: policy, re-planning, and each function's view.
  nlohmann::json schedulerJson() const;
  // /v1/async/NAME and /v1/invocations/ID (async_routes.cpp), after the token check.
  void asyncRoute(http::Request&& req, http::Respond respond, const Caller& caller);
  // /v1/tokens (token_routes.cpp), after the token check: on the management thread.
  http::Response tokensRoute(const http::Request& req);
  // Checks a /v1 request against the route table (access.h) and its token; the caller, or
  // the answer that refuses it (401, 403, 404, 405, 429).
  std::variant<Caller, http::Response> admit(const http::Request& req);

  GatewayDeps deps_;
  GatewayLimits limits_;
  std::chrono::steady_clock::time_point started_;
  Counter& guestHeadersRefused_;
  Counter& feedsCut_;
};

// The JSON of an invocation record, a stderr line and a function's time series (with the
// node's worker-slot count), as /v1 and the event feed send them.
nlohmann::json recordJson(const exec::InvocationRecord& r);
nlohmann::json logLineJson(const exec::LogLine& l);
nlohmann::json seriesJson(const std::vector<exec::SeriesPoint>& points, size_t slots);

// A JSON error body {"error": {"code": ..., "message": ...}} with the kind's HTTP status.
http::Response errorResponse(const Error& e);
// A refused token as an answer: {"error": {"code", "message", "reason", "scope_needed"?}}
// with 401 (and WWW-Authenticate), 403, or 429 (and Retry-After).
http::Response refusalResponse(const Refusal& refusal);
// A JSON answer (invalid UTF-8 replaced, never thrown on).
http::Response jsonResponse(int status, const nlohmann::json& body);
// 405 with an Allow header listing `allowed` ("GET, PUT").
http::Response methodNotAllowed(std::string_view allowed);

}  // namespace tern::triggers
