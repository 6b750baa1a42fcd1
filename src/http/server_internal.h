#pragma once
// Internal to src/http: what the server's two kinds of connection share. Plain HTTP
// connections are served by epoll loops of their own (plain_connection.cpp); TLS
// connections and WebSockets by Asio and Beast (http_server.cpp). Both kinds count in the
// same limits, the same unsent-response budget and the same registry, through Connection.

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "http/http_server.h"
#include "http/request_parser.h"
#include "util/thread_annotations.h"

namespace tern::http {

class WebSocketSession;
class PlainLoops;

// One client of the server, shared by its connections.
struct Client {
  std::string key;
  size_t connections = 0;  // guarded by Server::Impl::clientsMu
  std::atomic<size_t> unsentBytes{0};
};

class Connection;

// A request a connection's parser completed, taken from the parser (which is reset for the
// next one) with what the connection needs to answer it, and what to do with it.
struct Arrival {
  enum class Next {
    kRun,        // hand it to the handler (after the budget check)
    kRespond,    // send `response` (an upgrade refused) and close
    kWebSocket,  // become a WebSocket through `accept`
  };
  explicit Arrival(Request&& r) : request(std::move(r)) {}
  Request request;
  bool keepAlive = false;
  bool isHead = false;
  unsigned version = 11;
  Next next = Next::kRun;
  std::optional<Response> response;
  std::function<std::shared_ptr<WebSocketListener>(std::shared_ptr<WebSocket>)> accept;
};

// A connection in the server's registry. A connection removes its own entry in its
// destructor, under Server::Impl::mu: so no shared_ptr<Connection> may be released while
// `mu` is held, and an entry's `connection` is valid while `mu` is held.
struct ConnectionEntry {
  Connection* connection;
  std::weak_ptr<Connection> weak;
};

// A connection waiting for unsent response bytes to drain; the entry keeps it alive
// (nothing else does while it waits) until it is resumed or closed.
struct WaitingEntry {
  std::shared_ptr<Connection> connection;
  std::shared_ptr<Client> client;
};

// What the server asks of a connection, from any thread.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  virtual ~Connection() = default;
  // Closes the connection if it is waiting for a request (called when draining).
  virtual void closeIfIdle() = 0;
  // Closes the connection if it is still waiting for its next request (to make room).
  virtual void closeForNewcomer() = 0;
  // Goes on after waiting for the budget: runs the request that arrived, or reads the next.
  virtual void resume() = 0;

  // When this keep-alive connection began waiting for its next request (steady clock, ns),
  // or 0 while it is not; claimIdle takes it for closing, once.
  int64_t idleSinceNs() const { return idleSinceNs_.load(std::memory_order_relaxed); }
  bool claimIdle(int64_t since) { return idleSinceNs_.compare_exchange_strong(since, 0); }

  std::optional<std::list<ConnectionEntry>::iterator> registration_;  // under Impl::mu
  std::optional<std::list<WaitingEntry>::iterator> waitingAt_;        // under Impl::waitingMu

 protected:
  std::atomic<int64_t> idleSinceNs_{0};
};

struct Server::Impl {
  ServerOptions options;
  BodyLimit bodyLimit;
  Handler handler;

  // Everything up to the io_contexts is declared before them: destroying them destroys
  // pending handlers, which hold sessions, whose destructors use these.
  std::atomic<uint64_t> accepted{0}, refused{0}, refusedPerClient{0}, idleClosed{0}, requests{0},
      badRequests{0}, open{0}, inFlight{0}, tlsHandshakesFailed{0};
  std::atomic<size_t> unsentBytes{0};
  std::atomic<bool> stopping{false};
  std::atomic<uint64_t> webSockets{0};
  // WebSockets asked to close whose last messages are not written yet;
  // stop() waits for them (within the drain) before it stops the threads.
  std::atomic<uint64_t> webSocketsFlushing{0};
  void flushed() {
    if (webSocketsFlushing.fetch_sub(1) == 1) {
      MutexLock lock(mu);
      idle.notify_all();
    }
  }
  UpgradeHandler upgrade;
  WebSocketOptions webSocketOptions;
  // Open WebSocket connections, to close them when stopping; each removes its own entry.
  Mutex wsMu;
  std::list<std::weak_ptr<WebSocketSession>> wsSessions TERN_GUARDED_BY(wsMu);
  int listenFd = -1;  // the acceptor's descriptor, for stopAccepting()

  // Live connections, to close idle ones when draining or making room.
  Mutex mu;
  std::condition_variable idle;
  std::list<ConnectionEntry> connections TERN_GUARDED_BY(mu);

  Mutex clientsMu;
  std::unordered_map<std::string, std::shared_ptr<Client>> clients TERN_GUARDED_BY(clientsMu);

  // Connections waiting for unsent response bytes to drain, oldest first.
  Mutex waitingMu;
  std::list<WaitingEntry> waiting TERN_GUARDED_BY(waitingMu);
  std::atomic<size_t> waitingCount{0};

  // One io_context per thread: a connection lives on one thread, so the common path (read,
  // run the invocation inline, write) involves no cross-thread hand-off or wake-up.
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts;
  std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work;
  std::optional<boost::asio::ip::tcp::acceptor> acceptor;
  std::atomic<size_t> nextContext{0};  // the acceptor's and plain loops' round-robin
  std::vector<std::thread> threads;
  uint16_t boundPort = 0;
  // The loops serving plain HTTP (null when the server speaks TLS); declared after what
  // their connections' destructors use.
  std::unique_ptr<PlainLoops> plain;

  Impl(ServerOptions o, BodyLimit b, Handler h);
  ~Impl();

  void accept();
  void admit(boost::asio::ip::tcp::socket socket);
  // The client's record with one more connection, or nullptr when it is at its limit.
  std::shared_ptr<Client> joinClient(const std::string& key);
  void leaveClient(const std::shared_ptr<Client>& client);
  bool closeLongestIdle();
  void registerConnection(const std::shared_ptr<Connection>& connection);
  void unregisterConnection(Connection& connection);

  // A WebSocket on `socket` (a connection whose upgrade request `req` was accepted); the
  // connection's client slot goes with it.
  void startWebSocket(boost::asio::ip::tcp::socket socket, Request req,
                      std::function<std::shared_ptr<WebSocketListener>(std::shared_ptr<WebSocket>)> accept,
                      std::shared_ptr<Client> client, std::string remote);
  boost::asio::io_context& nextIoContext() {
    return *contexts[nextContext.fetch_add(1, std::memory_order_relaxed) % contexts.size()];
  }

  // Whether a connection of `client` may read or run a request now.
  bool budgetAllows(const Client& client) const {
    return unsentBytes.load() < options.maxUnsentResponseBytes &&
           client.unsentBytes.load() < options.maxUnsentResponseBytesPerClient;
  }
  // True if the budget allows going on now; otherwise the connection waits and is resumed
  // (Connection::resume) once it does.
  bool proceedOrWait(const std::shared_ptr<Connection>& connection,
                     const std::shared_ptr<Client>& client);
  void addUnsent(Client& client, size_t n) {
    unsentBytes.fetch_add(n);
    client.unsentBytes.fetch_add(n);
  }
  void releaseUnsent(Client& client, size_t n);
  void wakeWaiting();
  // Takes a closed connection off the waiting list; the caller holds a reference to it.
  void stopWaiting(Connection& connection);

  // Only stop() waits for the last request to end, and it sets `stopping` before it looks
  // at `inFlight` under `mu`: before that, the end of a request takes no lock (with one
  // request at a time on a loop, every request is the last one).
  void requestDone() {
    if (inFlight.fetch_sub(1) == 1 && stopping.load()) {
      MutexLock lock(mu);
      idle.notify_all();
    }
  }

  // The answer to a request that cannot be served: a JSON error body.
  static Response refusalResponse(int status, const char* code, const std::string& message);

  // Takes the request `parser` completed on a connection from `remote`, counts it, and
  // decides what becomes of it: run, or (an upgrade) refused, or a WebSocket if the server
  // has room for one more. Both kinds of connection answer requests through this.
  Arrival takeRequest(RequestParser& parser, const std::string& remote);
};

// Serialises a response's status line and header fields into `out` (cleared first), for
// an HTTP/1.`version % 10` request; returns whether a body follows.
bool serializeHead(std::string& out, const Response& res, unsigned version, bool keepAlive,
                   bool isHead, const std::string& serverHeader);

int64_t steadyNowNs();

// Serves plain-HTTP connections: one epoll loop per thread (plain_connection.cpp).
class PlainLoops {
 public:
  PlainLoops(Server::Impl& server, unsigned threads);
  ~PlainLoops();
  PlainLoops(const PlainLoops&) = delete;
  PlainLoops& operator=(const PlainLoops&) = delete;

  void start();
  // Serves an accepted, admitted connection (any thread); the descriptor is the loops'.
  void adopt(int fd, std::shared_ptr<Client> client, std::string remote);
  // Closes every connection and stops the threads.
  void stop();

  struct Loop;

 private:
  Server::Impl& server_;
  std::vector<std::unique_ptr<Loop>> loops_;
  std::atomic<size_t> next_{0};
};

}  // namespace tern::http
