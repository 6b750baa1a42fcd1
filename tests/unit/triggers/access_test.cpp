// Scopes and the route table (triggers/access.h): what every /v1 route needs, which scopes
// grant it, and that the table is the only way to a route.

#include "triggers/access.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tern::triggers {
namespace {

// A path of the pattern's shape: "{}" and "{fn}" become "x1", "{wf}" "w1".
std::string instantiate(std::string_view pattern) {
  std::string out(pattern);
  for (auto [from, to] : {std::pair{std::string_view("{fn}"), "x1"}, std::pair{std::string_view("{wf}"), "w1"},
                          std::pair{std::string_view("{}"), "x1"}}) {
    for (size_t at; (at = out.find(from)) != std::string::npos;) out.replace(at, from.size(), to);
  }
  return out;
}

TEST(RouteAccessTest, EveryRouteNeedsWhatTheTableSays) {
  struct Case {
    const char* method;
    const char* path;
    Need need;
    const char* target;
  };
  const Case cases[] = {
      {"GET", "/v1/status", Need::kRead, ""},
      {"GET", "/v1/cluster/nodes", Need::kRead, ""},
      {"GET", "/v1/functions", Need::kRead, ""},
      {"GET", "/v1/functions/resize", Need::kRead, ""},
      {"PUT", "/v1/functions/resize", Need::kDeploy, ""},
      {"DELETE", "/v1/functions/resize", Need::kDeploy, ""},
      {"POST", "/v1/functions/resize/rollback", Need::kDeploy, ""},
      {"GET", "/v1/functions/resize/logs", Need::kRead, ""},
      {"GET", "/v1/functions/resize/module", Need::kRead, ""},
      {"GET", "/v1/functions/resize/object", Need::kRead, ""},
      {"GET", "/v1/functions/resize/versions", Need::kRead, ""},
      {"PUT", "/v1/devices/dev-0001/state/resize", Need::kInvoke, "resize"},
      {"POST", "/v1/async/resize", Need::kInvoke, "resize"},
      {"POST", "/v1/async/wf", Need::kInvoke, "wf"},  // a function named wf
      {"POST", "/v1/async/wf/order", Need::kInvoke, "wf/order"},
      {"GET", "/v1/invocations/abc123", Need::kInvocationRecord, ""},
      {"GET", "/v1/workflows", Need::kRead, ""},
      {"PUT", "/v1/workflows/order", Need::kDeploy, ""},
      {"GET", "/v1/workflows/order/runs", Need::kRead, ""},
      {"GET", "/v1/runs/r1", Need::kRead, ""},
      {"POST", "/v1/topics/news", Need::kDeploy, ""},
      {"GET", "/v1/topics/news", Need::kRead, ""},
      {"PUT", "/v1/apps/feed", Need::kDeploy, ""},
      {"GET", "/v1/streams", Need::kRead, ""},
      {"PUT", "/v1/providers/edge2", Need::kDeploy, ""},
      {"DELETE", "/v1/routes/resize", Need::kDeploy, ""},
      {"GET", "/v1/tokens", Need::kAdmin, ""},
      {"POST", "/v1/tokens", Need::kAdmin, ""},
      {"DELETE", "/v1/tokens/ci", Need::kAdmin, ""},
  };
  for (const auto& c : cases) {
    auto r = routeAccess(c.method, c.path);
    ASSERT_EQ(r.match, RouteAccess::Match::kRoute) << c.method << " " << c.path;
    EXPECT_EQ(r.access.need, c.need) << c.method << " " << c.path;
    EXPECT_EQ(r.access.target, c.target) << c.method << " " << c.path;
  }
}

TEST(RouteAccessTest, WhatMatchesNoRowGoesNoFurther) {
  struct Case {
    const char* method;
    const char* path;
    RouteAccess::Match match;
    const char* allowed;
  };
  const Case cases[] = {
      {"POST", "/v1/functions/resize/module", RouteAccess::Match::kWrongMethod, "GET"},
      {"PATCH", "/v1/functions/resize", RouteAccess::Match::kWrongMethod, "GET, PUT, DELETE"},
      {"GET", "/v1/tokens/ci", RouteAccess::Match::kWrongMethod, "DELETE"},
      {"GET", "/v1", RouteAccess::Match::kNoRoute, ""},
      {"GET", "/v1/", RouteAccess::Match::kNoRoute, ""},
      {"GET", "/v1/functions/", RouteAccess::Match::kNoRoute, ""},    // an empty name
      {"GET", "/v1/functions/a/", RouteAccess::Match::kNoRoute, ""},  // a trailing '/'
      {"GET", "/v1/functions/a/b/logs", RouteAccess::Match::kNoRoute, ""},
      {"POST", "/v1/async/wf/a/b", RouteAccess::Match::kNoRoute, ""},
      {"GET", "/v1/runs/a/b", RouteAccess::Match::kNoRoute, ""},
      {"GET", "/v1/appsx", RouteAccess::Match::kNoRoute, ""},
      {"GET", "/v1/secret", RouteAccess::Match::kNoRoute, ""},
      {"GET", "v1/status", RouteAccess::Match::kNoRoute, ""},
  };
  for (const auto& c : cases) {
    auto r = routeAccess(c.method, c.path);
    EXPECT_EQ(r.match, c.match) << c.method << " " << c.path;
    EXPECT_EQ(r.allowed, c.allowed) << c.method << " " << c.path;
  }
}

TEST(RouteAccessTest, EachRowOfTheTableIsFoundByItsOwnShape) {
  for (const auto& rule : managementRoutes()) {
    std::string path = instantiate(rule.pattern);
    auto r = routeAccess(rule.method, path);
    ASSERT_EQ(r.match, RouteAccess::Match::kRoute) << rule.method << " " << path;
    EXPECT_EQ(r.access.need, rule.need) << rule.method << " " << path;
    // Nothing under /v1 is open: each row needs a scope that admin grants and a
    // token without scopes does not.
    EXPECT_TRUE(grants(std::vector<std::string>{"admin"}, r.access)) << path;
    EXPECT_FALSE(grants(std::vector<std::string>{}, r.access)) << path;
  }
}

TEST(ScopesTest, WhatEachScopeGrants) {
  using V = std::vector<std::string>;
  struct Case {
    V scopes;
    Need need;
    const char* target;
    bool granted;
  };
  const Case cases[] = {
      {{"admin"}, Need::kAdmin, "", true},
      {{"admin"}, Need::kInvoke, "resize", true},
      {{"deploy"}, Need::kAdmin, "", false},
      {{"deploy"}, Need::kDeploy, "", true},
      {{"deploy"}, Need::kRead, "", false},  // deploy does not imply read
      {{"read"}, Need::kRead, "", true},
      {{"read"}, Need::kDeploy, "", false},
      {{"read"}, Need::kInvocationRecord, "", true},
      {{"read"}, Need::kInvoke, "resize", false},
      {{"invoke:resize"}, Need::kInvoke, "resize", true},
      {{"invoke:resize"}, Need::kInvoke, "resizer", false},
      {{"invoke:resize"}, Need::kInvoke, "wf/resize", false},
      {{"invoke:resize"}, Need::kRead, "", false},
      {{"invoke:*"}, Need::kInvoke, "anything", true},
      {{"invoke:*"}, Need::kInvoke, "wf/order", true},
      {{"invoke:*"}, Need::kDeploy, "", false},
      {{"invoke:wf/order"}, Need::kInvoke, "wf/order", true},
      {{"invoke:wf/order"}, Need::kInvoke, "order", false},
      {{"read", "invoke:a"}, Need::kInvoke, "a", true},
      {{"invoke:"}, Need::kInvoke, "", false},
      {{}, Need::kRead, "", false},
  };
  for (const auto& c : cases) {
    Access access{c.need, c.target};
    EXPECT_EQ(grants(c.scopes, access), c.granted)
        << (c.scopes.empty() ? "(none)" : c.scopes[0]) << " for " << accessText(access);
  }
}

TEST(ScopesTest, OnlyKnownScopesAreAccepted) {
  for (const char* good : {"admin", "deploy", "read", "invoke:resize", "invoke:*", "invoke:wf/order", "invoke:a-1"}) {
    EXPECT_TRUE(checkScope(good).ok()) << good;
  }
  for (const char* bad : {"", "Admin", "write", "invoke", "invoke:", "invoke:Resize", "invoke:a/b", "invoke:wf/",
                          "invoke:**", "invoke:-a", "read ", "invoke:wf/*"}) {
    auto r = checkScope(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message().find("invoke:FUNCTION"), std::string::npos) << r.error().message();
  }
}

TEST(ScopesTest, TheScopeNeededIsSpelledAsATokenWouldHoldIt) {
  EXPECT_EQ(accessText({Need::kRead, ""}), "read");
  EXPECT_EQ(accessText({Need::kDeploy, ""}), "deploy");
  EXPECT_EQ(accessText({Need::kAdmin, ""}), "admin");
  EXPECT_EQ(accessText({Need::kInvoke, "resize"}), "invoke:resize");
  EXPECT_EQ(accessText({Need::kInvoke, "wf/order"}), "invoke:wf/order");
}

}  // namespace
}  // namespace tern::triggers
