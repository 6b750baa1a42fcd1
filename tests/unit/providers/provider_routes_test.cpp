// /v1/providers and /v1/routes as docs/http-api.md ("Providers") describes them, driven
// through handleProviderRequest with http::Request values (no server): each route, bad
// bodies and names, 405 with Allow, 404, 409, the router's statistics in the listing and
// the change notifications. Then the `tern provider` and `tern route` commands against the
// same routes behind tern's HTTP server, so the CLI's bodies are those the node takes.

#include "providers/provider_routes.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <optional>
#include <sstream>

#include "cli/provider_commands.h"
#include "http/http_server.h"
#include "test_support.h"

namespace tern::providers {
namespace {

using json = nlohmann::json;

class ProviderRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = ProviderStore::open(dir_.path() / "providers.db");
    ASSERT_TRUE(s.ok()) << s.error().describe();
    store_ = std::move(*s);
  }

  ProviderRoutes routes() {
    return ProviderRoutes{*store_, [this] { return stats_; }, [this] { ++changes_; }};
  }

  http::Response call(std::string method, std::string path, std::string body = {}) {
    return callWith(routes(), std::move(method), std::move(path), std::move(body));
  }

  static http::Response callWith(const ProviderRoutes& r, std::string method, std::string path, std::string body) {
    http::Request req;
    req.method = std::move(method);
    req.target = path;
    req.path = std::move(path);
    req.body = std::move(body);
    std::optional<http::Response> answer;
    handleProviderRequest(r, std::move(req), [&answer](http::Response resp) { answer = std::move(resp); });
    EXPECT_TRUE(answer.has_value()) << "no answer";
    return answer.value_or(http::Response{});
  }

  static json body(const http::Response& r) {
    EXPECT_EQ(r.contentType, "application/json");
    json j = json::parse(r.body, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.body;
    return j;
  }

  // The error code of a JSON error answer ({"error": {"code", "message"}}).
  static std::string errorCode(const http::Response& r) {
    json j = body(r);
    if (!j.contains("error") || !j["error"].is_object()) return "(not an error: " + r.body + ")";
    EXPECT_TRUE(j["error"]["message"].is_string()) << r.body;
    return j["error"].value("code", "");
  }

  static std::string allowOf(const http::Response& r) {
    for (const auto& h : r.headers) {
      if (h.name == "Allow") return h.value;
    }
    return "";
  }

  test::TempDir dir_;
  std::unique_ptr<ProviderStore> store_;
  json stats_ = json::object();
  int changes_ = 0;
};

constexpr std::string_view kEdge2 = R"({"kind": "tern", "url": "http://10.0.0.2:8080", "tier": "edge"})";
constexpr std::string_view kCloud =
    R"({"kind": "http", "url": "http://gw.example:8080/function/{function}", "tier": "cloud",
        "price_per_call": 0.0002})";

TEST_F(ProviderRoutesTest, ListsLocalFirstWithTheRoutersStatistics) {
  stats_ = {{"local", {{{"function", "resize"}, {"samples", 3}, {"ewma_ms", 4.5}, {"p95_ms", 9.0},
                        {"failure_rate", 0.0}, {"in_flight", 1}}}}};
  auto r = call("GET", "/v1/providers");
  EXPECT_EQ(r.status, 200) << r.body;
  json j = body(r);
  ASSERT_TRUE(j["providers"].is_array()) << r.body;
  ASSERT_EQ(j["providers"].size(), 1u);
  const json& local = j["providers"][0];
  EXPECT_EQ(local["name"], "local");
  EXPECT_EQ(local["kind"], "local");
  EXPECT_TRUE(local.contains("tier"));
  EXPECT_EQ(local["functions"], stats_["local"]);
  EXPECT_EQ(changes_, 0);

  ASSERT_EQ(call("PUT", "/v1/providers/edge2", std::string(kEdge2)).status, 200);
  ASSERT_EQ(call("PUT", "/v1/providers/cloud", std::string(kCloud)).status, 200);
  stats_["edge2"] = json::array({{{"function", "resize"}, {"samples", 7}, {"ewma_ms", 12.0}, {"p95_ms", 20.0},
                                  {"failure_rate", 0.1}, {"in_flight", 0}}});
  stats_["gone"] = json::array({{{"function", "x"}}});  // a provider the store no longer has
  j = body(call("GET", "/v1/providers"));
  ASSERT_EQ(j["providers"].size(), 3u) << j.dump();
  EXPECT_EQ(j["providers"][0]["name"], "local");
  // Then the store's providers, in name order, each with its statistics or none.
  const json& cloud = j["providers"][1];
  EXPECT_EQ(cloud["name"], "cloud");
  EXPECT_EQ(cloud["kind"], "http");
  EXPECT_EQ(cloud["url"], "http://gw.example:8080/function/{function}");
  EXPECT_EQ(cloud["tier"], "cloud");
  EXPECT_DOUBLE_EQ(cloud["price_per_call"].get<double>(), 0.0002);
  EXPECT_EQ(cloud["functions"], json::array());
  const json& edge = j["providers"][2];
  EXPECT_EQ(edge["name"], "edge2");
  EXPECT_EQ(edge["functions"], stats_["edge2"]);
}

TEST_F(ProviderRoutesTest, WorksWithoutStatisticsOrAListener) {
  ProviderRoutes bare{*store_, nullptr, nullptr};
  EXPECT_EQ(callWith(bare, "PUT", "/v1/providers/edge2", std::string(kEdge2)).status, 200);
  json j = body(callWith(bare, "GET", "/v1/providers", ""));
  ASSERT_EQ(j["providers"].size(), 2u);
  EXPECT_EQ(j["providers"][0]["functions"], json::array());
  EXPECT_EQ(j["providers"][1]["functions"], json::array());
  EXPECT_EQ(callWith(bare, "DELETE", "/v1/providers/edge2", "").status, 200);
}

TEST_F(ProviderRoutesTest, PutAnswersTheProviderAndReplacesIt) {
  auto r = call("PUT", "/v1/providers/edge2", std::string(kEdge2));
  ASSERT_EQ(r.status, 200) << r.body;
  json p = body(r);
  EXPECT_EQ(p["name"], "edge2");
  EXPECT_EQ(p["kind"], "tern");
  EXPECT_EQ(p["url"], "http://10.0.0.2:8080");
  EXPECT_EQ(p["tier"], "edge");
  EXPECT_EQ(changes_, 1);
  ASSERT_TRUE(store_->provider("edge2")->has_value());

  r = call("PUT", "/v1/providers/edge2",
           R"({"kind": "tern", "url": "http://10.0.0.3:8080", "token_file": "/etc/tern/edge2.token"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(body(r)["token_file"], "/etc/tern/edge2.token");
  EXPECT_EQ(changes_, 2);
  auto stored = store_->provider("edge2");
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->url, "http://10.0.0.3:8080");
  EXPECT_EQ((*stored)->tokenFile, "/etc/tern/edge2.token");
}

TEST_F(ProviderRoutesTest, BadProviderBodiesAndNamesAre400AndChangeNothing) {
  for (std::string bad : {std::string("not json"), std::string("[1]"), std::string(""),
                          std::string(R"({"url": "http://h:1"})"),                           // no kind
                          std::string(R"({"kind": "ftp", "url": "http://h:1"})"),             // unknown kind
                          std::string(R"({"kind": "tern"})"),                                 // no url
                          std::string(R"({"kind": "tern", "url": "ftp://h"})"),               // not http://
                          std::string(R"({"kind": "tern", "url": "http://h:1", "tier": "moon"})"),
                          std::string(R"({"kind": "tern", "url": "http://h:1", "price_per_call": -1})")}) {
    auto r = call("PUT", "/v1/providers/edge2", bad);
    EXPECT_EQ(r.status, 400) << bad << " -> " << r.body;
    EXPECT_EQ(errorCode(r), "invalid_argument") << bad;
  }
  for (std::string path : {"/v1/providers/local", "/v1/providers/Edge_2", "/v1/providers/",
                           "/v1/providers/a/b", "/v1/providers/-x"}) {
    auto r = call("PUT", path, std::string(kEdge2));
    EXPECT_EQ(r.status, 400) << path << " -> " << r.body;
    EXPECT_EQ(errorCode(r), "invalid_argument") << path;
  }
  EXPECT_EQ(call("DELETE", "/v1/providers/local").status, 400);
  EXPECT_EQ(changes_, 0);
  EXPECT_TRUE(store_->providers()->empty());
}

TEST_F(ProviderRoutesTest, DeleteIs404WhenUnknown409WhileARouteNamesItAnd200Then) {
  auto unknown = call("DELETE", "/v1/providers/edge2");
  EXPECT_EQ(unknown.status, 404) << unknown.body;
  EXPECT_EQ(errorCode(unknown), "not_found");

  ASSERT_EQ(call("PUT", "/v1/providers/edge2", std::string(kEdge2)).status, 200);
  ASSERT_EQ(call("PUT", "/v1/routes/resize", R"({"providers": ["local", "edge2"], "policy": "round-robin"})").status,
            200);
  int before = changes_;
  auto used = call("DELETE", "/v1/providers/edge2");
  EXPECT_EQ(used.status, 409) << used.body;
  EXPECT_EQ(errorCode(used), "conflict");
  EXPECT_NE(body(used)["error"]["message"].get<std::string>().find("resize"), std::string::npos) << used.body;
  EXPECT_EQ(changes_, before);

  ASSERT_EQ(call("DELETE", "/v1/routes/resize").status, 200);
  auto removed = call("DELETE", "/v1/providers/edge2");
  EXPECT_EQ(removed.status, 200) << removed.body;
  EXPECT_EQ(body(removed), json({{"removed", "edge2"}}));
  EXPECT_EQ(changes_, before + 2);
  EXPECT_FALSE(store_->provider("edge2")->has_value());
}

TEST_F(ProviderRoutesTest, RoutesArePutListedAndRemoved) {
  auto put = call("PUT", "/v1/routes/resize", R"({"providers": ["local", "edge2", "cloud"], "policy": "lowest-latency"})");
  ASSERT_EQ(put.status, 200) << put.body;
  json r = body(put);
  EXPECT_EQ(r["function"], "resize");
  EXPECT_EQ(r["providers"], json({"local", "edge2", "cloud"}));
  EXPECT_EQ(r["policy"], "lowest-latency");
  EXPECT_EQ(changes_, 1);
  ASSERT_EQ(call("PUT", "/v1/routes/echo", R"({"providers": ["local"], "policy": "single"})").status, 200);

  auto list = call("GET", "/v1/routes");
  ASSERT_EQ(list.status, 200) << list.body;
  json routes = body(list)["routes"];
  ASSERT_EQ(routes.size(), 2u) << list.body;
  EXPECT_EQ(routes[0]["function"], "echo");
  EXPECT_EQ(routes[1], r);

  // Replacing a route keeps one route per function.
  ASSERT_EQ(call("PUT", "/v1/routes/resize", R"({"providers": ["edge2"], "policy": "single"})").status, 200);
  routes = body(call("GET", "/v1/routes"))["routes"];
  ASSERT_EQ(routes.size(), 2u);
  EXPECT_EQ(routes[1]["providers"], json({"edge2"}));

  auto removed = call("DELETE", "/v1/routes/resize");
  EXPECT_EQ(removed.status, 200) << removed.body;
  EXPECT_EQ(body(removed), json({{"removed", "resize"}}));
  auto again = call("DELETE", "/v1/routes/resize");
  EXPECT_EQ(again.status, 404) << again.body;
  EXPECT_EQ(errorCode(again), "not_found");
  EXPECT_EQ(changes_, 4);
  EXPECT_EQ(body(call("GET", "/v1/routes"))["routes"].size(), 1u);
}

TEST_F(ProviderRoutesTest, BadRouteBodiesAndNamesAre400AndChangeNothing) {
  std::string seventeen = "[";
  for (int i = 0; i < 17; ++i) seventeen += fmt::format("{}\"p{}\"", i ? "," : "", i);
  seventeen += "]";
  for (std::string bad : {std::string("not json"), std::string("[]"),
                          std::string(R"({"policy": "single"})"),                                   // no providers
                          std::string(R"({"providers": [], "policy": "single"})"),
                          std::string(R"({"providers": ["local", "local"], "policy": "single"})"),
                          std::string(R"({"providers": "local", "policy": "single"})"),
                          fmt::format(R"({{"providers": {}, "policy": "single"}})", seventeen),
                          std::string(R"({"providers": ["local"], "policy": "fastest"})"),
                          std::string(R"({"providers": ["local"], "policy": 3})")}) {
    auto r = call("PUT", "/v1/routes/resize", bad);
    EXPECT_EQ(r.status, 400) << bad << " -> " << r.body;
    EXPECT_EQ(errorCode(r), "invalid_argument") << bad;
  }
  for (std::string path : {"/v1/routes/Resize", "/v1/routes/", "/v1/routes/a/b"}) {
    auto r = call("PUT", path, R"({"providers": ["local"], "policy": "single"})");
    EXPECT_EQ(r.status, 400) << path << " -> " << r.body;
  }
  EXPECT_EQ(call("DELETE", "/v1/routes/Resize").status, 400);
  EXPECT_EQ(changes_, 0);
  EXPECT_TRUE(store_->routes()->empty());
}

TEST_F(ProviderRoutesTest, WrongMethodsAre405WithAllow) {
  struct Case {
    const char* method;
    const char* path;
    const char* allow;
  };
  for (const Case& c : {Case{"POST", "/v1/providers", "GET"}, Case{"DELETE", "/v1/providers", "GET"},
                        Case{"PUT", "/v1/providers", "GET"}, Case{"GET", "/v1/providers/edge2", "PUT, DELETE"},
                        Case{"POST", "/v1/providers/edge2", "PUT, DELETE"}, Case{"POST", "/v1/routes", "GET"},
                        Case{"GET", "/v1/routes/resize", "PUT, DELETE"},
                        Case{"PATCH", "/v1/routes/resize", "PUT, DELETE"}}) {
    auto r = call(c.method, c.path, "{}");
    EXPECT_EQ(r.status, 405) << c.method << " " << c.path << " -> " << r.body;
    EXPECT_EQ(allowOf(r), c.allow) << c.method << " " << c.path;
    EXPECT_EQ(errorCode(r), "invalid_argument");
  }
  EXPECT_EQ(changes_, 0);
}

TEST_F(ProviderRoutesTest, OtherPathsAre404) {
  for (const char* path : {"/v1/providersx", "/v1/routesx", "/v1/other"}) {
    auto r = call("GET", path);
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_EQ(errorCode(r), "not_found");
  }
}

// --- the CLI against the routes ---------------------------------------------------------

class ProviderCliTest : public ProviderRoutesTest {
 protected:
  void SetUp() override {
    ProviderRoutesTest::SetUp();
    http::ServerOptions o;
    o.port = 0;
    o.threads = 1;
    server_ = std::make_unique<http::Server>(
        o, [](std::string_view, std::string_view) { return size_t{1} << 20; },
        [this](http::Request&& req, http::Respond respond) {
          handleProviderRequest(routes(), std::move(req), std::move(respond));
        });
    auto started = server_->start();
    ASSERT_TRUE(started.ok()) << started.error().describe();
    node_.node = fmt::format("http://127.0.0.1:{}", server_->port());
    node_.token = "t0ken";
  }
  void TearDown() override {
    if (server_) server_->stop(std::chrono::milliseconds(1000));
  }

  std::unique_ptr<http::Server> server_;
  cli::NodeOptions node_;
};

TEST_F(ProviderCliTest, AddRouteListAndRemoveAsAUserWould) {
  std::ostringstream out, err;
  cli::ProviderAddOptions add;
  add.name = "edge2";
  add.kind = "tern";
  add.url = "http://10.0.0.2:8080";
  add.tokenFile = "/etc/tern/edge2.token";
  ASSERT_EQ(cli::providerAddCommand(node_, add, out, err), 0) << err.str();
  EXPECT_EQ(out.str(), "added provider edge2 (tern http://10.0.0.2:8080, edge, free)\n");
  cli::ProviderAddOptions cloud;
  cloud.name = "cloud";
  cloud.kind = "http";
  cloud.url = "http://gw.example:8080/function/{function}";
  cloud.tier = "cloud";
  cloud.pricePerCall = 0.0002;
  ASSERT_EQ(cli::providerAddCommand(node_, cloud, out, err), 0) << err.str();
  auto stored = store_->provider("cloud");
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->kind, Kind::kHttp);
  EXPECT_EQ((*stored)->tier, "cloud");
  EXPECT_DOUBLE_EQ((*stored)->pricePerCall, 0.0002);

  cli::RouteSetOptions set;
  set.function = "resize";
  set.providers = {"local", "edge2", "cloud"};
  set.policy = "cheapest-within:50";
  out.str("");
  ASSERT_EQ(cli::routeSetCommand(node_, set, out, err), 0) << err.str();
  EXPECT_EQ(out.str().rfind("route resize: local, edge2, cloud (cheapest-within:50", 0), 0u) << out.str();
  auto route = store_->route("resize");
  ASSERT_TRUE(route.ok() && route->has_value());
  EXPECT_EQ((*route)->policy.kind, PolicySpec::Kind::kCheapestWithin);
  EXPECT_DOUBLE_EQ((*route)->policy.boundMs, 50);

  out.str("");
  ASSERT_EQ(cli::routeListCommand(node_, out, err), 0) << err.str();
  EXPECT_NE(out.str().find("resize    local,edge2,cloud"), std::string::npos) << out.str();

  stats_ = {{"edge2", {{{"function", "resize"}, {"samples", 4}, {"ewma_ms", 12.0}, {"p95_ms", 20.0},
                        {"failure_rate", 0.25}, {"in_flight", 1}}}}};
  out.str("");
  ASSERT_EQ(cli::providerListCommand(node_, out, err), 0) << err.str();
  EXPECT_NE(out.str().find("edge2     tern   edge   0       resize    4        12.0     20.0    25.0       1"),
            std::string::npos)
      << out.str();

  // The node refuses to remove a provider a route names: the conflict's status, one line.
  out.str("");
  err.str("");
  EXPECT_EQ(cli::providerRemoveCommand(node_, "edge2", out, err), errorKind(ErrorCode::kConflict).exitStatus);
  EXPECT_EQ(err.str().rfind("tern: conflict: ", 0), 0u) << err.str();
  EXPECT_NE(err.str().find("resize"), std::string::npos) << err.str();
  EXPECT_EQ(out.str(), "");

  ASSERT_EQ(cli::routeRemoveCommand(node_, "resize", out, err), 0) << err.str();
  ASSERT_EQ(cli::providerRemoveCommand(node_, "edge2", out, err), 0) << err.str();
  EXPECT_EQ(out.str(), "removed route resize\nremoved provider edge2\n");
  err.str("");
  EXPECT_EQ(cli::routeRemoveCommand(node_, "resize", out, err), errorKind(ErrorCode::kNotFound).exitStatus);
  EXPECT_EQ(err.str().rfind("tern: not found: ", 0), 0u) << err.str();

  // --json prints the node's answer as it came.
  node_.format = cli::OutputFormat::kJson;
  out.str("");
  ASSERT_EQ(cli::routeListCommand(node_, out, err), 0) << err.str();
  EXPECT_EQ(out.str(), "{\"routes\":[]}\n");
}

}  // namespace
}  // namespace tern::providers
