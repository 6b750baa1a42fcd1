#include "http/http_client.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

namespace tern::http {
namespace {

TEST(NodeUrlTest, ParsesHostPortAndPrefix) {
  auto u = parseNodeUrl("http://127.0.0.1:18555");
  ASSERT_TRUE(u.ok()) << u.error().describe();
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 18555);
  EXPECT_EQ(u->path, "");
  EXPECT_EQ(u->text(), "http://127.0.0.1:18555");
  EXPECT_EQ(u->hostHeader(), "127.0.0.1:18555");

  auto p = parseNodeUrl("http://node.example:8080/tern/");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->host, "node.example");
  EXPECT_EQ(p->path, "/tern");
  EXPECT_EQ(p->text(), "http://node.example:8080/tern");
}

TEST(NodeUrlTest, DefaultsPortAndAcceptsMissingScheme) {
  auto d = parseNodeUrl("http://localhost");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->port, 80);
  EXPECT_EQ(d->hostHeader(), "localhost");
  auto bare = parseNodeUrl("10.0.0.7:9000");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->host, "10.0.0.7");
  EXPECT_EQ(bare->port, 9000);
}

TEST(NodeUrlTest, ParsesBracketedIpv6) {
  auto u = parseNodeUrl("http://[::1]:8080");
  ASSERT_TRUE(u.ok()) << u.error().describe();
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 8080);
  EXPECT_EQ(u->text(), "http://[::1]:8080");
  EXPECT_EQ(u->hostHeader(), "[::1]:8080");
}

TEST(NodeUrlTest, ParsesHttpsWithItsDefaultPort) {
  auto u = parseNodeUrl("https://node.example");
  ASSERT_TRUE(u.ok()) << u.error().describe();
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->hostHeader(), "node.example");
  EXPECT_EQ(u->text(), "https://node.example:443");
  auto upper = parseNodeUrl("HTTPS://127.0.0.1:8443/tern/");
  ASSERT_TRUE(upper.ok());
  EXPECT_TRUE(upper->tls);
  EXPECT_EQ(upper->port, 8443);
  EXPECT_EQ(upper->path, "/tern");
  EXPECT_EQ(upper->hostHeader(), "127.0.0.1:8443");
  auto plain = parseNodeUrl("127.0.0.1:8080");
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->tls);
}

// Request URLs (async callbacks, serverless functions) keep their query and need a scheme.
TEST(RequestUrlTest, KeepsPathAndQueryAndNeedsAScheme) {
  auto u = parseUrl("https://hooks.example:9443/cb?x=1#frag", UrlUse::kRequest);
  ASSERT_TRUE(u.ok()) << u.error().describe();
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->port, 9443);
  EXPECT_EQ(u->path, "/cb?x=1");
  auto bare = parseUrl("http://h?q", UrlUse::kRequest);
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->path, "/?q");
  for (const char* bad : {"h:80/x", "ftp://h/", "http://h/a b", "http://h\x01/"}) {
    EXPECT_FALSE(parseUrl(bad, UrlUse::kRequest).ok()) << bad;
  }
  EXPECT_FALSE(parseUrl("http://h/" + std::string(3000, 'a'), UrlUse::kRequest).ok());
}

TEST(NodeUrlTest, RefusesMalformedUrls) {
  for (const char* bad : {"ftp://host", "http://", "http://:8080", "http://host:", "http://host:0",
                          "http://host:65536", "http://host:80x", "http://user@host",
                          "http://host/x?y=1", "http://[::1", "http://[::1]x", "http://ho st"}) {
    auto u = parseNodeUrl(bad);
    ASSERT_FALSE(u.ok()) << bad;
    EXPECT_EQ(u.error().code(), ErrorCode::kInvalidArgument) << bad;
  }
}

TEST(PercentEncodeTest, KeepsUnreservedAndEncodesTheRest) {
  EXPECT_EQ(percentEncode("abc-XYZ_0.9~"), "abc-XYZ_0.9~");
  EXPECT_EQ(percentEncode("K=a b&c+d/é"), "K%3Da%20b%26c%2Bd%2F%C3%A9");
  EXPECT_EQ(percentEncode(std::string("\0\n", 2)), "%00%0A");
}

// A listening socket on 127.0.0.1 with a free port, closed with the object.
class Listener {
 public:
  Listener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_, 4), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~Listener() { close(); }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int fd() const { return fd_; }
  uint16_t port() const { return port_; }
  NodeUrl url() const {
    NodeUrl u;
    u.host = "127.0.0.1";
    u.port = port_;
    return u;
  }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// Accepts one connection, reads the request head (and `bodyBytes` of body), answers
// `response` unless it is empty, and keeps the received bytes.
std::thread serveOnce(int listenFd, std::string response, size_t bodyBytes, std::string* received) {
  return std::thread([=] {
    int c = ::accept(listenFd, nullptr, nullptr);
    if (c < 0) return;
    std::string in;
    char buf[4096];
    while (true) {
      size_t head = in.find("\r\n\r\n");
      if (head != std::string::npos && in.size() >= head + 4 + bodyBytes) break;
      ssize_t n = ::read(c, buf, sizeof buf);
      if (n <= 0) break;
      in.append(buf, static_cast<size_t>(n));
    }
    *received = in;
    if (!response.empty()) {
      (void)!::write(c, response.data(), response.size());
      ::shutdown(c, SHUT_WR);
      // Wait for the client to close so the answer is never cut by a reset.
      while (::read(c, buf, sizeof buf) > 0) {
      }
    } else {
      while (::read(c, buf, sizeof buf) > 0) {
      }
    }
    ::close(c);
  });
}

TEST(SendHttpTest, SendsTheRequestAndReadsABinaryResponse) {
  Listener l;
  std::string received;
  std::string body("a\0b\xff", 4);
  std::string response =
      "HTTP/1.1 404 Not Found\r\nContent-Type: application/octet-stream\r\n"
      "X-Tern-Invocation-Id: abc\r\nContent-Length: 4\r\n\r\n" +
      body;
  std::thread server = serveOnce(l.fd(), response, 5, &received);
  HttpRequest req;
  req.method = "PUT";
  req.target = "/fn/echo/x?y=1";
  req.headers.push_back({"X-Test", "yes"});
  req.body = "hello";
  auto res = sendHttp(l.url(), req, HttpClientOptions{});
  server.join();
  ASSERT_TRUE(res.ok()) << res.error().describe();
  EXPECT_EQ(res->status, 404);
  EXPECT_EQ(res->body, body);
  ASSERT_NE(res->header("x-tern-invocation-id"), nullptr);
  EXPECT_EQ(*res->header("x-tern-invocation-id"), "abc");
  EXPECT_EQ(res->header("X-Missing"), nullptr);
  EXPECT_EQ(received.rfind("PUT /fn/echo/x?y=1 HTTP/1.1\r\n", 0), 0u) << received;
  EXPECT_NE(received.find("X-Test: yes\r\n"), std::string::npos);
  EXPECT_NE(received.find(fmt::format("Host: 127.0.0.1:{}\r\n", l.port())), std::string::npos);
  EXPECT_NE(received.find("Content-Length: 5\r\n"), std::string::npos);
  EXPECT_EQ(received.substr(received.size() - 5), "hello");
}

TEST(SendHttpTest, ConnectionRefusedIsUnavailableWithOneClearMessage) {
  Listener l;
  NodeUrl url = l.url();
  l.close();  // nothing listens on the port any more
  auto res = sendHttp(url, HttpRequest{}, HttpClientOptions{});
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(res.error().message(),
            fmt::format("cannot connect to http://127.0.0.1:{} (is ternd running?)", url.port));
}

TEST(SendHttpTest, ANodeThatNeverAnswersEndsAtTheResponseDeadline) {
  Listener l;
  std::string received;
  std::thread server = serveOnce(l.fd(), "", 0, &received);
  HttpClientOptions options;
  options.responseTimeout = std::chrono::milliseconds(200);
  auto res = sendHttp(l.url(), HttpRequest{}, options);
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(res.error().message().find("no complete response"), std::string::npos);
  server.join();
}

TEST(SendHttpTest, RefusesHeadersThatWouldSplitTheRequest) {
  Listener l;
  HttpRequest req;
  req.headers.push_back({"X-Evil", "a\r\nHost: other"});
  auto res = sendHttp(l.url(), req, HttpClientOptions{});
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.error().code(), ErrorCode::kInvalidArgument);
  req.headers.clear();
  req.method = "GE T";
  EXPECT_FALSE(sendHttp(l.url(), req, HttpClientOptions{}).ok());
}

}  // namespace
}  // namespace tern::http
