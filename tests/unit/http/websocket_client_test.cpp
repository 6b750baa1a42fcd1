// The WebSocket client against a small Beast WebSocket server on 127.0.0.1:0 that the test
// runs on a thread of its own (tests/support/websocket_test_server.h): messages both ways,
// receive deadlines, how a connection ends, and the errors of connecting to something that
// is not a WebSocket endpoint.

#include "http/websocket_client.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "test_support.h"
#include "websocket_test_server.h"

namespace tern::http {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// The test server's close frame when a client sends "close".
constexpr uint16_t kServerCloseCode = 4001;
constexpr std::string_view kServerCloseReason = "the test server says goodbye";

// The test server's answers: "close" a close frame (kServerCloseCode), "drop" the end of
// the TCP connection, "big N" N bytes, anything else itself.
test::WebSocketTestServer::Step answer(const std::string& message) {
  using Step = test::WebSocketTestServer::Step;
  if (message == "close") {
    return Step{{}, std::make_pair(kServerCloseCode, std::string(kServerCloseReason)), false};
  }
  if (message == "drop") return Step{{}, std::nullopt, true};
  if (message.starts_with("big ")) {
    return Step{{std::string(std::stoul(message.substr(4)), 'x')}, std::nullopt, false};
  }
  return test::WebSocketTestServer::echo(message);
}

// The test server: WebSocket (answering as above) or an HTTP server that knows no route.
class TestServer : public test::WebSocketTestServer {
 public:
  enum class Mode { kEcho, kNotFound };
  explicit TestServer(Mode mode)
      : WebSocketTestServer(answer, mode == Mode::kEcho ? WebSocketTestServer::Mode::kWebSocket
                                                        : WebSocketTestServer::Mode::kNotFound) {}
  NodeUrl url() const {
    NodeUrl u;
    u.host = "127.0.0.1";
    u.port = port();
    return u;
  }
};

Clock::time_point soon() { return Clock::now() + 10s; }

std::string kindName(WebSocketReceive::Kind k) {
  switch (k) {
    case WebSocketReceive::Kind::kMessage: return "message";
    case WebSocketReceive::Kind::kTimedOut: return "timed out";
    case WebSocketReceive::Kind::kClosed: return "closed";
    case WebSocketReceive::Kind::kFailed: return "failed";
  }
  return "?";
}

// The received message's text, or a description of what came instead.
std::string received(const WebSocketReceive& r) {
  if (r.kind == WebSocketReceive::Kind::kMessage) return r.text;
  return fmt::format("<{}{}{}>", kindName(r.kind), r.error ? ": " : "",
                     r.error ? r.error->describe() : "");
}

TEST(WebSocketClientTest, EchoesMessagesInOrderAndSendsTheUpgradeHeaders) {
  TestServer server(TestServer::Mode::kEcho);
  WebSocketClient ws;
  auto c = ws.connect(server.url(), "/v1/streams", {{"Authorization", "Bearer s3cret"}}, 5s);
  ASSERT_TRUE(c.ok()) << c.error().describe();
  EXPECT_TRUE(ws.isOpen());
  EXPECT_EQ(server.lastTarget(), "/v1/streams");
  EXPECT_EQ(server.lastAuthorization(), "Bearer s3cret");

  const std::string json = R"({"type":"subscribe","stream":1,"topic":"température"})";
  ASSERT_TRUE(ws.send(json).ok());
  ASSERT_TRUE(ws.send("second").ok());
  EXPECT_EQ(received(ws.receive(soon())), json);
  EXPECT_EQ(received(ws.receive(soon())), "second");
  EXPECT_TRUE(ws.close().ok());
  EXPECT_FALSE(ws.isOpen());
}

TEST(WebSocketClientTest, UpgradesBelowTheNodesPathPrefixWithoutAToken) {
  TestServer server(TestServer::Mode::kEcho);
  NodeUrl url = server.url();
  url.path = "/tern";
  WebSocketClient ws;
  auto c = ws.connect(url, "/v1/streams", {}, 5s);
  ASSERT_TRUE(c.ok()) << c.error().describe();
  EXPECT_EQ(server.lastTarget(), "/tern/v1/streams");
  EXPECT_EQ(server.lastAuthorization(), "");
}

TEST(WebSocketClientTest, ReceiveTimesOutAndTheConnectionStaysUsable) {
  TestServer server(TestServer::Mode::kEcho);
  WebSocketClient ws;
  ASSERT_TRUE(ws.connect(server.url(), "/", {}, 5s).ok());

  auto r = ws.receive(Clock::now() + 100ms);
  EXPECT_EQ(r.kind, WebSocketReceive::Kind::kTimedOut) << received(r);
  // A deadline already past takes only what is there: nothing.
  EXPECT_EQ(ws.receive(Clock::now() - 1s).kind, WebSocketReceive::Kind::kTimedOut);
  EXPECT_TRUE(ws.isOpen());

  // The read left in flight by the timeouts gets the next message, whole.
  ASSERT_TRUE(ws.send("after the timeout").ok());
  EXPECT_EQ(received(ws.receive(soon())), "after the timeout");

  // Closing with a read in flight completes the closing handshake.
  EXPECT_EQ(ws.receive(Clock::now() + 10ms).kind, WebSocketReceive::Kind::kTimedOut);
  auto closed = ws.close();
  EXPECT_TRUE(closed.ok()) << closed.error().describe();
  EXPECT_FALSE(ws.isOpen());
}

// The close frame the server got from the client, waiting for it to arrive.
std::optional<std::pair<uint16_t, std::string>> closeSeenBy(const TestServer& server) {
  test::eventually([&] { return server.lastClose().has_value(); });
  return server.lastClose();
}

TEST(WebSocketClientTest, CloseSendsItsCodeAndReasonToThePeer) {
  TestServer server(TestServer::Mode::kEcho);
  WebSocketClient ws;
  ASSERT_TRUE(ws.connect(server.url(), "/", {}, 5s).ok());
  EXPECT_TRUE(ws.close(4002, "the device is done").ok());
  EXPECT_EQ(closeSeenBy(server), std::make_pair(uint16_t{4002}, std::string("the device is done")));

  // A code only the RFC may use becomes 1000; a long reason is cut at a character boundary.
  TestServer other(TestServer::Mode::kEcho);
  WebSocketClient ws2;
  ASSERT_TRUE(ws2.connect(other.url(), "/", {}, 5s).ok());
  // 122 bytes, then two 2-byte characters: byte 123 is the middle of the first.
  std::string reason = fmt::format("{}\xc3\xa9\xc3\xa9", std::string(122, 'x'));
  EXPECT_TRUE(ws2.close(1005, reason).ok());
  auto seen = closeSeenBy(other);
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->first, 1000);
  EXPECT_EQ(seen->second, std::string(122, 'x'));
}

TEST(WebSocketClientTest, ServerCloseReportsItsCodeAndReason) {
  TestServer server(TestServer::Mode::kEcho);
  WebSocketClient ws;
  ASSERT_TRUE(ws.connect(server.url(), "/", {}, 5s).ok());
  ASSERT_TRUE(ws.send("close").ok());

  auto r = ws.receive(soon());
  ASSERT_EQ(r.kind, WebSocketReceive::Kind::kClosed) << received(r);
  EXPECT_EQ(r.closeCode, kServerCloseCode);
  EXPECT_EQ(r.closeReason, kServerCloseReason);
  EXPECT_FALSE(ws.isOpen());

  // The end is reported again, and sending says the connection is not open.
  auto again = ws.receive(soon());
  EXPECT_EQ(again.kind, WebSocketReceive::Kind::kClosed);
  EXPECT_EQ(again.closeCode, kServerCloseCode);
  auto s = ws.send("anyone?");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), ErrorCode::kUnavailable);
  EXPECT_TRUE(ws.close().ok());  // nothing left to close
}

TEST(WebSocketClientTest, AConnectionEndingWithoutACloseFrameIsAbnormalClosure) {
  TestServer server(TestServer::Mode::kEcho);
  WebSocketClient ws;
  ASSERT_TRUE(ws.connect(server.url(), "/", {}, 5s).ok());
  ASSERT_TRUE(ws.send("drop").ok());
  auto r = ws.receive(soon());
  ASSERT_EQ(r.kind, WebSocketReceive::Kind::kClosed) << received(r);
  EXPECT_EQ(r.closeCode, 1006);
  EXPECT_EQ(r.closeReason, "");
}

TEST(WebSocketClientTest, AMessageAboveTheLimitFailsTheConnection) {
  TestServer server(TestServer::Mode::kEcho);
  WebSocketLimits limits;
  limits.maxMessageBytes = 1024;
  WebSocketClient ws(limits);
  ASSERT_TRUE(ws.connect(server.url(), "/", {}, 5s).ok());
  ASSERT_TRUE(ws.send("big 1024").ok());
  EXPECT_EQ(received(ws.receive(soon())), std::string(1024, 'x'));
  ASSERT_TRUE(ws.send("big 1025").ok());
  auto r = ws.receive(soon());
  ASSERT_EQ(r.kind, WebSocketReceive::Kind::kFailed) << received(r);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->code(), ErrorCode::kBodyTooLarge);
  EXPECT_NE(r.error->message().find("1024 bytes"), std::string::npos) << r.error->message();
  EXPECT_FALSE(ws.isOpen());
}

TEST(WebSocketClientTest, AClosedPortIsAClearConnectError) {
  // A port nothing listens on.
  const uint16_t port = test::reservedLoopbackPort();
  NodeUrl url;
  url.host = "127.0.0.1";
  url.port = port;
  WebSocketClient ws;
  auto c = ws.connect(url, "/v1/streams", {}, 5s);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(c.error().message().find(fmt::format("cannot connect to http://127.0.0.1:{}", port)),
            std::string::npos)
      << c.error().message();
  EXPECT_NE(c.error().message().find("is ternd running?"), std::string::npos);
  EXPECT_FALSE(ws.isOpen());
  auto r = ws.receive(soon());
  EXPECT_EQ(r.kind, WebSocketReceive::Kind::kFailed);
}

TEST(WebSocketClientTest, AnHttpServerRefusingTheUpgradeIsAnErrorWithItsStatus) {
  TestServer server(TestServer::Mode::kNotFound);
  WebSocketClient ws;
  auto c = ws.connect(server.url(), "/v1/streams", {}, 5s);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code(), ErrorCode::kNotFound);
  const std::string& m = c.error().message();
  EXPECT_NE(m.find("answered HTTP 404 to the WebSocket upgrade of /v1/streams"), std::string::npos)
      << m;
  EXPECT_NE(m.find("no such route"), std::string::npos) << m;
  EXPECT_FALSE(ws.isOpen());
}

TEST(WebSocketClientTest, RefusesHeadersThatWouldSplitTheRequest) {
  WebSocketClient ws;
  NodeUrl url;
  url.host = "127.0.0.1";
  url.port = 9;  // never reached: the header is refused first
  auto c = ws.connect(url, "/", {{"Authorization", "Bearer x\r\nX-Injected: 1"}}, 5s);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code(), ErrorCode::kInvalidArgument);
  auto n = ws.connect(url, "/", {{"Bad Name", "v"}}, 5s);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.error().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace tern::http
