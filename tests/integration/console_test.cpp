// What the web console reads from a real ternd: its files at /ui, a function's time series
// (GET /v1/functions/NAME/series), the live event feed (GET /v1/events over a WebSocket:
// tokens by header or first message, refusals, a slow client cut without holding up
// invocations) and a workflow run's data flow (edges in GET /v1/runs/ID).

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "http/websocket_client.h"
#include "raw_http.h"
#include "ternd_process.h"
#include "test_support.h"

namespace tern {
namespace {

using json = nlohmann::json;
using test::request;

class ConsoleApiTest : public ::testing::Test {
 protected:
  test::TempDir dir;
  test::TerndProcess node{dir.path() / "data", {"--coap-listen", "off"}};

  void deploy(const std::string& name, const char* guest, const std::string& query = "") {
    auto r = request(node.port(), "PUT", "/v1/functions/" + name + query,
                     test::readText(test::guestsDir() / (std::string(guest) + ".wasm")), node.auth());
    ASSERT_EQ(r.status, 201) << r.raw;
  }
  std::string makeToken(const std::string& name, const json& scopes) {
    auto r = request(node.port(), "POST", "/v1/tokens", json{{"name", name}, {"scopes", scopes}}.dump(),
                     node.auth());
    EXPECT_EQ(r.status, 201) << r.raw;
    return json::parse(r.body, nullptr, false).value("token", std::string());
  }
  http::NodeUrl url() const {
    http::NodeUrl u;
    u.host = "127.0.0.1";
    u.port = node.port();
    return u;
  }
  static json next(http::WebSocketClient& ws) {
    auto r = ws.receive(std::chrono::steady_clock::now() + std::chrono::seconds(30));
    if (r.kind != http::WebSocketReceive::Kind::kMessage) {
      ADD_FAILURE() << "no message: kind " << static_cast<int>(r.kind) << " " << r.closeReason
                    << (r.error ? r.error->message() : "");
      return json();
    }
    return json::parse(r.text, nullptr, false);
  }
};

TEST_F(ConsoleApiTest, ServesTheConsoleFilesWithTypesAndValidators) {
  auto page = request(node.port(), "GET", "/ui/");
  ASSERT_EQ(page.status, 200) << page.raw;
  EXPECT_EQ(page.headers["content-type"], "text/html; charset=utf-8");
  EXPECT_NE(page.body.find("<title>tern console</title>"), std::string::npos);
  EXPECT_EQ(page.headers["cache-control"], "no-cache");
  EXPECT_NE(page.headers["content-security-policy"].find("default-src 'self'"), std::string::npos);
  EXPECT_EQ(request(node.port(), "GET", "/ui").body, page.body);
  // Nothing is loaded from elsewhere: the console works offline.
  EXPECT_EQ(page.body.find("http://"), std::string::npos);
  EXPECT_EQ(page.body.find("https://"), std::string::npos);

  auto js = request(node.port(), "GET", "/ui/app.js");
  ASSERT_EQ(js.status, 200);
  EXPECT_EQ(js.headers["content-type"], "text/javascript; charset=utf-8");
  EXPECT_EQ(request(node.port(), "GET", "/ui/style.css").headers["content-type"], "text/css; charset=utf-8");
  std::string etag = js.headers["etag"];
  ASSERT_EQ(etag.size(), 66u) << etag;  // a quoted SHA-256
  auto again = request(node.port(), "GET", "/ui/app.js", "", {{"If-None-Match", etag}});
  EXPECT_EQ(again.status, 304);
  EXPECT_TRUE(again.body.empty());
  auto head = request(node.port(), "HEAD", "/ui/app.js");
  EXPECT_EQ(head.status, 200);

  // Unknown or malformed paths are 404, other methods 405.
  for (const char* path : {"/ui/nope.js", "/ui/index.html/", "/ui/%2e%2e/v1/status", "/ui//app.js",
                           "/ui/app.js%00", "/uix", "/ui/functions"}) {
    auto r = request(node.port(), "GET", path);
    EXPECT_TRUE(r.status == 404 || r.status == 400) << path << ": " << r.raw;
    EXPECT_EQ(r.body.find("import "), std::string::npos) << path;
  }
  EXPECT_EQ(request(node.port(), "POST", "/ui/app.js", "x").status, 405);
}

TEST_F(ConsoleApiTest, SeriesCountsAFunctionsInvocationsAndNeedsRead) {
  deploy("chat", "chatty");
  for (int i = 0; i < 3; ++i) ASSERT_EQ(request(node.port(), "GET", "/fn/chat").status, 200);
  auto r = request(node.port(), "GET", "/v1/functions/chat/series", "", node.auth());
  ASSERT_EQ(r.status, 200) << r.raw;
  json s = json::parse(r.body);
  EXPECT_EQ(s["bucket_ms"], 10000);
  ASSERT_EQ(s["points"].size(), 60u);
  uint64_t count = 0;
  double p99 = 0;
  for (const auto& p : s["points"]) {
    count += p["count"].get<uint64_t>();
    p99 = std::max(p99, p["p99_ms"].get<double>());
    EXPECT_GE(p["slot_share"].get<double>(), 0.0);
    EXPECT_LE(p["slot_share"].get<double>(), 1.0);
    EXPECT_EQ(p["errors"], 0);
  }
  EXPECT_EQ(count, 3u);
  EXPECT_GT(p99, 0.0);

  // Every function's series in one answer, for the functions page.
  auto all = request(node.port(), "GET", "/v1/functions?series=1", "", node.auth());
  ASSERT_EQ(all.status, 200) << all.raw;
  json list = json::parse(all.body);
  EXPECT_EQ(list["bucket_ms"], 10000);
  ASSERT_EQ(list["functions"].size(), 1u);
  ASSERT_EQ(list["functions"][0]["points"].size(), 60u);
  uint64_t listed = 0;
  for (const auto& p : list["functions"][0]["points"]) listed += p["count"].get<uint64_t>();
  EXPECT_EQ(listed, 3u);
  EXPECT_FALSE(json::parse(request(node.port(), "GET", "/v1/functions", "", node.auth()).body)["functions"][0]
                   .contains("points"));
  EXPECT_EQ(request(node.port(), "GET", "/v1/functions?series=yes", "", node.auth()).status, 400);

  EXPECT_EQ(request(node.port(), "GET", "/v1/functions/chat/series").status, 401);
  std::string deployOnly = makeToken("deployer", {"deploy"});
  auto refused = request(node.port(), "GET", "/v1/functions/chat/series", "",
                         {{"Authorization", "Bearer " + deployOnly}});
  EXPECT_EQ(refused.status, 403) << refused.raw;
  std::string reader = makeToken("reader", {"read"});
  EXPECT_EQ(request(node.port(), "GET", "/v1/functions/chat/series", "", {{"Authorization", "Bearer " + reader}}).status,
            200);
  EXPECT_EQ(request(node.port(), "GET", "/v1/functions/nope/series", "", node.auth()).status, 404);
}

TEST_F(ConsoleApiTest, EventFeedPushesEachInvocationWithItsStderr) {
  deploy("chat", "chatty", "?env=LINES=2&env=WIDTH=5");
  ASSERT_EQ(request(node.port(), "GET", "/fn/chat").status, 200);  // in the backlog
  http::WebSocketClient ws;
  auto ok = ws.connect(url(), "/v1/events?function=chat", {{"Authorization", "Bearer " + node.token()}},
                       std::chrono::seconds(30));
  ASSERT_TRUE(ok.ok()) << ok.error().message();
  json ready = next(ws);
  EXPECT_EQ(ready["type"], "ready");
  EXPECT_EQ(ready["function"], "chat");
  ASSERT_EQ(ready["invocations"].size(), 1u);
  EXPECT_EQ(ready["stderr"].size(), 2u);

  auto call = request(node.port(), "GET", "/fn/chat");
  ASSERT_EQ(call.status, 200);
  json ev = next(ws);
  EXPECT_EQ(ev["type"], "invocation");
  EXPECT_EQ(ev["invocation"]["id"], call.headers["x-tern-invocation-id"]);
  EXPECT_EQ(ev["invocation"]["outcome"], "ok");
  ASSERT_EQ(ev["stderr"].size(), 2u);
  EXPECT_EQ(ev["stderr"][0]["text"], "line 0 abcde");
  EXPECT_EQ(ev["stderr"][1]["invocation_id"], call.headers["x-tern-invocation-id"]);
}

TEST_F(ConsoleApiTest, BrowsersSendTheTokenAsTheFirstMessage) {
  deploy("chat", "chatty");
  std::string reader = makeToken("reader", {"read"});
  http::WebSocketClient ws;
  ASSERT_TRUE(ws.connect(url(), "/v1/events?function=chat", {}, std::chrono::seconds(30)).ok());
  ASSERT_TRUE(ws.send(json{{"token", reader}}.dump()).ok());
  EXPECT_EQ(next(ws)["type"], "ready");
  ASSERT_EQ(request(node.port(), "GET", "/fn/chat").status, 200);
  EXPECT_EQ(next(ws)["type"], "invocation");

  // A wrong token, one without read, and no token at all: an error naming why, then close.
  std::string deployOnly = makeToken("deployer", {"deploy"});
  struct Case {
    std::string first;
    const char* code;
    const char* reason;
  };
  const Case cases[] = {
      {json{{"token", "tern_0123456789abcdef_" + std::string(64, '0')}}.dump(), "unauthorized", "unknown"},
      {json{{"token", "nonsense"}}.dump(), "unauthorized", "malformed"},
      {json{{"token", deployOnly}}.dump(), "forbidden", "scope"},
      {"hello", "unauthorized", "missing"},
  };
  for (const auto& c : cases) {
    http::WebSocketClient bad;
    ASSERT_TRUE(bad.connect(url(), "/v1/events?function=chat", {}, std::chrono::seconds(30)).ok());
    ASSERT_TRUE(bad.send(c.first).ok());
    json err = next(bad);
    EXPECT_EQ(err["type"], "error") << c.first;
    EXPECT_EQ(err["code"], c.code) << c.first;
    EXPECT_EQ(err["reason"], c.reason) << c.first;
    auto end = bad.receive(std::chrono::steady_clock::now() + std::chrono::seconds(30));
    EXPECT_EQ(end.kind, http::WebSocketReceive::Kind::kClosed) << c.first;
  }
  // A function that does not exist, told once the token is accepted.
  http::WebSocketClient missing;
  ASSERT_TRUE(missing.connect(url(), "/v1/events?function=nope", {}, std::chrono::seconds(30)).ok());
  ASSERT_TRUE(missing.send(json{{"token", reader}}.dump()).ok());
  EXPECT_EQ(next(missing)["code"], "not_found");
}

TEST_F(ConsoleApiTest, TheFeedRefusesAtTheUpgradeWithAHeader) {
  deploy("chat", "chatty");
  std::string deployOnly = makeToken("deployer", {"deploy"});
  struct Case {
    std::string path;
    std::vector<http::HttpHeader> headers;
    const char* expected;
  };
  const Case cases[] = {
      {"/v1/events?function=chat", {{"Authorization", "Bearer " + deployOnly}}, "403"},
      {"/v1/events?function=chat", {{"Authorization", "Bearer tern_x"}}, "401"},
      {"/v1/events?function=nope", {{"Authorization", "Bearer " + node.token()}}, "404"},
      {"/v1/events?function=Bad_Name", {{"Authorization", "Bearer " + node.token()}}, "400"},
      {"/v1/events", {{"Authorization", "Bearer " + node.token()}}, "400"},
  };
  for (const auto& c : cases) {
    http::WebSocketClient ws;
    auto r = ws.connect(url(), c.path, c.headers, std::chrono::seconds(30));
    ASSERT_FALSE(r.ok()) << c.path;
    EXPECT_NE(r.error().message().find(c.expected), std::string::npos) << c.path << ": " << r.error().message();
  }
  // Without the upgrade the route says what it is.
  auto plain = request(node.port(), "GET", "/v1/events?function=chat", "", node.auth());
  EXPECT_EQ(plain.status, 426) << plain.raw;
  EXPECT_EQ(request(node.port(), "GET", "/v1/events?function=chat").status, 401);
}

// Opens /v1/events as a client that never reads, with a small receive buffer.
int openSilentFeed(uint16_t port, const std::string& token) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  int small = 4096;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return -1;
  std::string req = "GET /v1/events?function=chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer " + token + "\r\n\r\n";
  if (::write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) return -1;
  // The 101 answer, and nothing more is read.
  std::string head;
  char c;
  while (head.find("\r\n\r\n") == std::string::npos && ::read(fd, &c, 1) == 1) head += c;
  EXPECT_NE(head.find(" 101 "), std::string::npos) << head;
  return fd;
}

TEST_F(ConsoleApiTest, AClientThatDoesNotReadIsCutAndInvocationsGoOn) {
  deploy("chat", "chatty", "?env=LINES=60&env=WIDTH=1000");  // ~60 KB of stderr a call
  int fd = openSilentFeed(node.port(), node.token());
  ASSERT_GE(fd, 0);
  // Every invocation answers while the feed's bytes pile up, until the node cuts the feed.
  int calls = 0;
  while (node.metric("tern_event_feeds_cut_total") < 1 && calls < 2000) {
    ASSERT_EQ(request(node.port(), "GET", "/fn/chat").status, 200) << "call " << calls;
    ++calls;
  }
  EXPECT_EQ(node.metric("tern_event_feeds_cut_total"), 1) << calls << " calls";
  ::close(fd);
  // A new feed works.
  http::WebSocketClient ws;
  ASSERT_TRUE(ws.connect(url(), "/v1/events?function=chat", {{"Authorization", "Bearer " + node.token()}},
                         std::chrono::seconds(30)).ok());
  EXPECT_EQ(next(ws)["type"], "ready");
}

TEST_F(ConsoleApiTest, ARunCarriesTheDataFlowBetweenItsTasks) {
  deploy("inc", "wf_step", "?env=OP=inc");
  json body{{"afcl", R"(
name: "twice"
dataIns: [{name: "n", type: "number", source: "n"}]
workflowBody:
- function: {name: "First", type: "Inc", dataIns: [{name: "n", type: "number", source: "twice/n"}], dataOuts: [{name: "n", type: "number"}]}
- function: {name: "Second", type: "Inc", dataIns: [{name: "n", type: "number", source: "First/n"}], dataOuts: [{name: "n", type: "number"}]}
dataOuts: [{name: "n", type: "number", source: "Second/n"}]
)"}};
  ASSERT_EQ(request(node.port(), "PUT", "/v1/workflows/twice", body.dump(), node.auth()).status, 201);
  auto run = request(node.port(), "POST", "/wf/twice", R"({"n": 1})");
  ASSERT_EQ(run.status, 200) << run.raw;
  auto trace = request(node.port(), "GET", "/v1/runs/" + run.headers["x-tern-run-id"], "", node.auth());
  ASSERT_EQ(trace.status, 200) << trace.raw;
  json t = json::parse(trace.body);
  EXPECT_EQ(t["edges"], json::parse(R"([{"from": "First", "to": "Second"}])"));
  ASSERT_EQ(t["tasks"].size(), 2u);
}

}  // namespace
}  // namespace tern
