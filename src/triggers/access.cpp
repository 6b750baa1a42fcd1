#include "triggers/access.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "util/names.h"

namespace tern::triggers {

namespace {

constexpr std::string_view kInvokePrefix = "invoke:";
constexpr std::string_view kWorkflowPrefix = "wf/";

// clang-format off
constexpr std::array kRoutes = {
    // The node and the cluster.
    RouteRule{"GET",    "/v1/status",                      Need::kRead},
    RouteRule{"GET",    "/v1/cluster/nodes",               Need::kRead},
    // Functions (http_gateway.cpp).
    RouteRule{"GET",    "/v1/functions",                   Need::kRead},
    RouteRule{"GET",    "/v1/functions/{}",                Need::kRead},
    RouteRule{"PUT",    "/v1/functions/{}",                Need::kDeploy},
    RouteRule{"DELETE", "/v1/functions/{}",                Need::kDeploy},
    RouteRule{"GET",    "/v1/functions/{}/versions",       Need::kRead},
    RouteRule{"GET",    "/v1/functions/{}/module",         Need::kRead},
    RouteRule{"GET",    "/v1/functions/{}/object",         Need::kRead},
    RouteRule{"POST",   "/v1/functions/{}/rollback",       Need::kDeploy},
    RouteRule{"GET",    "/v1/functions/{}/logs",           Need::kRead},
    RouteRule{"GET",    "/v1/functions/{}/series",         Need::kRead},
    // The live feed of a function's invocations (event_feed.cpp): a WebSocket.
    RouteRule{"GET",    "/v1/events",                      Need::kRead},
    // A device's state in a function (device_routes.cpp): what its calls of FN keep.
    RouteRule{"GET",    "/v1/devices/{}/state/{fn}",       Need::kInvoke},
    RouteRule{"PUT",    "/v1/devices/{}/state/{fn}",       Need::kInvoke},
    RouteRule{"DELETE", "/v1/devices/{}/state/{fn}",       Need::kInvoke},
    // Async invocations (async_routes.cpp).
    RouteRule{"POST",   "/v1/async/{fn}",                  Need::kInvoke},
    RouteRule{"GET",    "/v1/invocations/{}",              Need::kInvocationRecord},
    // Workflows (workflow/workflow_routes.cpp).
    RouteRule{"GET",    "/v1/workflows",                   Need::kRead},
    RouteRule{"PUT",    "/v1/workflows/{}",                Need::kDeploy},
    RouteRule{"DELETE", "/v1/workflows/{}",                Need::kDeploy},
    RouteRule{"GET",    "/v1/workflows/{}/profile",        Need::kRead},
    RouteRule{"GET",    "/v1/workflows/{}/runs",           Need::kRead},
    RouteRule{"GET",    "/v1/runs/{}",                     Need::kRead},
    RouteRule{"POST",   "/v1/async/wf/{wf}",               Need::kInvoke},
    // Streams (stream/stream_routes.cpp).
    RouteRule{"GET",    "/v1/topics",                      Need::kRead},
    RouteRule{"GET",    "/v1/topics/{}",                   Need::kRead},
    RouteRule{"POST",   "/v1/topics/{}",                   Need::kDeploy},
    RouteRule{"GET",    "/v1/apps",                        Need::kRead},
    RouteRule{"GET",    "/v1/apps/{}",                     Need::kRead},
    RouteRule{"PUT",    "/v1/apps/{}",                     Need::kDeploy},
    RouteRule{"DELETE", "/v1/apps/{}",                     Need::kDeploy},
    RouteRule{"GET",    "/v1/streams",                     Need::kRead},
    // Providers and routes (providers/provider_routes.cpp).
    RouteRule{"GET",    "/v1/providers",                   Need::kRead},
    RouteRule{"PUT",    "/v1/providers/{}",                Need::kDeploy},
    RouteRule{"DELETE", "/v1/providers/{}",                Need::kDeploy},
    RouteRule{"GET",    "/v1/routes",                      Need::kRead},
    RouteRule{"PUT",    "/v1/routes/{}",                   Need::kDeploy},
    RouteRule{"DELETE", "/v1/routes/{}",                   Need::kDeploy},
    // Tokens (token_routes.cpp).
    RouteRule{"GET",    "/v1/tokens",                      Need::kAdmin},
    RouteRule{"POST",   "/v1/tokens",                      Need::kAdmin},
    RouteRule{"DELETE", "/v1/tokens/{}",                   Need::kAdmin},
};
// clang-format on

// The '/'-separated segments after the leading '/' ("/v1/a/" -> "v1", "a", "").
std::vector<std::string_view> segments(std::string_view path) {
  std::vector<std::string_view> out;
  if (!path.starts_with('/')) return out;
  path.remove_prefix(1);
  for (;;) {
    size_t slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

// Whether `path` has the pattern's shape; the target of "{fn}" or "{wf}" in `target`.
bool matches(std::string_view pattern, std::string_view path, std::string& target) {
  auto want = segments(pattern);
  auto have = segments(path);
  if (want.empty() || want.size() != have.size()) return false;
  for (size_t i = 0; i < want.size(); ++i) {
    std::string_view p = want[i], s = have[i];
    if (p == "{}" || p == "{fn}" || p == "{wf}") {
      if (s.empty()) return false;
      if (p == "{fn}") target = std::string(s);
      if (p == "{wf}") target = std::string(kWorkflowPrefix) + std::string(s);
    } else if (p != s) {
      return false;
    }
  }
  return true;
}

bool isInvokeTarget(std::string_view target) {
  if (target == "*") return true;
  if (target.starts_with(kWorkflowPrefix)) target.remove_prefix(kWorkflowPrefix.size());
  return isFunctionName(target);
}

}  // namespace

std::string accessText(const Access& a) {
  switch (a.need) {
    case Need::kRead: return "read";
    case Need::kDeploy: return "deploy";
    case Need::kAdmin: return "admin";
    case Need::kInvoke: return fmt::format("invoke:{}", a.target);
    case Need::kInvocationRecord: return "read or invoke:FN (FN: the invocation's function)";
  }
  return "admin";
}

Result<void> checkScope(std::string_view scope) {
  if (scope == "admin" || scope == "deploy" || scope == "read") return {};
  if (scope.starts_with(kInvokePrefix) && isInvokeTarget(scope.substr(kInvokePrefix.size()))) return {};
  return Error(ErrorCode::kInvalidArgument,
               fmt::format("unknown scope \"{}\": use admin, deploy, read, invoke:FUNCTION, "
                           "invoke:wf/WORKFLOW or invoke:*",
                           scope.substr(0, 80)));
}

bool grantsInvoke(std::span<const std::string> scopes, std::string_view target) {
  for (const auto& s : scopes) {
    if (s == "admin") return true;
    if (!std::string_view(s).starts_with(kInvokePrefix)) continue;
    std::string_view t = std::string_view(s).substr(kInvokePrefix.size());
    if (t == "*" || t == target) return true;
  }
  return false;
}

bool grants(std::span<const std::string> scopes, const Access& access) {
  auto has = [&](std::string_view name) {
    return std::any_of(scopes.begin(), scopes.end(), [&](const std::string& s) { return s == name; });
  };
  if (has("admin")) return true;
  switch (access.need) {
    case Need::kRead:
    case Need::kInvocationRecord: return has("read");
    case Need::kDeploy: return has("deploy");
    case Need::kAdmin: return false;
    case Need::kInvoke: return !access.target.empty() && grantsInvoke(scopes, access.target);
  }
  return false;
}

std::span<const RouteRule> managementRoutes() { return kRoutes; }

RouteAccess routeAccess(std::string_view method, std::string_view path) {
  RouteAccess out;
  std::vector<std::string_view> allowed;
  for (const auto& rule : kRoutes) {
    std::string target;
    if (!matches(rule.pattern, path, target)) continue;
    if (rule.method == method) {
      out.match = RouteAccess::Match::kRoute;
      out.access = Access{rule.need, std::move(target)};
      return out;
    }
    if (std::find(allowed.begin(), allowed.end(), rule.method) == allowed.end()) allowed.push_back(rule.method);
  }
  if (!allowed.empty()) {
    out.match = RouteAccess::Match::kWrongMethod;
    for (auto m : allowed) {
      if (!out.allowed.empty()) out.allowed += ", ";
      out.allowed += m;
    }
  }
  return out;
}

}  // namespace tern::triggers
