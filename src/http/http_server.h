#pragma once
// tern's HTTP/1.1 server, behind a small transport-neutral interface. Plain HTTP is served by
// epoll loops of its own, one per thread; TLS and WebSockets by Boost.Beast, whose heavy
// headers stay in src/http (docs/design/serving.md, "Plain connections"). A connection stays
// on one thread. Requests are read header first, so the body
// limit depends on the route and an oversized body is refused before it is read; every read
// has a deadline, so slow or stalled clients cost a socket, never a thread. Connections are
// limited per client and in total; the bytes of responses that clients have not taken yet
// have a budget, and past it no new request is read or run until they drain (back-pressure
// on guest output instead of unbounded memory). With ServerOptions::tls it serves HTTPS,
// plain HTTP and TLS told apart by each connection's first byte (docs/design/tls.md).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/tls.h"
#include "util/error.h"

namespace tern::http {

struct Header {
  std::string name;
  std::string value;
};

struct Request {
  std::string method;  // "GET", "PUT", ...
  std::string target;  // origin-form: path and query (an absolute-form target is reduced to it)
  std::string path;    // decoded path, without the query
  std::string query;   // raw query string, without '?'
  std::vector<Header> headers;
  std::string body;
  std::string remoteAddress;

  // The first header with this name (case-insensitive), or nullptr.
  const std::string* header(std::string_view name) const;
};

// A response header whose name is a string literal: the name is not copied.
struct LiteralHeader {
  std::string_view name;  // static storage
  std::string value;
};

struct Response {
  int status = 200;
  std::vector<Header> headers;
  // Sent after `headers`: tern's own headers on the invocation path, names not copied.
  std::vector<LiteralHeader> literalHeaders;
  std::string body;
  std::string contentType;  // empty: "text/plain; charset=utf-8"
};

// Sends the response; callable from any thread, exactly once.
using Respond = std::function<void(Response)>;

// A WebSocket connection's way out (text messages, RFC 6455), callable from any thread.
class WebSocket {
 public:
  virtual ~WebSocket() = default;
  // Queues a message. False (nothing queued) when the connection's unsent bytes would
  // exceed WebSocketOptions::maxUnsentBytes or it is closing.
  virtual bool send(std::string text) = 0;
  virtual size_t unsentBytes() const = 0;
  // Sends `lastText` (when not empty) after what is queued, then closes with code 1000
  // and `reason` (at most 123 bytes). Later sends are refused.
  virtual void close(std::string lastText, std::string reason) = 0;
  virtual const std::string& remoteAddress() const = 0;
};

// What receives a WebSocket connection's messages; called on the connection's thread, one
// call at a time.
class WebSocketListener {
 public:
  virtual ~WebSocketListener() = default;
  virtual void onMessage(std::string text) = 0;
  // The unsent bytes fell to WebSocketOptions::drainedBytes after a send was refused.
  virtual void onDrained() = 0;
  // The connection is gone (closed by either side, failed, or timed out); the last call.
  virtual void onClosed() = 0;
};

struct WebSocketOptions {
  // Open WebSocket connections; they leave ServerOptions::maxConnections to ordinary
  // requests (so a node full of devices still answers its API), and still count per client.
  size_t maxConnections = 100000;
  size_t maxMessageBytes = 64u << 10;  // a larger message closes the connection (1009)
  size_t maxUnsentBytes = 1u << 20;
  size_t drainedBytes = 64u << 10;
  // With messages unsent, the connection is closed when the client acknowledges no byte
  // during this time (a client that does not read); a silent client is pinged after half
  // the idle timeout and closed after the whole.
  std::chrono::milliseconds stallTimeout{30000};
  std::chrono::milliseconds idleTimeout{300000};
};

// How an upgrade request is answered: `refusal` is sent as an ordinary response; `accept`
// makes the connection a WebSocket and returns its listener. Neither set: the request goes
// to the ordinary handler.
struct UpgradeDecision {
  std::optional<Response> refusal;
  std::function<std::shared_ptr<WebSocketListener>(std::shared_ptr<WebSocket>)> accept;
};
using UpgradeHandler = std::function<UpgradeDecision(const Request&)>;

struct ServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 8080;  // 0: pick a free port
  unsigned threads = 2;
  size_t maxHeaderBytes = 16 * 1024;
  // Open connections in total; at the limit a newcomer takes the place of the connection
  // that has waited longest for its next request, and is refused only when there is none.
  size_t maxConnections = 10000;
  // Open connections per client: one IPv4 address, or one IPv6 /64 prefix.
  size_t maxConnectionsPerClient = 128;
  // A new connection's first request, and any request once it has begun, must arrive
  // whole within the read timeout.
  std::chrono::milliseconds readTimeout{10000};
  std::chrono::milliseconds idleTimeout{60000};   // keep-alive connection between requests
  // Writing a response fails when the client acknowledges no byte of it during a whole
  // timeout (inactivity, not the transfer: a slow but steady reader receives it all).
  std::chrono::milliseconds writeTimeout{30000};
  // Budget of response bytes not yet taken by clients' sockets, in total and per client.
  // While a budget is spent, connections of the clients it covers neither begin reading a
  // request nor run one that has arrived; they resume as the bytes drain. Requests admitted
  // before it was spent add their responses regardless (docs/design/serving.md).
  size_t maxUnsentResponseBytes = size_t{64} << 20;
  size_t maxUnsentResponseBytesPerClient = size_t{16} << 20;
  std::string serverHeader = "tern";
  // Serve HTTPS with this identity (tls.h); null: plain HTTP. Either way the first byte
  // of a connection is checked: plain HTTP sent to a TLS server gets a plain-text 400 saying
  // so, a TLS handshake sent to a plain server is logged and closed.
  std::shared_ptr<const ServerTls> tls;
};

class Server {
 public:
  // Body limit for a request, decided from its method and target before the body is read.
  using BodyLimit = std::function<size_t(std::string_view method, std::string_view target)>;
  using Handler = std::function<void(Request&&, Respond)>;

  Server(ServerOptions options, BodyLimit bodyLimit, Handler handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // WebSocket upgrades (GET with "Upgrade: websocket"); set before start(). WebSocket
  // connections have their own limit (WebSocketOptions::maxConnections) and count in the
  // per-client one.
  void setUpgradeHandler(UpgradeHandler handler, WebSocketOptions options = {});

  // Binds and starts serving. Errors: kIo (address in use, ...).
  Result<void> start();
  uint16_t port() const;

  // Stops accepting connections and closes idle ones; a request in flight finishes and
  // its connection closes after it ("Connection: close"). Once this returns, connections
  // are refused. Returns without waiting for requests; stop() begins with it.
  void stopAccepting();
  // Stops accepting, closes idle connections, lets requests in flight finish (up to
  // `drain`), then stops the threads.
  void stop(std::chrono::milliseconds drain);

  struct Stats {
    uint64_t connectionsAccepted = 0;
    uint64_t connectionsRefused = 0;           // at maxConnections, none idle to close
    uint64_t connectionsRefusedPerClient = 0;  // the client at maxConnectionsPerClient
    uint64_t idleConnectionsClosed = 0;        // closed to make room for a newcomer
    uint64_t requests = 0;
    uint64_t badRequests = 0;         // malformed, oversized or timed out
    uint64_t openConnections = 0;
    uint64_t inFlight = 0;
    uint64_t unsentResponseBytes = 0;  // serialised responses not yet taken by the sockets
    uint64_t connectionsWaiting = 0;   // waiting for unsent response bytes to drain
    uint64_t webSockets = 0;           // open WebSocket connections (not in openConnections)
    uint64_t tlsHandshakesFailed = 0;  // TLS clients that did not complete the handshake
  };
  Stats stats() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// The origin-form (path and query) of a request target. An absolute-form target
// ("http://host/fn/x?y", RFC 9112 §3.2.2) is reduced to it, its authority ignored as the RFC
// asks (the Host header is not used for routing either); other forms are kept as sent.
std::string originForm(std::string_view target);

// Percent-decodes a path or query component; nullopt on malformed escapes.
std::optional<std::string> percentDecode(std::string_view s, bool plusIsSpace = false);

// The value of `key` in an application/x-www-form-urlencoded query, all values if repeated.
std::vector<std::string> queryValues(std::string_view query, std::string_view key);

}  // namespace tern::http
