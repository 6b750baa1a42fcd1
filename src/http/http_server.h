#pragma once
// tern's HTTP/1.1 server (Boost.Beast), kept behind a small transport-neutral interface so
// Beast's heavy headers stay in one translation unit. One io_context runs on a pool of
// threads; each connection has its own strand. Requests are read header first, so the body
// limit depends on the route and an oversized body is refused before it is read; every read
// has a deadline, so slow or stalled clients cost a socket, never a thread.

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

#include "util/error.h"

namespace tern::http {

struct Header {
  std::string name;
  std::string value;
};

struct Request {
  std::string method;  // "GET", "PUT", ...
  std::string target;  // as sent: path and query
  std::string path;    // decoded path, without the query
  std::string query;   // raw query string, without '?'
  std::vector<Header> headers;
  std::string body;
  std::string remoteAddress;

  // The first header with this name (case-insensitive), or nullptr.
  const std::string* header(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::vector<Header> headers;
  std::string body;
  std::string contentType = "text/plain; charset=utf-8";
};

// Sends the response; callable from any thread, exactly once.
using Respond = std::function<void(Response)>;

struct ServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 8080;  // 0: pick a free port
  unsigned threads = 2;
  size_t maxHeaderBytes = 16 * 1024;
  size_t maxConnections = 10000;
  std::chrono::milliseconds readTimeout{10000};   // to receive a whole request once begun
  std::chrono::milliseconds idleTimeout{60000};   // keep-alive connection without a request
  std::chrono::milliseconds writeTimeout{30000};
  std::string serverHeader = "tern";
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
    uint64_t connectionsRefused = 0;  // over maxConnections
    uint64_t requests = 0;
    uint64_t badRequests = 0;         // malformed, oversized or timed out
    uint64_t openConnections = 0;
    uint64_t inFlight = 0;
  };
  Stats stats() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Percent-decodes a path or query component; nullopt on malformed escapes.
std::optional<std::string> percentDecode(std::string_view s, bool plusIsSpace = false);

// The value of `key` in an application/x-www-form-urlencoded query, all values if repeated.
std::vector<std::string> queryValues(std::string_view query, std::string_view key);

}  // namespace tern::http
