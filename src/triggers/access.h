#pragma once
// Who may do what (docs/security-model.md, "Tokens and scopes"): the scopes a token holds,
// what each request needs, and whether the one grants the other. Pure: no I/O, no clock;
// tested from tables (tests/unit/triggers/access_test.cpp).
//
// Scopes: `admin` (everything), `deploy` (change what the node serves: functions,
// workflows, apps, providers, routes, topic updates), `read` (GET routes that only read),
// `invoke:FN` (call function FN: /fn/FN, CoAP, /v1/async/FN, FN's device state),
// `invoke:wf/NAME` (run workflow NAME: /wf/NAME, /v1/async/wf/NAME) and `invoke:*` (call
// any function or workflow).
//
// Every /v1 route is a row of managementRoutes(); a request that matches no row is refused
// (404 or 405) before any handler sees it, so a route added to a handler but not to the
// table cannot be reached, with or without a token.

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.h"

namespace tern::triggers {

// What a request needs.
enum class Need : uint8_t {
  kRead,
  kDeploy,
  kAdmin,
  kInvoke,  // invoke:TARGET, where TARGET is a function's name or "wf/" and a workflow's
  // GET /v1/invocations/ID: read, or invoke:FN for the job's function FN (known only once
  // the job is read; the route checks it then).
  kInvocationRecord,
};

struct Access {
  Need need = Need::kAdmin;
  std::string target;  // kInvoke: the function, or "wf/NAME"
};

// "read", "deploy", "admin", "invoke:resize", "invoke:wf/order", "read or invoke:FN".
std::string accessText(const Access& access);

// Checks one scope's spelling. Errors: kInvalidArgument saying what scopes exist.
Result<void> checkScope(std::string_view scope);
// Whether a token holding `scopes` (each valid per checkScope; others grant nothing) may
// do what `access` needs. `admin` grants everything; kInvocationRecord is granted by read
// (the invoke case is the route's own check).
bool grants(std::span<const std::string> scopes, const Access& access);
// Whether `scopes` may invoke `target` (a function's name, or "wf/NAME").
bool grantsInvoke(std::span<const std::string> scopes, std::string_view target);

// One /v1 route: a method, a path pattern of '/'-separated segments, where "{}" matches
// any one non-empty segment and "{fn}" / "{wf}" one that names what is invoked, and what
// it needs.
struct RouteRule {
  std::string_view method;
  std::string_view pattern;
  Need need;
};

// Every /v1 route of the node, wherever its handler lives (triggers, stream, providers,
// workflow, the token routes).
std::span<const RouteRule> managementRoutes();

struct RouteAccess {
  enum class Match : uint8_t { kRoute, kWrongMethod, kNoRoute } match = Match::kNoRoute;
  Access access;        // kRoute
  std::string allowed;  // kWrongMethod: the methods the path takes, "GET, PUT"
};

// The route of a /v1 request and what it needs.
RouteAccess routeAccess(std::string_view method, std::string_view path);

}  // namespace tern::triggers
