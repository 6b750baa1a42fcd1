// `tern provider` and `tern route`: the checks made before connecting, the bodies sent, and
// the human output from the node's JSON answers (docs/http-api.md, "Providers").

#include "cli/provider_commands.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

namespace tern::cli {
namespace {

using json = nlohmann::json;

ProviderAddOptions edge2() {
  ProviderAddOptions o;
  o.name = "edge2";
  o.kind = "tern";
  o.url = "http://10.0.0.2:8080";
  return o;
}

// The refusal's message for options changed from valid ones ("" when accepted).
template <typename Options, typename Body, typename Change>
std::string refusal(Options o, Body body, Change change) {
  change(o);
  auto r = body(o);
  if (r.ok()) return "";
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  return r.error().message();
}

TEST(ProviderAddBodyTest, CarriesOnlyWhatWasGiven) {
  auto plain = providerAddBody(edge2());
  ASSERT_TRUE(plain.ok()) << plain.error().describe();
  EXPECT_EQ(json::parse(*plain), json({{"kind", "tern"}, {"url", "http://10.0.0.2:8080"}}));

  ProviderAddOptions o;
  o.name = "cloud";
  o.kind = "http";
  o.url = "http://gw.example:8080/function/{function}";
  o.tokenFile = "/etc/tern/cloud.token";
  o.tier = "cloud";
  o.pricePerCall = 0.0002;
  auto full = providerAddBody(o);
  ASSERT_TRUE(full.ok()) << full.error().describe();
  EXPECT_EQ(json::parse(*full), json({{"kind", "http"},
                                      {"url", "http://gw.example:8080/function/{function}"},
                                      {"token_file", "/etc/tern/cloud.token"},
                                      {"tier", "cloud"},
                                      {"price_per_call", 0.0002}}));
  o.pricePerCall = 0;  // free is a price too
  EXPECT_EQ(json::parse(*providerAddBody(o))["price_per_call"], 0.0);
}

TEST(ProviderAddBodyTest, RefusesBadOptionsSayingWhich) {
  auto check = [](auto change) { return refusal(edge2(), providerAddBody, change); };
  using O = ProviderAddOptions;
  EXPECT_NE(check([](O& o) { o.name = "local"; }).find("\"local\" is this node"), std::string::npos);
  EXPECT_NE(check([](O& o) { o.name = "Edge_2"; }).find("invalid provider name \"Edge_2\""), std::string::npos);
  EXPECT_NE(check([](O& o) { o.name = ""; }).find("invalid provider name"), std::string::npos);
  EXPECT_NE(check([](O& o) { o.name = "-edge"; }).find("invalid provider name"), std::string::npos);
  EXPECT_NE(check([](O& o) { o.kind = "lambda"; }).find("--kind"), std::string::npos);
  EXPECT_NE(check([](O& o) { o.kind = ""; }).find("--kind"), std::string::npos);
  EXPECT_NE(check([](O& o) { o.url = ""; }).find("--url"), std::string::npos);
  EXPECT_NE(check([](O& o) { o.tokenFile = "edge2.token"; }).find("--token-file"), std::string::npos);
  EXPECT_NE(check([](O& o) { o.tier = "fog"; }).find("--tier"), std::string::npos);
  EXPECT_NE(check([](O& o) { o.pricePerCall = -0.1; }).find("--price-per-call"), std::string::npos);
  EXPECT_NE(check([](O& o) { o.pricePerCall = std::nan(""); }).find("--price-per-call"), std::string::npos);
  EXPECT_NE(check([](O& o) { o.pricePerCall = std::numeric_limits<double>::infinity(); }).find("--price-per-call"),
            std::string::npos);
  EXPECT_EQ(check([](O& o) { o.tier = "edge"; }), "");
}

TEST(RouteSetBodyTest, SendsTheProvidersInOrderAndThePolicy) {
  RouteSetOptions o;
  o.function = "resize";
  o.providers = {"local", "edge2", "cloud"};
  o.policy = "cheapest-within:50";
  auto b = routeSetBody(o);
  ASSERT_TRUE(b.ok()) << b.error().describe();
  EXPECT_EQ(json::parse(*b), json({{"providers", {"local", "edge2", "cloud"}}, {"policy", "cheapest-within:50"}}));
}

TEST(RouteSetBodyTest, RefusesBadOptionsSayingWhich) {
  RouteSetOptions valid;
  valid.function = "resize";
  valid.providers = {"local", "edge2"};
  valid.policy = "lowest-latency";
  auto check = [&](auto change) { return refusal(valid, routeSetBody, change); };
  using O = RouteSetOptions;
  EXPECT_NE(check([](O& o) { o.function = "Resize"; }).find("invalid function name"), std::string::npos);
  EXPECT_NE(check([](O& o) { o.providers.clear(); }).find("--providers"), std::string::npos);
  EXPECT_NE(check([](O& o) { o.providers = {"local", "edge2", "local"}; }).find("\"local\" twice"),
            std::string::npos);
  EXPECT_NE(check([](O& o) { o.providers = {"local", ""}; }).find("--providers"), std::string::npos);
  EXPECT_NE(check([](O& o) { o.providers = {"local", " edge2"}; }).find("\" edge2\""), std::string::npos);
  EXPECT_NE(check([](O& o) {
              o.providers.clear();
              for (int i = 0; i < 17; ++i) o.providers.push_back(fmt::format("p{}", i));
            }).find("at most 16"),
            std::string::npos);
  EXPECT_NE(check([](O& o) { o.policy = ""; }).find("--policy"), std::string::npos);
  EXPECT_EQ(check([](O& o) {
              o.providers.clear();
              for (int i = 0; i < 16; ++i) o.providers.push_back(fmt::format("p{}", i));
            }),
            "");
}

// GET /v1/providers as a node answers it: this node first, its tier unknown to the routes.
const char* kProvidersSample = R"({"providers": [
  {"name": "local", "kind": "local", "tier": null, "functions": [
    {"function": "resize", "samples": 120, "ewma_ms": 4.24, "p95_ms": 9.81, "failure_rate": 0, "in_flight": 2}]},
  {"name": "edge2", "kind": "tern", "url": "http://10.0.0.2:8080", "tier": "edge", "price_per_call": 0,
   "functions": [
    {"function": "resize", "samples": 40, "ewma_ms": 12.46, "p95_ms": 20.1, "failure_rate": 0.025, "in_flight": 1},
    {"function": "thumb", "samples": 0, "ewma_ms": 0, "p95_ms": 0, "failure_rate": 1, "in_flight": 0}]},
  {"name": "cloud", "kind": "http", "url": "http://gw/function/{function}", "tier": "cloud",
   "price_per_call": 0.0002, "functions": []}
]})";

TEST(FormatProviderListTest, OneRowPerProviderAndFunction) {
  EXPECT_EQ(formatProviderList(json::parse(kProvidersSample)),
            "PROVIDER  KIND   TIER   PRICE   FUNCTION  SAMPLES  EWMA MS  P95 MS  FAILURE %  IN FLIGHT\n"
            "local     local  -      -       resize    120      4.2      9.8     0.0        2\n"
            "edge2     tern   edge   0       resize    40       12.5     20.1    2.5        1\n"
            "                                thumb     0        -        -       100.0      0\n"
            "cloud     http   cloud  0.0002  -         -        -        -       -          -\n");
}

TEST(FormatProviderListTest, ToleratesWhatItDoesNotExpect) {
  EXPECT_EQ(formatProviderList(json::object()), "no providers\n");
  EXPECT_EQ(formatProviderList(json::parse(R"({"providers": "x"})")), "no providers\n");
  // Missing and mistyped fields show as "-"; text is made safe for a terminal.
  EXPECT_EQ(formatProviderList(json::parse(
                R"({"providers": [{"name": "odd\u001b[2J", "kind": 3, "functions": [{"samples": "many"}]}]})")),
            "PROVIDER    KIND  TIER  PRICE  FUNCTION  SAMPLES  EWMA MS  P95 MS  FAILURE %  IN FLIGHT\n"
            "odd\\x1b[2J  -     -     -      -         -        -        -       -          -\n");
}

TEST(FormatRouteTest, ListsAndConfirmsRoutes) {
  json routes = json::parse(R"({"routes": [
    {"function": "echo", "providers": ["local"], "policy": "single"},
    {"function": "resize", "providers": ["local", "edge2", "cloud"], "policy": "cheapest-within:50"}]})");
  EXPECT_EQ(formatRouteList(routes),
            "FUNCTION  PROVIDERS          POLICY\n"
            "echo      local              single\n"
            "resize    local,edge2,cloud  cheapest-within:50\n");
  EXPECT_EQ(formatRouteList(json::parse(R"({"routes": []})")), "no routes\n");
  EXPECT_EQ(formatRouteSet(routes["routes"][1]), "route resize: local, edge2, cloud (cheapest-within:50)\n");
}

TEST(FormatProviderAddedTest, SaysWhatWasAdded) {
  EXPECT_EQ(formatProviderAdded(json::parse(
                R"({"name": "edge2", "kind": "tern", "url": "http://10.0.0.2:8080", "tier": "edge",
                    "price_per_call": 0})")),
            "added provider edge2 (tern http://10.0.0.2:8080, edge, free)\n");
  EXPECT_EQ(formatProviderAdded(json::parse(
                R"({"name": "cloud", "kind": "http", "url": "http://gw/function/{function}", "tier": "cloud",
                    "price_per_call": 0.0002})")),
            "added provider cloud (http http://gw/function/{function}, cloud, price 0.0002 per call)\n");
}

TEST(ProviderCommandsTest, BadArgumentsFailBeforeConnecting) {
  NodeOptions node;
  node.node = "http://127.0.0.1:1";  // nothing listens: an attempt would be "unavailable"
  node.token = "t";
  std::ostringstream out, err;
  ProviderAddOptions add = edge2();
  add.kind = "ftp";
  EXPECT_EQ(providerAddCommand(node, add, out, err), 64);
  EXPECT_EQ(providerRemoveCommand(node, "local", out, err), 64);
  EXPECT_EQ(routeRemoveCommand(node, "Bad", out, err), 64);
  RouteSetOptions set;
  set.function = "resize";
  EXPECT_EQ(routeSetCommand(node, set, out, err), 64);
  EXPECT_EQ(out.str(), "");
  EXPECT_EQ(err.str().find("unavailable"), std::string::npos) << err.str();
  EXPECT_EQ(err.str().rfind("tern: invalid argument: ", 0), 0u) << err.str();
}

}  // namespace
}  // namespace tern::cli
