// Providers, routes and policies as written by users, from tables: every accepted form and
// every refused field with the error that names it.

#include "providers/provider.h"

#include <gtest/gtest.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace tern::providers {
namespace {

using json = nlohmann::json;
using K = PolicySpec::Kind;

TEST(PolicySpecTest, ParsesEachPolicyAndWritesItBack) {
  struct Row {
    std::string text;
    K kind;
    double boundMs;
    std::string function;
    std::string written;
  } rows[] = {
      {"round-robin", K::kRoundRobin, 0, "", "round-robin"},
      {"lowest-latency", K::kLowestLatency, 0, "", "lowest-latency"},
      {"weighted", K::kWeighted, 0, "", "weighted"},
      {"single", K::kSingle, 0, "", "single"},
      {"cheapest-within:50", K::kCheapestWithin, 50, "", "cheapest-within:50"},
      {"cheapest-within:12.5", K::kCheapestWithin, 12.5, "", "cheapest-within:12.5"},
      {"cheapest-within:0.25", K::kCheapestWithin, 0.25, "", "cheapest-within:0.25"},
      {"cheapest-within:50.0", K::kCheapestWithin, 50, "", "cheapest-within:50"},
      {"wasm:my-policy", K::kWasm, 0, "my-policy", "wasm:my-policy"},
      {"wasm:p1", K::kWasm, 0, "p1", "wasm:p1"},
  };
  for (const auto& r : rows) {
    auto p = parsePolicy(r.text);
    ASSERT_TRUE(p.ok()) << r.text << ": " << p.error().message();
    EXPECT_EQ(p->kind, r.kind) << r.text;
    EXPECT_EQ(p->boundMs, r.boundMs) << r.text;
    EXPECT_EQ(p->function, r.function) << r.text;
    EXPECT_EQ(policyText(*p), r.written) << r.text;
    auto again = parsePolicy(policyText(*p));
    ASSERT_TRUE(again.ok()) << r.written;
    EXPECT_EQ(again->kind, p->kind);
    EXPECT_EQ(again->boundMs, p->boundMs);
  }
}

TEST(PolicySpecTest, RefusesUnknownPoliciesAndBadArguments) {
  struct Row {
    std::string text;
    std::string says;  // a part of the message
  } rows[] = {
      {"", "unknown policy"},
      {"fastest", "unknown policy \"fastest\""},
      {"Round-Robin", "unknown policy"},
      {"lowest-latency ", "unknown policy"},
      {"single:local", "unknown policy"},
      {"cheapest-within", "cheapest-within:MS"},
      {"cheapest-within:", "positive number"},
      {"cheapest-within:0", "positive number"},
      {"cheapest-within:-5", "positive number"},
      {"cheapest-within:50ms", "positive number"},
      {"cheapest-within: 50", "positive number"},
      {"cheapest-within:abc", "positive number"},
      {"cheapest-within:inf", "positive number"},
      {"cheapest-within:nan", "positive number"},
      {"cheapest-within:1e400", "positive number"},
      {"wasm", "wasm:FUNCTION"},
      {"wasm:", "function name"},
      {"wasm:My-Policy", "function name"},
      {"wasm:-policy", "function name"},
      {"wasm:a/b", "function name"},
      {fmt::format("wasm:{}", std::string(64, 'a')), "function name"},
  };
  for (const auto& r : rows) {
    auto p = parsePolicy(r.text);
    ASSERT_FALSE(p.ok()) << "accepted \"" << r.text << "\"";
    EXPECT_EQ(p.error().code(), ErrorCode::kInvalidArgument) << r.text;
    EXPECT_NE(p.error().message().find(r.says), std::string::npos)
        << r.text << " -> " << p.error().message();
  }
}

TEST(ProviderTest, ParsesProvidersWithTheirDefaults) {
  auto edge = parseProvider("edge-a", R"({"kind":"tern","url":"http://10.0.0.7:8080"})");
  ASSERT_TRUE(edge.ok()) << edge.error().message();
  EXPECT_EQ(edge->name, "edge-a");
  EXPECT_EQ(edge->kind, Kind::kTern);
  EXPECT_EQ(edge->url, "http://10.0.0.7:8080");
  EXPECT_EQ(edge->tokenFile, "");
  EXPECT_EQ(edge->tier, "edge");
  EXPECT_EQ(edge->pricePerCall, 0);

  auto cloud = parseProvider(
      "faas", R"({"kind":"http","url":"http://gateway.example:8080/function/{function}",)"
              R"("token_file":"/etc/tern/faas.token","tier":"cloud","price_per_call":0.0002})");
  ASSERT_TRUE(cloud.ok()) << cloud.error().message();
  EXPECT_EQ(cloud->kind, Kind::kHttp);
  EXPECT_EQ(cloud->url, "http://gateway.example:8080/function/{function}");
  EXPECT_EQ(cloud->tokenFile, "/etc/tern/faas.token");
  EXPECT_EQ(cloud->tier, "cloud");
  EXPECT_EQ(cloud->pricePerCall, 0.0002);

  struct Row {
    std::string body;
    std::string url;  // as kept
  } rows[] = {
      {R"({"kind":"http","url":"http://fn.example/run"})", "http://fn.example/run"},  // no {function}
      {R"({"kind":"http","url":"http://{function}.knative.example"})", "http://{function}.knative.example"},
      {R"({"kind":"http","url":"http://lambda.example/?fn={function}"})", "http://lambda.example/?fn={function}"},
      {R"({"kind":"http","url":"http://[::1]:9000/{function}"})", "http://[::1]:9000/{function}"},
      {R"({"kind":"tern","url":"http://node-b/"})", "http://node-b"},  // tern adds /fn/FUNCTION
      {R"({"kind":"tern","url":"http://node-b:8080/prefix"})", "http://node-b:8080/prefix"},
      {R"({"kind":"tern","url":"http://node-b","token_file":null})", "http://node-b"},
      {R"({"name":"p","kind":"tern","url":"http://h"})", "http://h"},  // the name as in the path
  };
  for (const auto& r : rows) {
    auto p = parseProvider("p", r.body);
    ASSERT_TRUE(p.ok()) << r.body << ": " << p.error().message();
    EXPECT_EQ(p->url, r.url) << r.body;
  }
}

TEST(ProviderTest, RefusesEveryBadFieldNamingIt) {
  struct Row {
    std::string name;
    std::string body;
    std::string says;
  } rows[] = {
      {"local", R"({"kind":"tern","url":"http://h"})", "\"local\""},
      {"Edge", R"({"kind":"tern","url":"http://h"})", "provider name"},
      {"-edge", R"({"kind":"tern","url":"http://h"})", "provider name"},
      {"", R"({"kind":"tern","url":"http://h"})", "provider name"},
      {"p", "", "JSON object"},
      {"p", "not json", "JSON object"},
      {"p", R"(["tern"])", "JSON object"},
      {"p", R"({"name":"q","kind":"tern","url":"http://h"})", "\"name\""},
      {"p", R"({"url":"http://h"})", "\"kind\" is required"},
      {"p", R"({"kind":"lambda","url":"http://h"})", "\"kind\""},
      {"p", R"({"kind":1,"url":"http://h"})", "\"kind\""},
      {"p", R"({"kind":"tern"})", "\"url\" is required"},
      {"p", R"({"kind":"tern","url":7})", "\"url\" must be a string"},
      {"p", R"({"kind":"tern","url":"https://h"})", "plain HTTP"},
      {"p", R"({"kind":"http","url":"https://h/{function}"})", "plain HTTP"},
      {"p", R"({"kind":"tern","url":"h:8080"})", "must start with http://"},
      {"p", R"({"kind":"tern","url":"ftp://h"})", "must start with http://"},
      {"p", R"({"kind":"tern","url":"http://"})", "no host"},
      {"p", R"({"kind":"tern","url":"http:///fn"})", "no host"},
      {"p", R"({"kind":"tern","url":"http://:8080"})", "no host"},
      {"p", R"({"kind":"tern","url":"http://h:"})", "empty port"},
      {"p", R"({"kind":"tern","url":"http://h:0"})", "port"},
      {"p", R"({"kind":"tern","url":"http://h:65536"})", "port"},
      {"p", R"({"kind":"tern","url":"http://h:80a"})", "port"},
      {"p", R"({"kind":"tern","url":"http://h h"})", "host"},
      {"p", R"({"kind":"tern","url":"http://user:pw@h"})", "credentials"},
      {"p", R"({"kind":"tern","url":"http://[::1"})", "IPv6"},
      {"p", R"({"kind":"tern","url":"http://[::1]x"})", "IPv6"},
      {"p", R"({"kind":"tern","url":"http://h/a b"})", "path"},
      {"p", R"({"kind":"tern","url":"http://h/a#b"})", "fragment"},
      {"p", R"({"kind":"tern","url":"http://h/{function}"})", "no {function}"},
      {"p", R"({"kind":"http","url":"http://h/{function}/{function}"})", "at most once"},
      {"p", R"({"kind":"http","url":"http://h/{name}"})", "braces"},
      {"p", R"({"kind":"http","url":"http://h/{function"})", "braces"},
      {"p", R"({"kind":"tern","url":"http://h","token_file":"token"})", "\"token_file\" must be an absolute path"},
      {"p", R"({"kind":"tern","url":"http://h","token_file":""})", "\"token_file\""},
      {"p", R"({"kind":"tern","url":"http://h","token_file":5})", "\"token_file\""},
      {"p", R"({"kind":"tern","url":"http://h","tier":"fog"})", "\"tier\""},
      {"p", R"({"kind":"tern","url":"http://h","tier":null})", "\"tier\""},
      {"p", R"({"kind":"tern","url":"http://h","price_per_call":-0.1})", "\"price_per_call\""},
      {"p", R"({"kind":"tern","url":"http://h","price_per_call":"1"})", "\"price_per_call\""},
      {"p", R"({"kind":"tern","url":"http://h","price_per_call":true})", "\"price_per_call\""},
      {"p", R"({"kind":"tern","url":"http://h","token":"secret"})", "unknown field \"token\""},
      {"p", R"({"kind":"tern","url":"http://h","price":1})", "unknown field \"price\""},
  };
  for (const auto& r : rows) {
    auto p = parseProvider(r.name, r.body);
    ASSERT_FALSE(p.ok()) << "accepted " << r.name << " " << r.body;
    EXPECT_EQ(p.error().code(), ErrorCode::kInvalidArgument) << r.body;
    EXPECT_NE(p.error().message().find(r.says), std::string::npos) << r.body << " -> " << p.error().message();
  }
  std::string longUrl = fmt::format("http://h/{}", std::string(3000, 'a'));
  auto tooLong = parseProvider("p", json{{"kind", "tern"}, {"url", longUrl}}.dump());
  ASSERT_FALSE(tooLong.ok());
  EXPECT_NE(tooLong.error().message().find("\"url\""), std::string::npos);
}

TEST(ProviderTest, JsonRoundTripsThroughTheParser) {
  Provider p;
  p.name = "faas";
  p.kind = Kind::kHttp;
  p.url = "http://gw:8080/function/{function}";
  p.tokenFile = "/run/faas.token";
  p.tier = "cloud";
  p.pricePerCall = 0.5;
  json j = json::parse(providerJson(p));
  EXPECT_EQ(j, json::parse(R"({"name":"faas","kind":"http","url":"http://gw:8080/function/{function}",)"
                           R"("token_file":"/run/faas.token","tier":"cloud","price_per_call":0.5})"));
  auto back = parseProvider("faas", providerJson(p));
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_EQ(back->kind, p.kind);
  EXPECT_EQ(back->url, p.url);
  EXPECT_EQ(back->tokenFile, p.tokenFile);
  EXPECT_EQ(back->tier, p.tier);
  EXPECT_EQ(back->pricePerCall, p.pricePerCall);

  Provider plain;
  plain.name = "edge";
  plain.url = "http://e";
  EXPECT_FALSE(json::parse(providerJson(plain)).contains("token_file"));
  EXPECT_EQ(json::parse(providerJson(plain))["kind"], "tern");
}

TEST(RouteTest, ParsesRoutes) {
  auto r = parseRoute("resize", R"({"providers":["local","edge-b","faas"],"policy":"cheapest-within:80"})");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->function, "resize");
  EXPECT_EQ(r->providers, (std::vector<std::string>{"local", "edge-b", "faas"}));
  EXPECT_EQ(r->policy.kind, K::kCheapestWithin);
  EXPECT_EQ(r->policy.boundMs, 80);

  auto byDefault = parseRoute("resize", R"({"providers":["faas"]})");
  ASSERT_TRUE(byDefault.ok());
  EXPECT_EQ(byDefault->policy.kind, K::kLowestLatency);

  // Under single, the route's first provider is the one used.
  auto single = parseRoute("resize", R"({"function":"resize","providers":["edge-b","local"],"policy":"single"})");
  ASSERT_TRUE(single.ok());
  EXPECT_EQ(single->policy.kind, K::kSingle);
  EXPECT_EQ(single->providers.front(), "edge-b");

  json sixteen = json::array();
  for (int i = 0; i < 16; ++i) sixteen.push_back(fmt::format("p{}", i));
  EXPECT_TRUE(parseRoute("f", json{{"providers", sixteen}}.dump()).ok());

  auto back = parseRoute("resize", routeJson(*r));
  ASSERT_TRUE(back.ok()) << routeJson(*r);
  EXPECT_EQ(back->providers, r->providers);
  EXPECT_EQ(policyText(back->policy), "cheapest-within:80");
  EXPECT_EQ(json::parse(routeJson(*r)),
            json::parse(R"({"function":"resize","providers":["local","edge-b","faas"],"policy":"cheapest-within:80"})"));
}

TEST(RouteTest, RefusesEveryBadFieldNamingIt) {
  json seventeen = json::array();
  for (int i = 0; i < 17; ++i) seventeen.push_back(fmt::format("p{}", i));
  struct Row {
    std::string function;
    std::string body;
    std::string says;
  } rows[] = {
      {"Resize", R"({"providers":["local"]})", "function name"},
      {"", R"({"providers":["local"]})", "function name"},
      {"f", "", "JSON object"},
      {"f", "[]", "JSON object"},
      {"f", R"({"function":"g","providers":["local"]})", "\"function\""},
      {"f", R"({"policy":"weighted"})", "\"providers\" is required"},
      {"f", R"({"providers":[]})", "\"providers\""},
      {"f", R"({"providers":"local"})", "\"providers\""},
      {"f", json{{"providers", seventeen}}.dump(), "1 to 16"},
      {"f", R"({"providers":["local",3]})", "\"providers\""},
      {"f", R"({"providers":["local","Edge"]})", "\"Edge\""},
      {"f", R"({"providers":["local","a/b"]})", "\"a/b\""},
      {"f", R"({"providers":["edge","local","edge"]})", "\"edge\" twice"},
      {"f", R"({"providers":["local"],"policy":"fastest"})", "\"policy\": unknown policy"},
      {"f", R"({"providers":["local"],"policy":"cheapest-within:0"})", "\"policy\""},
      {"f", R"({"providers":["local"],"policy":"wasm:"})", "\"policy\""},
      {"f", R"({"providers":["local"],"policy":null})", "\"policy\" must be a string"},
      {"f", R"({"providers":["local"],"fallback":"local"})", "unknown field \"fallback\""},
  };
  for (const auto& r : rows) {
    auto p = parseRoute(r.function, r.body);
    ASSERT_FALSE(p.ok()) << "accepted " << r.function << " " << r.body;
    EXPECT_EQ(p.error().code(), ErrorCode::kInvalidArgument) << r.body;
    EXPECT_NE(p.error().message().find(r.says), std::string::npos) << r.body << " -> " << p.error().message();
  }
}

TEST(ProviderTest, KindNames) {
  EXPECT_EQ(kindName(Kind::kTern), "tern");
  EXPECT_EQ(kindName(Kind::kHttp), "http");
}

}  // namespace
}  // namespace tern::providers
