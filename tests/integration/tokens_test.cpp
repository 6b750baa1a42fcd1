// Scoped tokens on a real ternd: `tern token create|ls|revoke`, every refusal (401 naming
// why, 403 naming the scope, 429 with Retry-After) while other clients are served, every
// /v1 route of the table checked, --invoke-auth required over HTTP and CoAP, and in a
// cluster: a token made or revoked on one node seen on the other through its watch, checks
// that never wait for JetStream, and a node cut off from NATS failing closed.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "cluster_fixture.h"
#include "raw_coap.h"
#include "raw_http.h"
#include "ternd_process.h"
#include "test_support.h"
#include "triggers/access.h"
#include "util/subprocess.h"

namespace tern {
namespace {

using json = nlohmann::json;

constexpr uint8_t kCoapGet = 1;

std::map<std::string, std::string> bearer(const std::string& token) {
  return {{"Authorization", "Bearer " + token}};
}

// The reason and scope_needed of a refusal's JSON error.
std::pair<std::string, std::string> refusalOf(const test::HttpReply& r) {
  json doc = json::parse(r.body, nullptr, false);
  if (!doc.is_object() || !doc.contains("error")) return {"(no error)", ""};
  const json& e = doc["error"];
  return {e.value("reason", std::string("(none)")), e.value("scope_needed", std::string())};
}

class TokensTest : public ::testing::Test {
 protected:
  test::TempDir dir;

  // Makes a token through POST /v1/tokens with the node's admin token.
  static std::string make(test::TerndProcess& node, const json& body) {
    auto r = test::request(node.port(), "POST", "/v1/tokens", body.dump(), node.auth());
    EXPECT_EQ(r.status, 201) << r.raw;
    json doc = json::parse(r.body, nullptr, false);
    return doc.is_object() ? doc.value("token", std::string()) : std::string();
  }
  static void deploy(test::TerndProcess& node, const std::string& name, const char* guest) {
    auto r = test::request(node.port(), "PUT", "/v1/functions/" + name,
                           test::readText(test::guestsDir() / (std::string(guest) + ".wasm")), node.auth());
    ASSERT_EQ(r.status, 201) << r.raw;
  }
  // The tern CLI against the node with `token`: exit status, stdout, stderr.
  struct Run {
    int status = -1;
    std::string out, err;
  };
  Run tern(test::TerndProcess& node, const std::string& token, std::vector<std::string> args) {
    std::vector<std::string> argv{"sh", "-c", "\"$0\" \"$@\" >out 2>err", (test::binDir() / "tern").string(),
                                  "--node", "http://127.0.0.1:" + std::to_string(node.port()), "--token", token};
    argv.insert(argv.end(), args.begin(), args.end());
    SubprocessOptions o;
    o.workingDirectory = dir.path().string();
    auto r = runSubprocess(argv, o);
    EXPECT_TRUE(r.ok());
    return Run{r.ok() ? r->exitStatus : -1, test::readText(dir.path() / "out"), test::readText(dir.path() / "err")};
  }
};

TEST_F(TokensTest, CreateListAndRevokeWithTheCli) {
  test::TerndProcess node(dir.path() / "data", {"--coap-listen", "off"});
  auto created = tern(node, node.token(), {"token", "create", "ci", "--scope", "deploy,read", "--expires-in", "30d",
                                           "--rate", "50"});
  ASSERT_EQ(created.status, 0) << created.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(created.out, m, std::regex("tern_[0-9a-f]{16}_[0-9a-f]{64}"))) << created.out;
  std::string token = m.str();
  EXPECT_NE(created.out.find("deploy,read"), std::string::npos) << created.out;

  auto ls = tern(node, node.token(), {"token", "ls"});
  ASSERT_EQ(ls.status, 0) << ls.err;
  EXPECT_NE(ls.out.find("ci"), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find("deploy,read"), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find("50/s"), std::string::npos) << ls.out;
  EXPECT_EQ(ls.out.find(token.substr(22)), std::string::npos) << "ls shows the secret: " << ls.out;
  auto lsJson = tern(node, node.token(), {"token", "ls", "--json"});
  EXPECT_EQ(lsJson.out.find(token.substr(22)), std::string::npos);
  EXPECT_EQ(lsJson.out.find("hash"), std::string::npos) << lsJson.out;

  // The token does what its scopes say, with the CLI too.
  deploy(node, "cgi", "cgi");
  auto list = tern(node, token, {"ls"});
  EXPECT_EQ(list.status, 0) << list.err;
  auto denied = tern(node, token, {"token", "ls"});
  EXPECT_EQ(denied.status, 83) << denied.out << denied.err;
  EXPECT_NE(denied.err.find("admin"), std::string::npos) << denied.err;
  // A name is taken until its token is revoked.
  auto twice = tern(node, node.token(), {"token", "create", "ci", "--scope", "read"});
  EXPECT_EQ(twice.status, 77) << twice.err;

  auto revoked = tern(node, node.token(), {"token", "revoke", "ci"});
  ASSERT_EQ(revoked.status, 0) << revoked.err;
  auto after = test::request(node.port(), "GET", "/v1/functions", "", bearer(token));
  EXPECT_EQ(after.status, 401) << after.raw;
  EXPECT_EQ(refusalOf(after).first, "revoked");
  EXPECT_EQ(tern(node, node.token(), {"token", "ls"}).out, "no tokens\n");
  EXPECT_EQ(tern(node, node.token(), {"token", "revoke", "ci"}).status, 76);

  // Bad input is refused with the option named, and nothing is stored.
  auto badScope = tern(node, node.token(), {"token", "create", "x", "--scope", "write"});
  EXPECT_EQ(badScope.status, 64);
  EXPECT_NE(badScope.err.find("unknown scope \"write\""), std::string::npos) << badScope.err;
  auto badDuration = tern(node, node.token(), {"token", "create", "x", "--scope", "read", "--expires-in", "soon"});
  EXPECT_EQ(badDuration.status, 64);
  EXPECT_NE(badDuration.err.find("--expires-in"), std::string::npos) << badDuration.err;
  EXPECT_EQ(tern(node, node.token(), {"token", "ls"}).out, "no tokens\n");
}

TEST_F(TokensTest, EachRefusalSaysWhyAndOtherClientsAreServed) {
  test::TerndProcess node(dir.path() / "data", {"--coap-listen", "off"});
  std::string reader = make(node, {{"name", "reader"}, {"scopes", {"read"}}});
  std::string gone = make(node, {{"name", "gone"}, {"scopes", {"read"}}});
  ASSERT_EQ(test::request(node.port(), "DELETE", "/v1/tokens/gone", "", node.auth()).status, 200);
  std::string brief = make(node, {{"name", "brief"}, {"scopes", {"read"}}, {"expires_in_s", 1}});

  struct Case {
    std::map<std::string, std::string> headers;
    int status;
    const char* reason;
  };
  const Case cases[] = {
      {{}, 401, "missing"},
      {{{"Authorization", "Basic dXNlcjpwdw=="}}, 401, "malformed"},
      {bearer("not-a-token"), 401, "malformed"},
      {bearer("tern_0123456789abcdef_" + std::string(64, '0')), 401, "unknown"},
      {bearer(reader.substr(0, 22) + std::string(64, '0')), 401, "unknown"},
      {bearer(gone), 401, "revoked"},
  };
  for (const auto& c : cases) {
    auto r = test::request(node.port(), "GET", "/v1/functions", "", c.headers);
    EXPECT_EQ(r.status, c.status) << r.raw;
    EXPECT_EQ(refusalOf(r).first, c.reason) << r.raw;
    EXPECT_NE(r.headers["www-authenticate"].find("Bearer"), std::string::npos) << r.raw;
    // Meanwhile a client with a valid token is served.
    EXPECT_EQ(test::request(node.port(), "GET", "/v1/functions", "", bearer(reader)).status, 200);
  }
  // Wrong scope: 403 naming the scope needed.
  auto forbidden = test::request(node.port(), "PUT", "/v1/functions/x", "\0asm", bearer(reader));
  EXPECT_EQ(forbidden.status, 403) << forbidden.raw;
  EXPECT_EQ(refusalOf(forbidden), (std::pair<std::string, std::string>{"scope", "deploy"}));
  EXPECT_EQ(test::request(node.port(), "GET", "/v1/status", "", bearer(reader)).status, 200);
  // Expired: the token works until its second is over, then is refused as expired.
  EXPECT_TRUE(test::eventually([&] {
    return refusalOf(test::request(node.port(), "GET", "/v1/functions", "", bearer(brief))).first == "expired";
  }));
  auto ls = json::parse(test::request(node.port(), "GET", "/v1/tokens", "", node.auth()).body);
  ASSERT_EQ(ls["tokens"].size(), 2u) << ls.dump();
  EXPECT_EQ(ls["tokens"][0]["name"], "brief");
  EXPECT_EQ(ls["tokens"][0]["expired"], true);
  // Malformed requests to make tokens.
  for (const char* body : {"", "[]", R"({"name":"x"})", R"({"name":"x","scopes":["read"],"rate":-1})",
                           R"({"name":"x","scopes":["read"],"expires_in_s":0})", R"({"name":"x","scopes":[],"k":1})"}) {
    auto r = test::request(node.port(), "POST", "/v1/tokens", body, node.auth());
    EXPECT_EQ(r.status, 400) << body << " -> " << r.raw;
  }
}

// A path of the pattern's shape, and a token (of `tokens`) that does not grant the row.
std::string instantiate(std::string_view pattern) {
  std::string out(pattern);
  for (auto [from, to] : {std::pair{std::string_view("{fn}"), "x1"}, std::pair{std::string_view("{wf}"), "w1"},
                          std::pair{std::string_view("{}"), "x1"}}) {
    for (size_t at; (at = out.find(from)) != std::string::npos;) out.replace(at, from.size(), to);
  }
  return out;
}

TEST_F(TokensTest, EveryRouteOfTheTableChecksItsScope) {
  test::TerndProcess node(dir.path() / "data", {"--coap-listen", "off"});
  std::string reader = make(node, {{"name", "reader"}, {"scopes", {"read"}}});
  std::string deployer = make(node, {{"name", "deployer"}, {"scopes", {"deploy"}}});
  std::string both = make(node, {{"name", "both"}, {"scopes", {"read", "deploy", "invoke:other"}}});
  size_t walked = 0;
  for (const auto& rule : triggers::managementRoutes()) {
    std::string method(rule.method);
    std::string path = instantiate(rule.pattern);
    std::string what = method + " " + path;
    // No token: 401, before the route does anything.
    auto none = test::request(node.port(), method, path);
    EXPECT_EQ(none.status, 401) << what << " -> " << none.raw;
    // A token whose scopes do not grant the row: 403 naming the scope.
    const std::string& lacking = rule.need == triggers::Need::kRead || rule.need == triggers::Need::kInvocationRecord
                                     ? deployer
                                 : rule.need == triggers::Need::kDeploy ? reader
                                                                        : both;
    auto refused = test::request(node.port(), method, path, "", bearer(lacking));
    EXPECT_EQ(refused.status, 403) << what << " -> " << refused.raw;
    EXPECT_EQ(refusalOf(refused).first, "scope") << what;
    EXPECT_FALSE(refusalOf(refused).second.empty()) << what;
    // The admin token passes the check (whatever the route then answers).
    auto admin = test::request(node.port(), method, path, "", node.auth());
    EXPECT_NE(admin.status, 401) << what << " -> " << admin.raw;
    EXPECT_NE(admin.status, 403) << what << " -> " << admin.raw;
    EXPECT_NE(admin.status, 0) << what;
    ++walked;
  }
  EXPECT_GE(walked, 40u);
  // What the table does not list is not reached, with any token.
  EXPECT_EQ(test::request(node.port(), "GET", "/v1/secret").status, 401);
  EXPECT_EQ(test::request(node.port(), "GET", "/v1/secret", "", bearer(reader)).status, 404);
  auto wrong = test::request(node.port(), "PATCH", "/v1/functions/x1", "", bearer(reader));
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(wrong.headers["allow"], "GET, PUT, DELETE");
}

TEST_F(TokensTest, InvokeAuthRequiredOverHttpAndCoap) {
  test::TerndProcess node(dir.path() / "data", {"--invoke-auth", "required"});
  ASSERT_NE(node.coapPort(), 0) << node.log();
  deploy(node, "cgi", "cgi");
  std::string mine = make(node, {{"name", "mine"}, {"scopes", {"invoke:cgi"}}});
  std::string other = make(node, {{"name", "other"}, {"scopes", {"invoke:other"}}});
  std::string any = make(node, {{"name", "any"}, {"scopes", {"invoke:*"}}});

  auto none = test::request(node.port(), "POST", "/fn/cgi", "hi");
  EXPECT_EQ(none.status, 401) << none.raw;
  EXPECT_EQ(refusalOf(none).first, "missing");
  auto wrong = test::request(node.port(), "POST", "/fn/cgi", "hi", bearer(other));
  EXPECT_EQ(wrong.status, 403) << wrong.raw;
  EXPECT_EQ(refusalOf(wrong).second, "invoke:cgi");
  for (const std::string* token : {&mine, &any}) {
    auto ok = test::request(node.port(), "POST", "/fn/cgi", "hi", bearer(*token));
    EXPECT_EQ(ok.status, 201) << ok.raw;  // the cgi guest answers 201
    // The caller's token never reaches the function.
    EXPECT_EQ(ok.body.find("HTTP_AUTHORIZATION"), std::string::npos) << ok.body;
    EXPECT_EQ(ok.body.find(token->substr(22)), std::string::npos) << ok.body;
  }
  EXPECT_EQ(test::request(node.port(), "POST", "/fn/cgi", "hi", node.auth()).status, 201);  // cgi answers 201
  // The tern CLI sends its token to /fn.
  auto cli = tern(node, mine, {"invoke", "cgi", "--data", "x"});
  EXPECT_EQ(cli.status, 0) << cli.err;

  // Async invocations and their records.
  auto queued = test::request(node.port(), "POST", "/v1/async/cgi", "hi", bearer(mine));
  ASSERT_EQ(queued.status, 202) << queued.raw;
  std::string location = queued.headers["location"];
  EXPECT_EQ(test::request(node.port(), "GET", location, "", bearer(mine)).status, 200);
  auto foreign = test::request(node.port(), "GET", location, "", bearer(other));
  EXPECT_EQ(foreign.status, 403) << foreign.raw;
  EXPECT_EQ(refusalOf(foreign).second, "read or invoke:cgi");
  EXPECT_EQ(test::request(node.port(), "POST", "/v1/async/cgi", "hi", bearer(other)).status, 403);

  // CoAP: the token in the Uri-Query option token=TOKEN, kept from the function.
  test::CoapSocket coap(node.coapPort());
  auto code = [&](const std::string& query) {
    auto r = coap.exchange(coap.request(kCoapGet, "fn/cgi", query));
    return r ? r->codeNumber() : 0;
  };
  EXPECT_EQ(code(""), 401);
  EXPECT_EQ(code("token=" + std::string(86, 'x')), 401);
  EXPECT_EQ(code("token=" + other), 403);
  auto ok = coap.exchange(coap.request(kCoapGet, "fn/cgi", "a=1&token=" + mine));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->codeNumber(), 205) << ok->payload;
  EXPECT_NE(ok->payload.find("QUERY_STRING=a=1\n"), std::string::npos) << ok->payload;
  EXPECT_EQ(ok->payload.find(mine.substr(22)), std::string::npos) << ok->payload;
  auto refused = coap.exchange(coap.request(kCoapGet, "fn/cgi"));
  ASSERT_TRUE(refused);
  EXPECT_NE(refused->payload.find("token=TOKEN"), std::string::npos) << refused->payload;
}

TEST_F(TokensTest, InvokeAuthOpenLeavesFunctionsOpenAndKeepsTokensFromThem) {
  test::TerndProcess node(dir.path() / "data", {"--coap-listen", "off"});
  deploy(node, "cgi", "cgi");
  EXPECT_EQ(test::request(node.port(), "POST", "/fn/cgi", "hi").status, 201);  // cgi answers 201
  auto admin = test::request(node.port(), "POST", "/fn/cgi", "hi", node.auth());
  EXPECT_EQ(admin.status, 201);
  EXPECT_EQ(admin.body.find(node.token()), std::string::npos) << admin.body;
  // A function's own credentials pass as before.
  auto own = test::request(node.port(), "POST", "/fn/cgi", "hi", bearer("the-functions-own"));
  EXPECT_NE(own.body.find("HTTP_AUTHORIZATION=Bearer the-functions-own"), std::string::npos) << own.body;
}

TEST_F(TokensTest, RateLimitsAnswer429WithRetryAfterPerToken) {
  test::TerndProcess node(dir.path() / "data", {"--invoke-auth", "required"});
  deploy(node, "cgi", "cgi");
  // One request per 100 s with a burst of 2: the third request is refused.
  std::string slow = make(node, {{"name", "slow"}, {"scopes", {"invoke:cgi", "read"}}, {"rate", 0.01}, {"burst", 2}});
  std::string other = make(node, {{"name", "other"}, {"scopes", {"invoke:cgi"}}});
  EXPECT_EQ(test::request(node.port(), "POST", "/fn/cgi", "", bearer(slow)).status, 201);  // cgi answers 201
  EXPECT_EQ(test::request(node.port(), "GET", "/v1/functions", "", bearer(slow)).status, 200);
  auto limited = test::request(node.port(), "POST", "/fn/cgi", "", bearer(slow));
  EXPECT_EQ(limited.status, 429) << limited.raw;
  EXPECT_EQ(refusalOf(limited).first, "rate_limited");
  ASSERT_FALSE(limited.headers["retry-after"].empty()) << limited.raw;
  EXPECT_GE(std::stoi(limited.headers["retry-after"]), 1);
  EXPECT_EQ(test::request(node.port(), "GET", "/v1/functions", "", bearer(slow)).status, 429);
  // Over CoAP: 4.29 with Max-Age saying when to try again (RFC 8516).
  test::CoapSocket coap(node.coapPort());
  auto coapLimited = coap.exchange(coap.request(kCoapGet, "fn/cgi", "token=" + slow));
  ASSERT_TRUE(coapLimited);
  EXPECT_EQ(coapLimited->codeNumber(), 429) << coapLimited->payload;
  EXPECT_GE(coapLimited->uintOption(14).value_or(0), 1u);
  // Another token, and the admin token, are not affected.
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(test::request(node.port(), "POST", "/fn/cgi", "", bearer(other)).status, 201);  // cgi answers 201
  }
  EXPECT_EQ(test::request(node.port(), "GET", "/v1/functions", "", node.auth()).status, 200);
}

class TokensClusterTest : public test::ClusterFixture {
 protected:
  std::unique_ptr<test::TerndProcess> node(const std::string& name, std::vector<std::string> extra = {},
                                           const std::string& url = "") {
    return startNode(name, extra, url);
  }
  // Makes a token with scope read on `n`, waiting for the node's token connection.
  static std::string make(test::TerndProcess& n, const std::string& name) {
    test::HttpReply made;
    EXPECT_TRUE(test::eventually([&] {
      made = test::request(n.port(), "POST", "/v1/tokens", R"({"name":")" + name + R"(","scopes":["read"]})",
                           n.auth());
      return made.status == 201;
    })) << made.raw;
    json doc = json::parse(made.body, nullptr, false);
    return doc.is_object() ? doc.value("token", std::string()) : std::string();
  }
  // A token check on `n`: a read route with `token`.
  static test::HttpReply check(test::TerndProcess& n, const std::string& token) {
    return test::request(n.port(), "GET", "/v1/functions", "", bearer(token));
  }
  static std::string messageOf(const test::HttpReply& r) {
    json doc = json::parse(r.body, nullptr, false);
    if (!doc.is_object() || !doc.contains("error") || !doc["error"].is_object()) return r.raw;
    return doc["error"].value("message", std::string());
  }
};

TEST_F(TokensClusterTest, ATokenMadeOnOneNodeWorksOnTheOtherAndARevocationReachesIt) {
  auto a = node("a");
  auto b = node("b");
  std::string token = make(*a, "ops");
  // b learns of the token from its watch of the bucket, not by asking at each request.
  ASSERT_TRUE(test::eventually([&] { return check(*b, token).status == 200; }));
  auto listed = json::parse(test::request(b->port(), "GET", "/v1/tokens", "", b->auth()).body);
  ASSERT_EQ(listed["tokens"].size(), 1u) << listed.dump();
  EXPECT_EQ(listed["tokens"][0]["name"], "ops");
  // The name is taken on every node.
  EXPECT_EQ(test::request(b->port(), "POST", "/v1/tokens", R"({"name":"ops","scopes":["read"]})", b->auth()).status,
            409);
  // Revoked on a: refused on a at once, and on b as soon as its watch delivers the revocation.
  ASSERT_EQ(test::request(a->port(), "DELETE", "/v1/tokens/ops", "", a->auth()).status, 200);
  EXPECT_EQ(refusalOf(check(*a, token)).first, "revoked");
  test::HttpReply refused;
  ASSERT_TRUE(test::eventually([&] {
    refused = check(*b, token);
    return refused.status == 401;
  })) << refused.raw;
  EXPECT_EQ(refusalOf(refused).first, "revoked");
  EXPECT_EQ(json::parse(test::request(b->port(), "GET", "/v1/tokens", "", b->auth()).body)["tokens"].size(), 0u);
  EXPECT_GE(metric(*b, "tern_tokens_copy_loads_total{result=\"ok\"}"), 1);
  EXPECT_TRUE(test::eventually([&] { return metric(*b, "tern_tokens_copy_usable") == 1; }));
}

// A JetStream that hangs (its server stopped with SIGSTOP behind the site's leaf node, so
// the node's own connection stays up and every JetStream request waits for its timeout):
// token checks still answer at once from the node's copy. Each confirmation of the copy
// is one JetStream request that fails only after the 5-second request timeout; if a check
// asked JetStream, each of the checks below would wait for one such timeout too.
TEST_F(TokensClusterTest, TokenChecksDoNotWaitForAHangingJetStream) {
  uint16_t leafPort = test::reservedLoopbackPort();
  test::NatsProcess hub(dir.path() / "hub",
                        "server_name: hub\njetstream { store_dir: \"{dir}/js\", domain: hub }\n"
                        "leafnodes { listen: 127.0.0.1:" + std::to_string(leafPort) + " }");
  test::NatsProcess leaf(dir.path() / "leaf",
                         "server_name: leaf\nleafnodes { remotes: [ { url: \"nats-leaf://127.0.0.1:" +
                             std::to_string(leafPort) + "\" } ] }");
  // A staleness far beyond the test's length: the copy stays usable throughout.
  std::vector<std::string> viaLeaf{"--cluster-js-domain", "hub", "--token-max-staleness-ms", "3600000"};
  auto a = node("a", viaLeaf, leaf.url());
  auto b = node("b", viaLeaf, leaf.url());
  std::string token = make(*a, "ops");
  ASSERT_TRUE(test::eventually([&] { return check(*b, token).status == 200; }));
  const std::string failed = "tern_tokens_copy_confirms_total{result=\"failed\"}";
  const std::string current = "tern_tokens_copy_confirms_total{result=\"current\"}";
  ASSERT_TRUE(test::eventually([&] { return metric(*b, current) >= 1; }));

  hub.pause();
  double failedAtPause = metric(*b, failed);
  ASSERT_TRUE(test::eventually([&] { return metric(*b, failed) >= failedAtPause + 1; })) << b->log();
  double before = metric(*b, failed);
  constexpr int kChecks = 10;
  for (int i = 0; i < kChecks; ++i) {
    auto r = check(*b, token);
    ASSERT_EQ(r.status, 200) << "check " << i << ": " << r.raw;
  }
  EXPECT_EQ(refusalOf(check(*b, "tern_00000000000000aa_" + std::string(64, '0'))).first, "unknown");
  // All of them within at most one more JetStream timeout (a check that asked JetStream
  // would have taken one timeout each).
  EXPECT_LE(metric(*b, failed), before + 1) << b->log();

  hub.resume();
  double currentAtResume = metric(*b, current);
  EXPECT_TRUE(test::eventually([&] { return metric(*b, current) > currentAtResume; })) << b->log();
  EXPECT_EQ(check(*b, token).status, 200);
}

// A node cut off from NATS while the token is revoked elsewhere: once its copy is older
// than --token-max-staleness-ms it refuses scoped tokens with 503 (it cannot know of the
// revocation); the node's admin token keeps working; back on NATS it loads the bucket
// again and refuses the token as revoked.
TEST_F(TokensClusterTest, ANodeCutOffFromNatsFailsClosedAndLearnsOfTheRevocationWhenBack) {
  uint16_t leafPort = test::reservedLoopbackPort();
  test::NatsProcess hub(dir.path() / "hub",
                        "server_name: hub\njetstream { store_dir: \"{dir}/js\", domain: hub }\n"
                        "leafnodes { listen: 127.0.0.1:" + std::to_string(leafPort) + " }");
  test::NatsProcess leaf(dir.path() / "leaf",
                         "server_name: leaf\nleafnodes { remotes: [ { url: \"nats-leaf://127.0.0.1:" +
                             std::to_string(leafPort) + "\" } ] }");
  auto a = node("a", {"--cluster-js-domain", "hub"}, hub.url());
  auto b = node("b", {"--cluster-js-domain", "hub", "--token-max-staleness-ms", "2000"}, leaf.url());
  std::string token = make(*a, "ops");
  ASSERT_TRUE(test::eventually([&] { return check(*b, token).status == 200; }));

  leaf.pause();  // b's NATS server hangs: b hears nothing more
  ASSERT_EQ(test::request(a->port(), "DELETE", "/v1/tokens/ops", "", a->auth()).status, 200);
  EXPECT_EQ(refusalOf(check(*a, token)).first, "revoked");
  test::HttpReply closed;
  ASSERT_TRUE(test::eventually([&] {
    closed = check(*b, token);
    return closed.status == 503;
  })) << closed.raw << b->log();
  EXPECT_NE(messageOf(closed).find("scoped tokens are refused until it is current again"), std::string::npos)
      << closed.raw;
  EXPECT_TRUE(test::eventually([&] { return metric(*b, "tern_tokens_copy_usable") == 0; }));
  EXPECT_EQ(test::request(b->port(), "GET", "/v1/tokens", "", b->auth()).status, 503);
  EXPECT_EQ(test::request(b->port(), "GET", "/v1/functions", "", b->auth()).status, 200);

  leaf.resume();
  test::HttpReply revoked;
  EXPECT_TRUE(test::eventually([&] {
    revoked = check(*b, token);
    return revoked.status == 401;
  })) << revoked.raw << b->log();
  EXPECT_EQ(refusalOf(revoked).first, "revoked");
}

TEST_F(TokensClusterTest, AfterANatsRestartANodeLoadsTheBucketAgain) {
  auto a = node("a");
  std::string first = make(*a, "first");
  // The node's copy follows the bucket: the new token counts once the copy has it (on a
  // busy machine, not always by the time the create has answered).
  ASSERT_TRUE(test::eventually([&] { return check(*a, first).status == 200; })) << a->log();
  nats->stop();
  nats->start();
  // a loads the bucket again after its reconnect, and follows it from there.
  auto b = node("b");
  std::string second = make(*b, "second");
  EXPECT_TRUE(test::eventually([&] { return check(*a, second).status == 200; })) << a->log();
  EXPECT_TRUE(test::eventually([&] { return check(*b, first).status == 200; })) << b->log();
  // The watch may carry the new token across the restart before the node's thread has
  // heard of the reconnect (libnats reports it on a thread of its own); the load follows.
  EXPECT_TRUE(test::eventually([&] { return metric(*a, "tern_tokens_copy_loads_total{result=\"ok\"}") >= 2; }))
      << a->log();
}

}  // namespace
}  // namespace tern
