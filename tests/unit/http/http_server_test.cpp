// The HTTP/1.1 server on its own: connection limits, the unsent-response budget, the write
// timeout and request-line and header rules, spoken to in raw HTTP over loopback. Each
// 127.0.0.0/8 source address is a different client.

#include "http/http_server.h"
#include "http/request_rules.h"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "raw_http.h"
#include "test_support.h"

namespace tern::http {
namespace {

using namespace std::chrono_literals;

// A connection to 127.0.0.1:port from `source`; a small `receiveBuffer` makes a client that
// does not read stop the server's writes early. -1 on failure.
int connectFrom(const char* source, uint16_t port, int receiveBuffer = 0) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (receiveBuffer > 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receiveBuffer, sizeof receiveBuffer);
  }
  sockaddr_in from{};
  from.sin_family = AF_INET;
  inet_pton(AF_INET, source, &from.sin_addr);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0 ||
      connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool sendAll(int fd, const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

// Reads one response (Content-Length framed) from a keep-alive connection; status 0 when
// the connection closes or nothing complete arrives within `patience`.
test::HttpReply readResponse(int fd, std::chrono::milliseconds patience = 30s) {
  std::string got;
  auto deadline = std::chrono::steady_clock::now() + patience;
  char buf[65536];
  // The head is parsed once, when it is complete; then only the body's length is counted
  // (parsing the whole reply at every read made a 12 MiB response cost seconds).
  size_t end = std::string::npos, want = 0;
  for (;;) {
    if (end == std::string::npos && (end = got.find("\r\n\r\n")) != std::string::npos) {
      auto head = test::parseReply(got.substr(0, end + 4));
      auto it = head.headers.find("content-length");
      want = it == head.headers.end() ? 0 : std::stoul(it->second);
    }
    if (end != std::string::npos && got.size() - end - 4 >= want) return test::parseReply(got);
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return {};
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) return {};
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return {};
    got.append(buf, static_cast<size_t>(n));
  }
}

// Reads `n` responses (Content-Length framed) that may arrive together, as the answers to
// pipelined requests do; fewer when the connection closes or `patience` passes.
std::vector<test::HttpReply> readResponses(int fd, size_t n, std::chrono::milliseconds patience = 30s) {
  std::vector<test::HttpReply> out;
  std::string got;
  auto deadline = std::chrono::steady_clock::now() + patience;
  char buf[65536];
  while (out.size() < n) {
    size_t end = got.find("\r\n\r\n");
    if (end != std::string::npos) {
      auto head = test::parseReply(got.substr(0, end + 4));
      auto it = head.headers.find("content-length");
      size_t want = it == head.headers.end() ? 0 : std::stoul(it->second);
      if (got.size() - end - 4 >= want) {
        out.push_back(test::parseReply(got.substr(0, end + 4 + want)));
        got.erase(0, end + 4 + want);
        continue;
      }
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    ssize_t r = recv(fd, buf, sizeof buf, 0);
    if (r <= 0) break;
    got.append(buf, static_cast<size_t>(r));
  }
  return out;
}

// Whether the server closes the connection (EOF or reset) within `patience`.
bool closedByServer(int fd, std::chrono::milliseconds patience) {
  auto deadline = std::chrono::steady_clock::now() + patience;
  char buf[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    if (recv(fd, buf, sizeof buf, 0) <= 0) return true;
  }
}

const std::string kGet = "GET /small HTTP/1.1\r\nHost: t\r\n\r\n";
const std::string kGetBig = "GET /big HTTP/1.1\r\nHost: t\r\n\r\n";

// A server whose handler answers on the serving thread: "/big" with bigBytes of 'x', any
// other path with "METHOD PATH QUERY BODY".
class HttpServerTest : public ::testing::Test {
 protected:
  void start(ServerOptions options) {
    options.address = "127.0.0.1";
    options.port = 0;
    server_ = std::make_unique<Server>(
        options, [](std::string_view, std::string_view) { return size_t{1} << 20; },
        [this](Request&& r, Respond respond) {
          calls_.fetch_add(1);
          Response res;
          if (r.path == "/big" || r.path == "/big-elsewhere") {
            res.body.assign(bigBytes_, 'x');
          } else {
            res.body = r.method + " " + r.path + " " + r.query + " " + r.body;
          }
          if (r.path != "/big-elsewhere") return respond(std::move(res));
          // As from a worker thread.
          std::lock_guard lock(workersMu_);
          workers_.emplace_back([respond = std::move(respond), res = std::move(res)]() mutable {
            respond(std::move(res));
          });
        });
    if (upgrade_) server_->setUpgradeHandler(upgrade_, webSocketOptions_);
    ASSERT_TRUE(server_->start().ok());
  }
  void TearDown() override {
    {
      std::lock_guard lock(workersMu_);
      for (auto& t : workers_) t.join();
    }
    if (server_) server_->stop(0ms);
    for (int fd : fds_) {
      if (fd >= 0) close(fd);
    }
  }
  uint16_t port() const { return server_->port(); }
  // A connection owned by the test (closed at the end).
  int open(const char* source, int receiveBuffer = 0) {
    int fd = connectFrom(source, port(), receiveBuffer);
    EXPECT_GE(fd, 0) << "cannot connect from " << source;
    fds_.push_back(fd);
    return fd;
  }
  test::HttpReply ask(const char* source, const std::string& raw) {
    int fd = open(source);
    if (!sendAll(fd, raw)) return {};
    return readResponse(fd);
  }

  std::unique_ptr<Server> server_;
  UpgradeHandler upgrade_;  // set before start()
  WebSocketOptions webSocketOptions_;
  std::atomic<uint64_t> calls_{0};
  size_t bigBytes_ = 4u << 20;
  std::vector<int> fds_;
  std::mutex workersMu_;
  std::vector<std::thread> workers_;
};

// Issue 10, item 3: one client could take every connection.
TEST_F(HttpServerTest, AClientBeyondItsConnectionLimitIsRefusedWhileOthersAreServed) {
  ServerOptions o;
  o.maxConnectionsPerClient = 4;
  o.readTimeout = 600s;  // the silent connections stay while the test runs
  start(o);
  std::vector<int> first;
  for (int i = 0; i < 4; ++i) first.push_back(open("127.0.0.1"));
  ASSERT_TRUE(test::eventually([&] { return server_->stats().openConnections == 4; }));
  int fifth = open("127.0.0.1");
  EXPECT_TRUE(closedByServer(fifth, 30s));
  EXPECT_EQ(server_->stats().connectionsRefusedPerClient, 1u);
  EXPECT_EQ(ask("127.0.0.2", kGet).status, 200);
  EXPECT_EQ(calls_.load(), 1u);
  // A connection that ends gives its place back.
  ASSERT_TRUE(sendAll(first[0], "GET /a HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
  EXPECT_EQ(readResponse(first[0]).status, 200);
  // (the other client's keep-alive connection is still open)
  ASSERT_TRUE(test::eventually([&] { return server_->stats().openConnections == 4; }));
  EXPECT_EQ(ask("127.0.0.1", kGet).status, 200);
}

TEST_F(HttpServerTest, ANewConnectionThatSendsNothingHasTheReadTimeoutNotTheIdleOne) {
  ServerOptions o;
  o.readTimeout = 1s;
  o.idleTimeout = 3600s;
  start(o);
  int silent = open("127.0.0.1");
  EXPECT_TRUE(closedByServer(silent, 60s));
  // A keep-alive connection between requests has the idle timeout.
  int kept = open("127.0.0.1");
  ASSERT_TRUE(sendAll(kept, kGet));
  EXPECT_EQ(readResponse(kept).status, 200);
  EXPECT_TRUE(test::eventually([&] { return server_->stats().openConnections == 1; }));
}

TEST_F(HttpServerTest, AtTheConnectionLimitTheLongestIdleConnectionMakesRoom) {
  ServerOptions o;
  o.maxConnections = 4;
  start(o);
  std::vector<int> kept;
  for (int i = 0; i < 4; ++i) {
    kept.push_back(open("127.0.0.1"));
    ASSERT_TRUE(sendAll(kept.back(), kGet));
    ASSERT_EQ(readResponse(kept.back()).status, 200);
  }
  EXPECT_EQ(ask("127.0.0.2", kGet).status, 200);
  EXPECT_TRUE(closedByServer(kept.front(), 30s));
  auto s = server_->stats();
  EXPECT_EQ(s.idleConnectionsClosed, 1u);
  EXPECT_EQ(s.connectionsRefused, 0u);
  // The others stay usable.
  ASSERT_TRUE(sendAll(kept.back(), kGet));
  EXPECT_EQ(readResponse(kept.back()).status, 200);
}

// Issue 10, item 4: clients that do not read pinned a whole response each.
TEST_F(HttpServerTest, AClientThatDoesNotReadHoldsAtMostItsShareOfUnsentBytes) {
  ServerOptions o;
  o.threads = 1;
  o.maxUnsentResponseBytesPerClient = 8u << 20;
  start(o);
  // Larger than a socket's send buffer can take (tcp_wmem's maximum, 4 MiB by default), so
  // each stalled response leaves bytes unsent.
  bigBytes_ = 12u << 20;
  constexpr uint64_t kStalled = 12;
  for (uint64_t i = 0; i < kStalled; ++i) ASSERT_TRUE(sendAll(open("127.0.0.1", 4096), kGetBig));
  // Once the client's share is spent its other connections wait (before reading their
  // request, or before running it) instead of adding responses.
  ASSERT_TRUE(test::eventually([&] {
    auto s = server_->stats();
    return calls_.load() + s.connectionsWaiting == kStalled;
  }));
  auto s = server_->stats();
  EXPECT_LT(calls_.load(), kStalled);
  EXPECT_GT(s.connectionsWaiting, 0u);
  // The share may be exceeded by the one response that crossed it (plus its header).
  EXPECT_LE(s.unsentResponseBytes, o.maxUnsentResponseBytesPerClient + bigBytes_ + 1024);
  // Another client is served in full meanwhile.
  auto other = ask("127.0.0.2", kGetBig);
  EXPECT_EQ(other.status, 200);
  EXPECT_EQ(other.body.size(), bigBytes_);
}

TEST_F(HttpServerTest, UnsentBytesStayWithinTheNodeBudgetAndDrainWhenStalledClientsGo) {
  ServerOptions o;
  o.threads = 1;
  o.maxUnsentResponseBytes = 16u << 20;
  o.maxUnsentResponseBytesPerClient = 64u << 20;
  start(o);
  bigBytes_ = 12u << 20;
  constexpr uint64_t kStalled = 12;
  std::vector<int> stalled;
  for (uint64_t i = 0; i < kStalled; ++i) {
    stalled.push_back(open(i % 2 ? "127.0.0.1" : "127.0.0.3", 4096));
    ASSERT_TRUE(sendAll(stalled.back(), kGetBig));
  }
  ASSERT_TRUE(test::eventually([&] {
    auto s = server_->stats();
    return calls_.load() + s.connectionsWaiting == kStalled;
  }));
  EXPECT_LT(calls_.load(), kStalled);
  EXPECT_LE(server_->stats().unsentResponseBytes, o.maxUnsentResponseBytes + bigBytes_ + 1024);
  // A well-behaved client waits while the budget is spent, and is served once the stalled
  // clients go away and their bytes are released.
  int patient = open("127.0.0.2");
  ASSERT_TRUE(sendAll(patient, kGetBig));
  auto reply = std::async(std::launch::async, [&] { return readResponse(patient, 60s); });
  // Closing with unread bytes resets the connection, so the server's writes fail.
  for (int& fd : fds_) {
    if (fd != patient) {
      close(fd);
      fd = -1;
    }
  }
  auto r = reply.get();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.size(), bigBytes_);
  EXPECT_TRUE(test::eventually([&] { return server_->stats().unsentResponseBytes == 0; }));
}

// Issue 10, item 5: the write deadline covered the whole response, so a slow but steady
// reader got a truncated one.
TEST_F(HttpServerTest, ASlowButSteadyReaderReceivesTheWholeResponse) {
  ServerOptions o;
  o.writeTimeout = 1500ms;
  start(o);
  bigBytes_ = 6u << 20;
  int fd = open("127.0.0.1", 64 * 1024);
  ASSERT_TRUE(sendAll(fd, "GET /big HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
  // 64 KiB every 50 ms: about 5 s for 6 MiB, far past the write timeout in total, while the
  // client takes bytes about 30 times per timeout.
  std::string got;
  char buf[64 * 1024];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
    std::this_thread::sleep_for(50ms);
  }
  auto reply = test::parseReply(got);
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body.size(), bigBytes_);
}

TEST_F(HttpServerTest, ResponsesCompletedOnOtherThreadsAreSentWholeAndCounted) {
  start({});
  int fd = open("127.0.0.1", 64 * 1024);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(sendAll(fd, "GET /big-elsewhere HTTP/1.1\r\nHost: t\r\n\r\n"));
    auto r = readResponse(fd);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body.size(), bigBytes_);
  }
  EXPECT_TRUE(test::eventually([&] { return server_->stats().unsentResponseBytes == 0; }));
}

// Issue 10, item 8: request-line and header edges.
TEST(OriginFormTest, AbsoluteFormTargetsAreReducedToPathAndQuery) {
  struct Case {
    const char* target;
    const char* origin;
  } cases[] = {
      {"/fn/x?y=1", "/fn/x?y=1"},
      {"http://host/fn/x", "/fn/x"},
      {"HTTP://host:8080/fn/x?y=1", "/fn/x?y=1"},
      {"https://host/", "/"},
      {"http://host", "/"},
      {"http://host?y=1", "/?y=1"},
      {"*", "*"},
  };
  for (const auto& c : cases) EXPECT_EQ(originForm(c.target), c.origin) << c.target;
}

TEST(FramingRefusalTest, HostAndTransferEncodingFollowRfc9112) {
  using V = std::vector<std::string_view>;
  struct Case {
    unsigned version;
    size_t hosts;
    V codings;
    int status;  // 0: accepted
  } cases[] = {
      {11, 1, {}, 0},
      {11, 0, {}, 400},
      {11, 2, {}, 400},
      {10, 0, {}, 0},
      {10, 2, {}, 400},
      {11, 1, {"chunked"}, 0},
      {11, 1, {" Chunked "}, 0},
      {11, 1, {"gzip, chunked"}, 501},
      {11, 1, {"gzip", "chunked"}, 501},
      {11, 1, {"chunked, chunked"}, 400},
      {11, 1, {"gzip"}, 400},
      {11, 1, {"chunked, gzip"}, 400},
      {11, 1, {""}, 400},
      {10, 0, {"chunked"}, 400},
  };
  for (const auto& c : cases) {
    auto r = framingRefusal(c.version, c.hosts, c.codings);
    EXPECT_EQ(r ? r->status : 0, c.status)
        << "HTTP/1." << c.version % 10 << " hosts=" << c.hosts << " codings=" << c.codings.size()
        << (c.codings.empty() ? "" : " first=" + std::string(c.codings.front()));
  }
}

TEST(ParseRequestTest, BytesGiveTheRequestOrTheRefusalAConnectionWouldAnswer) {
  auto limit = [](std::string_view, std::string_view target) -> size_t {
    return target.starts_with("/fn/") ? 8 : 2;
  };
  struct Case {
    const char* bytes;
    int status;        // 0: parsed
    const char* path;  // when parsed
  } cases[] = {
      {"GET /fn/a%20b?x=1 HTTP/1.1\r\nHost: h\r\n\r\n", 0, "/fn/a b"},
      {"GET http://h/fn/x?y HTTP/1.1\r\nHost: h\r\n\r\n", 0, "/fn/x"},
      {"POST /fn/x HTTP/1.1\r\nHost: h\r\nContent-Length: 8\r\n\r\n12345678", 0, "/fn/x"},
      {"POST /v1/x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc", 413, ""},
      {"POST /v1/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 413, ""},
      {"GET /fn/a%00 HTTP/1.1\r\nHost: h\r\n\r\n", 400, ""},
      {"GET /fn/a%g0 HTTP/1.1\r\nHost: h\r\n\r\n", 400, ""},
      {"GET / HTTP/1.1\r\n\r\n", 400, ""},
      {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, ""},
      {"GET / HTTP/1.1\r\nHost: h\r\nX: 0123456789012345678901234567890123456789"
       "0123456789012345678901234567890123456789012345678901234567890123456789\r\n\r\n",
       431, ""},
      {"GET / HTTP/1.1\r\nHost: h\r\n", 400, ""},
      {"not http at all\r\n\r\n", 400, ""},
  };
  for (const auto& c : cases) {
    auto r = parseRequest(c.bytes, 64, limit);
    if (auto* refusal = std::get_if<Refusal>(&r)) {
      EXPECT_EQ(refusal->status, c.status) << c.bytes << ": " << refusal->message;
    } else {
      EXPECT_EQ(c.status, 0) << c.bytes;
      EXPECT_EQ(std::get<Request>(r).path, c.path) << c.bytes;
    }
  }
}

TEST_F(HttpServerTest, AnAbsoluteFormTargetIsServedLikeItsOriginForm) {
  start({});
  auto r = ask("127.0.0.1", "GET http://127.0.0.1:8080/fn/x/y?a=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "GET /fn/x/y a=1 ");
}

TEST_F(HttpServerTest, AnHttp11RequestNeedsExactlyOneHost) {
  start({});
  EXPECT_EQ(ask("127.0.0.1", "GET /a HTTP/1.1\r\n\r\n").status, 400);
  EXPECT_EQ(ask("127.0.0.1", "GET /a HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").status, 400);
  EXPECT_EQ(calls_.load(), 0u);
  EXPECT_EQ(ask("127.0.0.1", "GET /a HTTP/1.1\r\nHost: a\r\n\r\n").status, 200);
  // HTTP/1.0 did not require it.
  auto old = test::sendRaw(port(), "GET /a HTTP/1.0\r\n\r\n");
  EXPECT_NE(old.raw.find("HTTP/1.0 200"), std::string::npos) << old.raw;
}

TEST_F(HttpServerTest, TransferCodingsOtherThanChunkedAreRefused) {
  start({});
  auto post = [&](const std::string& codings) {
    return ask("127.0.0.1", "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: " + codings +
                                "\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
  };
  EXPECT_EQ(post("gzip, chunked").status, 501);
  EXPECT_EQ(post("gzip").status, 400);
  EXPECT_EQ(post("chunked, chunked").status, 400);
  EXPECT_EQ(ask("127.0.0.1", "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
                .status,
            400);
  EXPECT_EQ(calls_.load(), 0u);
  auto ok = post("chunked");
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, "POST /a  abc");
}

TEST_F(HttpServerTest, APathWithAnEncodedNulIsRefusedNotTruncated) {
  start({});
  auto r = ask("127.0.0.1", "GET /fn/x/a%00b HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("NUL"), std::string::npos) << r.body;
  EXPECT_EQ(calls_.load(), 0u);
}

// Plain connections (design/serving.md, "Plain connections"): requests that come together,
// in pieces or larger than one read are answered whole and in order.
TEST_F(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  start({});
  int fd = open("127.0.0.1");
  ASSERT_TRUE(sendAll(fd, "GET /a HTTP/1.1\r\nHost: t\r\n\r\n"
                          "POST /b?q HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbody"
                          "GET /big-elsewhere HTTP/1.1\r\nHost: t\r\n\r\n"
                          "GET /c HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto replies = readResponses(fd, 4);
  ASSERT_EQ(replies.size(), 4u);
  EXPECT_EQ(replies[0].body, "GET /a  ");
  EXPECT_EQ(replies[1].body, "POST /b q body");
  EXPECT_EQ(replies[2].body.size(), bigBytes_);
  EXPECT_EQ(replies[3].body, "GET /c  ");
  EXPECT_EQ(calls_.load(), 4u);
}

// Pipelined requests arrive split at every offset of the connection's reads (29-byte
// requests, 16 KiB reads) and are answered in order, however many there are.
TEST_F(HttpServerTest, ManyPipelinedRequestsAreAllAnswered) {
  start({});
  int fd = open("127.0.0.1");
  constexpr size_t kRequests = 50000;
  auto replies = std::async(std::launch::async, [&] { return readResponses(fd, kRequests, 120s); });
  std::string batch;
  for (size_t i = 0; i < 1000; ++i) batch += "GET /a HTTP/1.1\r\nHost: t\r\n\r\n";
  for (size_t i = 0; i < kRequests / 1000; ++i) ASSERT_TRUE(sendAll(fd, batch));
  auto got = replies.get();
  ASSERT_EQ(got.size(), kRequests);
  EXPECT_EQ(got.back().body, "GET /a  ");
  EXPECT_EQ(calls_.load(), kRequests);
}

TEST_F(HttpServerTest, ARequestSentByteByByteIsServed) {
  start({});
  int fd = open("127.0.0.1");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  std::string req = "PUT /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
  for (char c : req) ASSERT_TRUE(sendAll(fd, std::string(1, c)));
  EXPECT_EQ(readResponse(fd).body, "PUT /x  abcde");
}

TEST_F(HttpServerTest, ABodyLargerThanOneReadArrivesWhole) {
  start({});
  std::string body(300 * 1024, 'b');
  for (size_t i = 0; i < body.size(); i += 4096) body[i] = static_cast<char>('a' + i / 4096 % 26);
  auto r = ask("127.0.0.1", "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: " +
                                std::to_string(body.size()) + "\r\n\r\n" + body);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "POST /x  " + body);
}

TEST_F(HttpServerTest, Http10ClosesAfterItsResponseAndHeadGetsNoBody) {
  start({});
  int fd = open("127.0.0.1");
  ASSERT_TRUE(sendAll(fd, "GET /a HTTP/1.0\r\n\r\n"));
  auto r = readResponse(fd);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["connection"], "close");
  EXPECT_TRUE(closedByServer(fd, 30s));

  int kept = open("127.0.0.1");
  ASSERT_TRUE(sendAll(kept, "HEAD /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  std::string got;
  char buf[4096];
  while (got.find("\r\n\r\n") == std::string::npos) {
    ssize_t n = recv(kept, buf, sizeof buf, 0);
    ASSERT_GT(n, 0);
    got.append(buf, static_cast<size_t>(n));
  }
  auto head = test::parseReply(got);
  EXPECT_EQ(head.headers["content-length"], "9");  // of the body not sent, "HEAD /a  "
  EXPECT_EQ(head.headers["connection"], "keep-alive");
  // No body follows: the next response comes right after the head.
  ASSERT_TRUE(sendAll(kept, "GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  auto next = readResponse(kept);
  EXPECT_EQ(got.substr(got.find("\r\n\r\n") + 4) + next.raw.substr(0, 8), "HTTP/1.0");
  EXPECT_EQ(next.body, "GET /b  ");
}

TEST_F(HttpServerTest, ATlsHandshakeOnAPlainPortIsClosedAndOthersAreServed) {
  start({});
  int fd = open("127.0.0.1");
  ASSERT_TRUE(sendAll(fd, std::string("\x16\x03\x01\x00\x05hello", 10)));
  EXPECT_TRUE(closedByServer(fd, 30s));
  EXPECT_EQ(server_->stats().badRequests, 1u);
  EXPECT_EQ(ask("127.0.0.2", kGet).status, 200);
  EXPECT_EQ(calls_.load(), 1u);
}

// A WebSocket that ignores what it hears.
class QuietListener : public WebSocketListener {
 public:
  void onMessage(std::string) override {}
  void onDrained() override {}
  void onClosed() override {}
};

std::string upgradeRequest(const std::string& path) {
  return "GET " + path +
         " HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
}

TEST_F(HttpServerTest, UpgradesAreRefusedAcceptedOrTurnedAwayAtTheWebSocketLimit) {
  upgrade_ = [](const Request& r) {
    UpgradeDecision d;
    if (r.path == "/refused") {
      Response no;
      no.status = 403;
      no.body = "not here";
      d.refusal = std::move(no);
    } else if (r.path == "/ws") {
      d.accept = [](std::shared_ptr<WebSocket>) { return std::make_shared<QuietListener>(); };
    }
    return d;
  };
  webSocketOptions_.maxConnections = 1;
  start({});

  int refused = open("127.0.0.1");
  ASSERT_TRUE(sendAll(refused, upgradeRequest("/refused")));
  auto r = readResponse(refused);
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.body, "not here");
  EXPECT_EQ(r.headers["connection"], "close");
  EXPECT_TRUE(closedByServer(refused, 30s));

  // Neither refused nor accepted: an ordinary request.
  EXPECT_EQ(ask("127.0.0.1", upgradeRequest("/plain")).body, "GET /plain  ");

  int ws = open("127.0.0.1");
  ASSERT_TRUE(sendAll(ws, upgradeRequest("/ws")));
  std::string head;
  char buf[4096];
  while (head.find("\r\n\r\n") == std::string::npos) {
    ssize_t n = recv(ws, buf, sizeof buf, 0);
    ASSERT_GT(n, 0);
    head.append(buf, static_cast<size_t>(n));
  }
  EXPECT_TRUE(head.starts_with("HTTP/1.1 101")) << head;
  ASSERT_TRUE(test::eventually([&] { return server_->stats().webSockets == 1; }));

  int more = open("127.0.0.1");
  ASSERT_TRUE(sendAll(more, upgradeRequest("/ws")));
  auto busy = readResponse(more);
  EXPECT_EQ(busy.status, 503);
  EXPECT_NE(busy.body.find("this node has its 1 WebSocket connections"), std::string::npos)
      << busy.body;
  EXPECT_TRUE(closedByServer(more, 30s));
  EXPECT_EQ(server_->stats().webSockets, 1u);
  EXPECT_EQ(calls_.load(), 1u);
}

}  // namespace
}  // namespace tern::http
