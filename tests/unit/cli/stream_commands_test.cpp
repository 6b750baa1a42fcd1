// `tern stream` and `tern app`: the checks made before connecting, the lines printed per
// update, and the commands against stand-ins for a node: a scripted WebSocket server for
// /v1/streams (tests/support/websocket_test_server.h) and tern's own HTTP server answering
// the /v1/topics and /v1/apps routes as docs/http-api.md describes them.

#include "cli/stream_commands.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "cli_test_env.h"
#include "http/http_server.h"
#include "test_support.h"
#include "websocket_test_server.h"

namespace tern::cli {
namespace {

using json = nlohmann::json;
using test::ScopedEnv;
using tern::test::WebSocketTestServer;

int exitStatus(ErrorCode code) { return errorKind(code).exitStatus; }

// --- checks before connecting ---------------------------------------------------------

TEST(PublishTargetTest, EncodesTheTopicAndRefusesAnEmptyOne) {
  auto t = publishTarget("sensors-1");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t, "/v1/topics/sensors-1");
  auto odd = publishTarget("a/b c");
  ASSERT_TRUE(odd.ok());
  EXPECT_EQ(*odd, "/v1/topics/a%2Fb%20c");  // the node refuses the name; the path stays whole
  auto empty = publishTarget("");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code(), ErrorCode::kInvalidArgument);
}

TEST(SubscribeFrameTest, CarriesOnlyWhatWasGiven) {
  SubscribeOptions o;
  o.topic = "sensors";
  auto plain = subscribeFrame(o);
  ASSERT_TRUE(plain.ok()) << plain.error().describe();
  EXPECT_EQ(json::parse(*plain),
            json({{"type", "subscribe"}, {"stream", 1}, {"topic", "sensors"}}));

  o.app = "alerts";
  o.params = R"({"threshold": 3, "unit": "C"})";
  o.resumeAfter = 0;
  o.guarantee = "at-least-once";
  o.credits = 8;
  o.count = 5;  // the command's business: not in the frame
  auto full = subscribeFrame(o);
  ASSERT_TRUE(full.ok()) << full.error().describe();
  EXPECT_EQ(json::parse(*full), json({{"type", "subscribe"},
                                      {"stream", 1},
                                      {"topic", "sensors"},
                                      {"app", "alerts"},
                                      {"params", {{"threshold", 3}, {"unit", "C"}}},
                                      {"resume_after", 0},
                                      {"guarantee", "at-least-once"},
                                      {"credits", 8}}));
}

TEST(SubscribeFrameTest, RefusesBadOptionsSayingWhich) {
  // Applies `change` to valid options; returns the refusal's message ("" when accepted).
  auto refusal = [](auto change) {
    SubscribeOptions o;
    o.topic = "sensors";
    change(o);
    auto r = subscribeFrame(o);
    if (r.ok()) return std::string();
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
    return r.error().message();
  };
  EXPECT_NE(refusal([](SubscribeOptions& o) { o.params = "[1,2]"; }).find("--params must be a JSON object"),
            std::string::npos);
  EXPECT_NE(refusal([](SubscribeOptions& o) { o.params = "{not json"; }).find("--params"),
            std::string::npos);
  EXPECT_NE(refusal([](SubscribeOptions& o) { o.params = "\"text\""; }).find("--params"),
            std::string::npos);
  EXPECT_NE(refusal([](SubscribeOptions& o) { o.params = ""; }).find("--params"), std::string::npos);
  EXPECT_NE(refusal([](SubscribeOptions& o) { o.topic = ""; }).find("topic"), std::string::npos);
  EXPECT_NE(refusal([](SubscribeOptions& o) { o.app = "Bad_App"; }).find("invalid app name"),
            std::string::npos);
  EXPECT_NE(refusal([](SubscribeOptions& o) { o.guarantee = "exactly-once"; }).find("--guarantee"),
            std::string::npos);
  EXPECT_NE(refusal([](SubscribeOptions& o) { o.count = 0; }).find("--count"), std::string::npos);
  EXPECT_NE(refusal([](SubscribeOptions& o) { o.credits = 0; }).find("--credits"), std::string::npos);
  EXPECT_EQ(refusal([](SubscribeOptions& o) { o.params = "{}"; }), "");
}

TEST(DataFrameLineTest, HumanLinesShowTheUpdateAndJsonLinesItsSeqTopicAndPayload) {
  auto frame = [](json payload) {
    return json{{"type", "data"}, {"stream", 1}, {"seq", 42}, {"topic", "sensors"},
                {"payload", std::move(payload)}};
  };
  // A string payload is its text, unquoted and unescaped; any other value compact JSON.
  EXPECT_EQ(dataFrameLine(frame("21.5 C, \"ok\""), OutputFormat::kHuman), "21.5 C, \"ok\"");
  EXPECT_EQ(dataFrameLine(frame({{"t", 21.5}, {"ok", true}}), OutputFormat::kHuman),
            R"({"ok":true,"t":21.5})");
  EXPECT_EQ(dataFrameLine(frame(7), OutputFormat::kHuman), "7");
  EXPECT_EQ(dataFrameLine(frame(nullptr), OutputFormat::kHuman), "null");
  EXPECT_EQ(dataFrameLine(frame(json::array({1, "two"})), OutputFormat::kHuman), R"([1,"two"])");

  EXPECT_EQ(dataFrameLine(frame("21.5 C"), OutputFormat::kJson),
            R"({"seq":42,"topic":"sensors","payload":"21.5 C"})");
  EXPECT_EQ(dataFrameLine(frame({{"t", 21.5}}), OutputFormat::kJson),
            R"({"seq":42,"topic":"sensors","payload":{"t":21.5}})");
}

TEST(SubscribedLineTest, SaysWhatTheTopicRetains) {
  EXPECT_EQ(subscribedLine(json::parse(
                R"({"type":"subscribed","stream":1,"topic":"sensors","first_seq":4,"last_seq":9})")),
            "subscribed to sensors (retained updates 4..9)\n");
  EXPECT_EQ(subscribedLine(json::parse(
                R"({"type":"subscribed","stream":1,"topic":"new","first_seq":1,"last_seq":0})")),
            "subscribed to new (no retained updates)\n");
  EXPECT_EQ(subscribedLine(json::parse(
                R"({"type":"subscribed","stream":1,"topic":"aged","first_seq":8,"last_seq":7})")),
            "subscribed to aged (no retained updates)\n");
}

TEST(TerminateReasonTest, EachReasonHasTheExitStatusOfItsKind) {
  struct Case {
    const char* reason;
    ErrorCode kind;
  };
  for (const Case& c : std::vector<Case>{
           {"resume_point_expired", ErrorCode::kInvalidArgument},
           {"bad_frame", ErrorCode::kInvalidArgument},
           {"bad_topic", ErrorCode::kInvalidArgument},
           {"duplicate_stream", ErrorCode::kInvalidArgument},
           {"unknown_app", ErrorCode::kNotFound},
           {"too_many_streams", ErrorCode::kSaturated},
           {"subscribe_flood", ErrorCode::kSaturated},
           {"slow_consumer", ErrorCode::kSaturated},
           {"processor_failed", ErrorCode::kFunctionFailed},
           {"unavailable", ErrorCode::kUnavailable},
           {"shutdown", ErrorCode::kUnavailable},
           {"cancelled", ErrorCode::kUnavailable},
           {"a_reason_from_a_newer_node", ErrorCode::kUnavailable},
       }) {
    EXPECT_EQ(terminateReasonKind(c.reason), c.kind) << c.reason;
  }
  EXPECT_EQ(exitStatus(terminateReasonKind("resume_point_expired")), 64);
}

TEST(AppDeployBodyTest, SendsNullForWhatIsNotGiven) {
  AppDeployOptions o;
  o.name = "alerts";
  auto plain = appDeployBody(o);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(json::parse(*plain), json({{"processor", nullptr}, {"max_per_second", nullptr}}));
  o.processor = "threshold";
  o.maxPerSecond = 2.5;
  auto full = appDeployBody(o);
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(json::parse(*full), json({{"processor", "threshold"}, {"max_per_second", 2.5}}));
}

TEST(AppDeployBodyTest, RefusesBadNamesAndRates) {
  auto refused = [](auto change) {
    AppDeployOptions o;
    o.name = "alerts";
    change(o);
    auto r = appDeployBody(o);
    return !r.ok() && r.error().code() == ErrorCode::kInvalidArgument;
  };
  EXPECT_FALSE(refused([](AppDeployOptions&) {}));
  EXPECT_FALSE(refused([](AppDeployOptions& o) { o.maxPerSecond = 0; }));  // 0: no limit
  EXPECT_TRUE(refused([](AppDeployOptions& o) { o.name = ""; }));
  EXPECT_TRUE(refused([](AppDeployOptions& o) { o.name = "-alerts"; }));
  EXPECT_TRUE(refused([](AppDeployOptions& o) { o.name = "a/b"; }));
  EXPECT_TRUE(refused([](AppDeployOptions& o) { o.processor = "Threshold"; }));
  EXPECT_TRUE(refused([](AppDeployOptions& o) { o.maxPerSecond = -1; }));
  EXPECT_TRUE(refused([](AppDeployOptions& o) { o.maxPerSecond = std::nan(""); }));
  EXPECT_TRUE(refused([](AppDeployOptions& o) { o.maxPerSecond = HUGE_VAL; }));
}

TEST(AppFormatTest, SummaryAndTable) {
  EXPECT_EQ(formatAppDeployed(json::parse(
                R"({"name":"alerts","processor":"threshold","max_per_second":2.5})")),
            "deployed app alerts (processor threshold, at most 2.5 updates per second per "
            "subscriber)\n");
  EXPECT_EQ(formatAppDeployed(
                json::parse(R"({"name":"raw","processor":null,"max_per_second":null})")),
            "deployed app raw (no processor, no rate limit)\n");
  EXPECT_EQ(formatAppList(json::parse(R"({"apps":[]})")), "no apps deployed\n");
  EXPECT_EQ(formatAppList(json::parse(R"({"apps":[
              {"name":"alerts","processor":"threshold","max_per_second":10},
              {"name":"raw","processor":null,"max_per_second":null}]})")),
            "NAME    PROCESSOR  MAX/S\n"
            "alerts  threshold  10\n"
            "raw     -          -\n");
}

// --- tern stream subscribe against a scripted /v1/streams ---------------------------------

std::string dataFrame(uint64_t seq, const json& payload) {
  return json{{"type", "data"}, {"stream", 1}, {"seq", seq}, {"topic", "sensors"},
              {"payload", payload}}
      .dump();
}

// A node's stream endpoint: answers a subscribe frame with `subscribed` and `then`; other
// frames (credits) get no answer.
WebSocketTestServer::Script streamNode(std::vector<std::string> then,
                                       std::optional<std::pair<uint16_t, std::string>> close = {}) {
  return [then = std::move(then), close](const std::string& message) {
    json f = json::parse(message, nullptr, false);
    if (!f.is_object() || f.value("type", "") != "subscribe") return WebSocketTestServer::Step{};
    std::vector<std::string> send{json{{"type", "subscribed"}, {"stream", 1},
                                       {"topic", f.value("topic", "")}, {"first_seq", 1},
                                       {"last_seq", 3}}
                                      .dump()};
    send.insert(send.end(), then.begin(), then.end());
    return WebSocketTestServer::Step{send, close, false};
  };
}

struct CommandRun {
  int status = -1;
  std::string out;
  std::string err;
};

CommandRun subscribe(const WebSocketTestServer& server, SubscribeOptions o,
              OutputFormat format = OutputFormat::kHuman, std::string token = "t0ken") {
  NodeOptions node;
  node.node = server.url();
  node.token = std::move(token);
  node.format = format;
  std::ostringstream out, err;
  CommandRun r;
  r.status = streamSubscribeCommand(node, o, out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

SubscribeOptions sensors() {
  SubscribeOptions o;
  o.topic = "sensors";
  return o;
}

TEST(StreamSubscribeTest, PrintsEachUpdateAndStopsAfterCount) {
  WebSocketTestServer server(streamNode({dataFrame(1, "first"), dataFrame(2, {{"t", 21.5}}),
                                         dataFrame(3, "third")}));
  SubscribeOptions o = sensors();
  o.app = "alerts";
  o.params = R"({"threshold":3})";
  o.count = 2;
  CommandRun r = subscribe(server, o);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "first\n{\"t\":21.5}\n");
  EXPECT_EQ(r.err, "subscribed to sensors (retained updates 1..3)\n");
  EXPECT_EQ(server.lastTarget(), "/v1/streams");
  EXPECT_EQ(server.lastAuthorization(), "Bearer t0ken");
  auto got = server.received();
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(json::parse(got[0]), json({{"type", "subscribe"},
                                       {"stream", 1},
                                       {"topic", "sensors"},
                                       {"app", "alerts"},
                                       {"params", {{"threshold", 3}}}}));
}

TEST(StreamSubscribeTest, JsonLinesCarrySeqTopicAndPayload) {
  WebSocketTestServer server(streamNode({dataFrame(7, "hot"), dataFrame(8, 3)}));
  SubscribeOptions o = sensors();
  o.count = 2;
  CommandRun r = subscribe(server, o, OutputFormat::kJson);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out,
            "{\"seq\":7,\"topic\":\"sensors\",\"payload\":\"hot\"}\n"
            "{\"seq\":8,\"topic\":\"sensors\",\"payload\":3}\n");
}

TEST(StreamSubscribeTest, ConnectsWithoutATokenWhenThereIsNone) {
  tern::test::TempDir dir;
  ScopedEnv token("TERN_TOKEN", std::nullopt);
  ScopedEnv data("TERN_DATA", dir.path().string());
  WebSocketTestServer server(streamNode({dataFrame(1, "x")}));
  SubscribeOptions o = sensors();
  o.count = 1;
  CommandRun r = subscribe(server, o, OutputFormat::kHuman, "");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "x\n");
  EXPECT_EQ(server.lastAuthorization(), "");
}

TEST(StreamSubscribeTest, ATerminateFrameEndsWithItsReasonAndExitStatus) {
  std::string terminate = json{{"type", "terminate"}, {"stream", 1},
                               {"reason", "resume_point_expired"},
                               {"message", "update 5 is no longer retained (first is 90)"}}
                              .dump();
  WebSocketTestServer server(streamNode({dataFrame(1, "before"), terminate}));
  SubscribeOptions o = sensors();
  o.resumeAfter = 5;
  CommandRun r = subscribe(server, o);
  EXPECT_EQ(r.status, exitStatus(ErrorCode::kInvalidArgument));
  EXPECT_EQ(r.out, "before\n");
  EXPECT_EQ(r.err,
            "subscribed to sensors (retained updates 1..3)\n"
            "tern: stream terminated: resume_point_expired: update 5 is no longer retained "
            "(first is 90)\n");

  // The connection's own terminate (no stream) ends it the same way.
  WebSocketTestServer shutting(streamNode(
      {json{{"type", "terminate"}, {"reason", "shutdown"}, {"message", "the node is stopping"}}
           .dump()}));
  CommandRun s = subscribe(shutting, sensors());
  EXPECT_EQ(s.status, exitStatus(ErrorCode::kUnavailable));
  EXPECT_NE(s.err.find("\ntern: stream terminated: shutdown: the node is stopping\n"),
            std::string::npos)
      << s.err;
}

TEST(StreamSubscribeTest, TheNodeClosingTheConnectionIsAnErrorWithItsCode) {
  WebSocketTestServer server(streamNode({dataFrame(1, "only")}, std::make_pair(uint16_t{1001}, std::string("going away"))));
  CommandRun r = subscribe(server, sensors());
  EXPECT_EQ(r.status, exitStatus(ErrorCode::kUnavailable));
  EXPECT_EQ(r.out, "only\n");
  EXPECT_NE(r.err.find("tern: unavailable:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("closed the stream connection (code 1001: going away)"), std::string::npos)
      << r.err;
}

TEST(StreamSubscribeTest, GrantsCreditsAsUpdatesArePrinted) {
  WebSocketTestServer server(
      streamNode({dataFrame(1, "a"), dataFrame(2, "b"), dataFrame(3, "c"), dataFrame(4, "d")}));
  SubscribeOptions o = sensors();
  o.credits = 4;
  o.count = 4;
  CommandRun r = subscribe(server, o);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "a\nb\nc\nd\n");
  // Half the window is granted back once taken; the last two are not (the command stops).
  auto got = server.received();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(json::parse(got[0]).value("credits", 0), 4);
  EXPECT_EQ(json::parse(got[1]), json({{"type", "credits"}, {"stream", 1}, {"credits", 2}}));
}

TEST(StreamSubscribeTest, BadParamsAreRefusedBeforeConnecting) {
  WebSocketTestServer server(streamNode({}));
  SubscribeOptions o = sensors();
  o.params = "[\"not\", \"an object\"]";
  CommandRun r = subscribe(server, o);
  EXPECT_EQ(r.status, exitStatus(ErrorCode::kInvalidArgument));
  EXPECT_NE(r.err.find("tern: invalid argument: --params must be a JSON object"), std::string::npos)
      << r.err;
  EXPECT_EQ(server.lastTarget(), "");  // never connected
}

TEST(StreamSubscribeTest, AnEndpointThatIsNotThereIsAClearError) {
  WebSocketTestServer server(streamNode({}), WebSocketTestServer::Mode::kNotFound);
  CommandRun r = subscribe(server, sensors());
  EXPECT_EQ(r.status, exitStatus(ErrorCode::kNotFound));
  EXPECT_NE(r.err.find("answered HTTP 404 to the WebSocket upgrade of /v1/streams"),
            std::string::npos)
      << r.err;
}

// --- tern stream publish and tern app against a node's routes -----------------------------

// tern's HTTP server answering each request with `answer`, remembering what it was asked.
class FakeNode {
 public:
  struct Seen {
    std::string method, target, body, authorization;
  };
  using Answer = std::function<http::Response(const http::Request&)>;

  explicit FakeNode(Answer answer)
      : answer_(std::move(answer)),
        server_(options(), [](std::string_view, std::string_view) { return size_t{1} << 20; },
                [this](http::Request&& req, http::Respond respond) {
                  {
                    std::lock_guard lock(mu_);
                    const std::string* auth = req.header("Authorization");
                    seen_.push_back({req.method, req.target, req.body, auth ? *auth : ""});
                  }
                  respond(answer_(req));
                }) {
    auto started = server_.start();
    EXPECT_TRUE(started.ok()) << started.error().describe();
  }
  ~FakeNode() { server_.stop(std::chrono::milliseconds(1000)); }

  NodeOptions node(OutputFormat format = OutputFormat::kHuman) const {
    NodeOptions n;
    n.node = fmt::format("http://127.0.0.1:{}", server_.port());
    n.token = "t0ken";
    n.format = format;
    return n;
  }
  std::vector<Seen> seen() const {
    std::lock_guard lock(mu_);
    return seen_;
  }

 private:
  static http::ServerOptions options() {
    http::ServerOptions o;
    o.port = 0;
    o.threads = 1;
    return o;
  }
  Answer answer_;
  mutable std::mutex mu_;
  std::vector<Seen> seen_;
  http::Server server_;
};

http::Response jsonResponse(int status, std::string body) {
  http::Response r;
  r.status = status;
  r.body = std::move(body);
  r.contentType = "application/json";
  return r;
}

TEST(StreamPublishTest, PostsTheUpdateAndPrintsItsSeq) {
  FakeNode node([](const http::Request&) {
    return jsonResponse(200, R"({"topic":"sensors","seq":42})");
  });
  PublishOptions o;
  o.topic = "sensors";
  o.data = R"({"t":21.5})";
  std::istringstream in("not read");
  std::ostringstream out, err;
  EXPECT_EQ(streamPublishCommand(node.node(), o, in, out, err), 0) << err.str();
  EXPECT_EQ(out.str(), "42\n");
  auto seen = node.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].target, "/v1/topics/sensors");
  EXPECT_EQ(seen[0].body, R"({"t":21.5})");
  EXPECT_EQ(seen[0].authorization, "Bearer t0ken");

  // Without --data the update is stdin; --json prints the node's answer.
  o.data.reset();
  std::istringstream stdinText("line one\nline two\n");
  std::ostringstream jsonOut;
  EXPECT_EQ(streamPublishCommand(node.node(OutputFormat::kJson), o, stdinText, jsonOut, err), 0);
  EXPECT_EQ(jsonOut.str(), "{\"topic\":\"sensors\",\"seq\":42}\n");
  EXPECT_EQ(node.seen().at(1).body, "line one\nline two\n");
}

TEST(StreamPublishTest, TheNodesRefusalIsItsErrorKind) {
  FakeNode node([](const http::Request&) {
    return jsonResponse(
        413, R"({"error":{"code":"body_too_large","message":"an update is at most 65536 bytes"}})");
  });
  PublishOptions o;
  o.topic = "sensors";
  o.data = "x";
  std::istringstream in;
  std::ostringstream out, err;
  EXPECT_EQ(streamPublishCommand(node.node(), o, in, out, err),
            exitStatus(ErrorCode::kBodyTooLarge));
  EXPECT_EQ(err.str(), "tern: body too large: an update is at most 65536 bytes\n");
}

TEST(AppCommandsTest, DeployListAndRemove) {
  FakeNode node([](const http::Request& req) {
    if (req.method == "PUT") {
      return jsonResponse(200, R"({"name":"alerts","processor":"threshold","max_per_second":2})");
    }
    if (req.method == "GET") {
      return jsonResponse(
          200, R"({"apps":[{"name":"alerts","processor":"threshold","max_per_second":2}]})");
    }
    if (req.path == "/v1/apps/alerts") return jsonResponse(200, R"({"removed":"alerts"})");
    return jsonResponse(404, R"({"error":{"code":"not_found","message":"no app \"ghost\""}})");
  });
  std::ostringstream out, err;
  AppDeployOptions d;
  d.name = "alerts";
  d.processor = "threshold";
  d.maxPerSecond = 2;
  EXPECT_EQ(appDeployCommand(node.node(), d, out, err), 0) << err.str();
  EXPECT_EQ(out.str(),
            "deployed app alerts (processor threshold, at most 2 updates per second per "
            "subscriber)\n");

  std::ostringstream list;
  EXPECT_EQ(appListCommand(node.node(), list, err), 0) << err.str();
  EXPECT_EQ(list.str(), "NAME    PROCESSOR  MAX/S\nalerts  threshold  2\n");

  std::ostringstream removed;
  EXPECT_EQ(appRemoveCommand(node.node(), "alerts", removed, err), 0) << err.str();
  EXPECT_EQ(removed.str(), "removed app alerts\n");

  std::ostringstream none, noneErr;
  EXPECT_EQ(appRemoveCommand(node.node(), "ghost", none, noneErr), exitStatus(ErrorCode::kNotFound));
  EXPECT_EQ(noneErr.str(), "tern: not found: no app \"ghost\"\n");

  auto seen = node.seen();
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen[0].method, "PUT");
  EXPECT_EQ(seen[0].target, "/v1/apps/alerts");
  EXPECT_EQ(json::parse(seen[0].body), json({{"processor", "threshold"}, {"max_per_second", 2.0}}));
  EXPECT_EQ(seen[1].method, "GET");
  EXPECT_EQ(seen[1].target, "/v1/apps");
  EXPECT_EQ(seen[2].method, "DELETE");
  EXPECT_EQ(seen[2].target, "/v1/apps/alerts");
  EXPECT_EQ(seen[3].target, "/v1/apps/ghost");
  for (const auto& s : seen) EXPECT_EQ(s.authorization, "Bearer t0ken");
}

}  // namespace
}  // namespace tern::cli
