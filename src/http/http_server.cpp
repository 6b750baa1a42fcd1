#include "http/http_server.h"

#include "http/request_rules.h"
#include "http/conn_stream.h"
#include "http/tls_context.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <iterator>
#include <limits>
#include <list>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "util/thread_annotations.h"

namespace tern::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;

const std::string* Request::header(std::string_view name) const {
  for (const auto& h : headers) {
    if (beast::iequals(h.name, name)) return &h.value;
  }
  return nullptr;
}

class Session;
class WebSocketSession;

namespace {

// The Request of a parsed message whose origin-form target is `target`: the path
// percent-decoded (a malformed escape or a NUL byte is refused), the query kept raw, the
// headers in order, the body moved out. Shared by connections and parseRequest.
// The answer to a request Beast could not parse (`ec` is not the end of the stream).
Refusal parseRefusal(beast::error_code ec, size_t maxHeaderBytes) {
  if (ec == bhttp::error::header_limit) {
    return Refusal{431, "headers_too_large",
                   fmt::format("request headers exceed {} bytes", maxHeaderBytes)};
  }
  if (ec == bhttp::error::body_limit) {
    return Refusal{413, "body_too_large", "the request body exceeds its limit"};
  }
  return Refusal{400, "bad_request", "malformed HTTP request: " + ec.message()};
}

// Checks a request's header once it is complete, before any of the body is read: the
// framing rules, then the route's body limit, which it applies to the parser. Sets
// `target` to the request's origin-form target.
std::optional<Refusal> checkRequestHeader(bhttp::request_parser<bhttp::string_body>& parser,
                                          const Server::BodyLimit& bodyLimit, std::string& target) {
  auto& req = parser.get();
  std::vector<std::string_view> codings;
  for (auto [it, end] = req.equal_range(bhttp::field::transfer_encoding); it != end; ++it) {
    codings.push_back(it->value());
  }
  if (auto refusal = framingRefusal(req.version(), req.count(bhttp::field::host), codings)) {
    return refusal;
  }
  target = originForm(req.target());
  size_t limit = bodyLimit(std::string_view(req.method_string()), target);
  if (auto len = parser.content_length(); len && *len > limit) {
    return Refusal{413, "body_too_large",
                   fmt::format("the request body is {} bytes, the limit is {} bytes", *len, limit)};
  }
  parser.body_limit(limit);
  return std::nullopt;
}

std::variant<Request, Refusal> requestFrom(bhttp::request<bhttp::string_body>& msg,
                                           std::string target) {
  Request req;
  req.method = std::string(msg.method_string());
  req.target = std::move(target);
  std::string_view t = req.target;
  size_t q = t.find('?');
  auto path = percentDecode(t.substr(0, q));
  if (!path) return Refusal{400, "bad_request", "malformed percent-encoding in the request path"};
  // A NUL would end the path wherever it is handed on as a C string (PATH_INFO).
  if (path->find('\0') != std::string::npos) {
    return Refusal{400, "bad_request", "the request path contains a NUL byte (%00)"};
  }
  req.path = std::move(*path);
  if (q != std::string_view::npos) req.query = std::string(t.substr(q + 1));
  req.headers.reserve(8);
  for (const auto& f : msg) {
    req.headers.push_back(Header{std::string(f.name_string()), std::string(f.value())});
  }
  req.body = std::move(msg.body());
  return req;
}

int64_t steadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The client a remote address belongs to: an IPv4 address (also when mapped into IPv6), or
// an IPv6 /64 prefix, since one host is commonly given a whole /64.
std::string clientKey(const asio::ip::address& address) {
  if (!address.is_v6()) return address.to_string();
  auto v6 = address.to_v6();
  if (v6.is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, v6).to_string();
  auto bytes = v6.to_bytes();
  std::fill(bytes.begin() + 8, bytes.end(), 0);
  return asio::ip::address_v6(bytes).to_string() + "/64";
}

// Appends `v` in decimal (the status code and Content-Length of every response).
void appendDecimal(std::string& out, uint64_t v) {
  char digits[20];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, v);
  out.append(digits, static_cast<size_t>(end - digits));
}

// Whether a header name or value can be sent as it is: no CR, LF or NUL, which could split
// the response.
bool fieldSafe(std::string_view v) {
  for (char c : v) {
    if (c == '\r' || c == '\n' || c == '\0') return false;
  }
  return true;
}

// The first byte of a TLS connection: a handshake record (RFC 8446 5.1, content type 22).
constexpr unsigned char kTlsHandshakeRecord = 0x16;

}  // namespace

// One client of the server, shared by its connections.
struct Client {
  std::string key;
  size_t connections = 0;  // guarded by Server::Impl::clientsMu
  std::atomic<size_t> unsentBytes{0};
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

  // Live sessions, to close idle ones when draining or making room. A session removes its
  // own entry in its destructor, under `mu`: so no shared_ptr<Session> may be released while
  // `mu` is held, and an entry's `session` is valid while `mu` is held.
  struct Registration {
    Session* session;
    std::weak_ptr<Session> weak;
  };
  Mutex mu;
  std::condition_variable idle;
  std::list<Registration> sessions TERN_GUARDED_BY(mu);

  Mutex clientsMu;
  std::unordered_map<std::string, std::shared_ptr<Client>> clients TERN_GUARDED_BY(clientsMu);

  // Sessions waiting for unsent response bytes to drain, oldest first; the list keeps them
  // alive (nothing else does while they wait) until they are resumed or closed.
  struct Waiting {
    std::shared_ptr<Session> session;
    std::shared_ptr<Client> client;
  };
  Mutex waitingMu;
  std::list<Waiting> waiting TERN_GUARDED_BY(waitingMu);
  std::atomic<size_t> waitingCount{0};

  // One io_context per thread: a connection lives on one thread, so the common path (read,
  // run the invocation inline, write) involves no cross-thread hand-off or wake-up.
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::optional<tcp::acceptor> acceptor;
  size_t nextContext = 0;
  std::vector<std::thread> threads;
  uint16_t boundPort = 0;

  Impl(ServerOptions o, BodyLimit b, Handler h)
      : options(std::move(o)), bodyLimit(std::move(b)), handler(std::move(h)) {}

  void accept();
  void admit(tcp::socket socket);
  // The client's record with one more connection, or nullptr when it is at its limit.
  std::shared_ptr<Client> joinClient(const std::string& key);
  void leaveClient(const std::shared_ptr<Client>& client);
  bool closeLongestIdle();

  // Whether a connection of `client` may read or run a request now.
  bool budgetAllows(const Client& client) const {
    return unsentBytes.load() < options.maxUnsentResponseBytes &&
           client.unsentBytes.load() < options.maxUnsentResponseBytesPerClient;
  }
  // True if the budget allows going on now; otherwise the session waits and is resumed
  // (Session::resume) once it does.
  bool proceedOrWait(const std::shared_ptr<Session>& session,
                     const std::shared_ptr<Client>& client);
  void addUnsent(Client& client, size_t n) {
    unsentBytes.fetch_add(n);
    client.unsentBytes.fetch_add(n);
  }
  void releaseUnsent(Client& client, size_t n);
  void wakeWaiting();
  // Takes a closed session off the waiting list; the caller holds a reference to it.
  void stopWaiting(Session& session);

  void requestDone() {
    if (inFlight.fetch_sub(1) == 1) {
      MutexLock lock(mu);
      idle.notify_all();
    }
  }
};

// One client connection: read a request, hand it to the handler, write the response,
// repeat while keep-alive.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Server::Impl& server, std::shared_ptr<Client> client,
          std::string remote)
      : stream_(std::move(socket)),
        executor_(stream_.get_executor()),
        server_(server),
        client_(std::move(client)),
        remote_(std::move(remote)) {}

  ~Session() {
    server_.releaseUnsent(*client_, unsent_);
    if (registration_) {
      MutexLock lock(server_.mu);
      server_.sessions.erase(*registration_);
    }
    if (upgraded_) return;  // the connection and its client slot went to the WebSocket
    server_.leaveClient(client_);
    server_.open.fetch_sub(1);
  }

  void start() {
    asio::dispatch(executor_, [self = shared_from_this()] { self->readRequest(); });
  }

  // Closes the connection if it is waiting for a request (called when draining).
  void closeIfIdle() {
    asio::dispatch(executor_, [self = shared_from_this()] {
      if (!self->busy_) self->close();
    });
  }

  // Closes the connection if it is still waiting for its next request (to make room).
  void closeForNewcomer() {
    asio::dispatch(executor_, [self = shared_from_this()] {
      if (!self->awaitingNext_ || self->closed_) return;
      self->server_.idleClosed.fetch_add(1, std::memory_order_relaxed);
      self->close();
    });
  }

  // Goes on after waiting for the budget: runs the request that arrived, or reads the next.
  void resume() {
    asio::post(executor_, [self = shared_from_this()] {
      if (self->closed_ || self->server_.stopping.load()) return self->close();
      if (self->waitingRequest_) {
        Request req = std::move(*self->waitingRequest_);
        self->waitingRequest_.reset();
        return self->run(std::move(req));
      }
      self->awaitRequest();
    });
  }

  // When this keep-alive connection began waiting for its next request (steady clock, ns),
  // or 0 while it is not; claimIdle takes it for closing, once.
  int64_t idleSinceNs() const { return idleSinceNs_.load(std::memory_order_relaxed); }
  bool claimIdle(int64_t since) { return idleSinceNs_.compare_exchange_strong(since, 0); }

  std::optional<std::list<Server::Impl::Registration>::iterator> registration_;
  std::optional<std::list<Server::Impl::Waiting>::iterator> waitingAt_;  // under waitingMu

 private:
  // Before a request is read the unsent-response budget must allow it: while it does not,
  // the connection is not read, so its requests wait in the socket.
  void readRequest() {
    if (buffer_.size() == 0 && !parser_) {
      if (served_ > 0) markAwaitingNext();
      if (!server_.proceedOrWait(shared_from_this(), client_)) {
        stream_.transport().expires_never();
        return;
      }
    }
    awaitRequest();
  }

  // Reads and parses the next request. Bytes already buffered are parsed synchronously;
  // the socket is read only when the parser needs more, so a request that arrives in one
  // segment costs one read and no further asynchronous steps.
  void awaitRequest() {
    if (buffer_.size() > 0 || parser_) return parse();
    if (served_ == 0) {
      // A new connection has the read timeout to send its whole first request...
      stream_.transport().expires_after(server_.options.readTimeout);
    } else {
      // ...a keep-alive one may sit idle until its next request begins (and be closed to
      // make room for a newcomer)...
      markAwaitingNext();
      stream_.transport().expires_after(server_.options.idleTimeout);
    }
    readMore();
  }

  void markAwaitingNext() {
    if (awaitingNext_) return;
    awaitingNext_ = true;
    idleSinceNs_.store(steadyNowNs(), std::memory_order_relaxed);
  }

  void readMore() {
    stream_.async_read_some(buffer_.prepare(kReadChunk),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              self->awaitingNext_ = false;
                              self->idleSinceNs_.store(0, std::memory_order_relaxed);
                              if (ec) return self->failRead(ec);
                              self->buffer_.commit(n);
                              if (!self->sniffed_) return self->sniff();
                              self->parse();
                            });
  }

  // The connection's first byte says whether it speaks TLS. A TLS server begins the
  // handshake with the bytes already read; plain HTTP sent to it is answered in plain text
  // and closed. A plain server closes a connection that begins a TLS handshake (it cannot
  // answer in a language the client understands) and logs it.
  void sniff() {
    sniffed_ = true;
    bool tlsHello =
        static_cast<const unsigned char*>(buffer_.data().data())[0] == kTlsHandshakeRecord;
    const auto& identity = server_.options.tls;
    if (!identity) {
      if (!tlsHello) return parse();
      server_.badRequests.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("http: {} began a TLS handshake on port {}, which serves plain HTTP; "
                   "connection closed (use an http:// URL, or start ternd with --tls-cert)",
                   remote_, server_.boundPort);
      return close();
    }
    if (!tlsHello) {
      server_.badRequests.fetch_add(1, std::memory_order_relaxed);
      keepAlive_ = false;
      busy_ = true;
      Response res;
      res.status = 400;
      res.body = fmt::format("this port speaks HTTPS: use https://HOST:{}\n", server_.boundPort);
      return respond(std::move(res), false);
    }
    stream_.startTls(const_cast<asio::ssl::context&>(identity->ctx));
    stream_.tls()->async_handshake(
        asio::ssl::stream_base::server, buffer_.data(),
        [self = shared_from_this()](beast::error_code ec, size_t used) {
          if (ec) {
            // A client that refuses this node's certificate ends here (it says so itself).
            spdlog::debug("http: TLS handshake with {} failed: {}", self->remote_, ec.message());
            self->server_.tlsHandshakesFailed.fetch_add(1, std::memory_order_relaxed);
            return self->close();
          }
          self->buffer_.consume(used);
          if (self->buffer_.size() > 0) return self->parse();
          self->readMore();
        });
  }

  void parse() {
    if (!parser_) {
      parser_.emplace();
      parser_->header_limit(static_cast<uint32_t>(server_.options.maxHeaderBytes));
      // Beast checks Content-Length against its (1 MiB) default when the header completes;
      // the limit that applies depends on the route and is set in checkHeader. (Not
      // boost::none: Beast 1.74 compares the length with the optional, and anything exceeds
      // "none".)
      parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
      headerChecked_ = false;
      // ...and once a request has begun, it must arrive whole within the read timeout (the
      // first one within the read timeout from the start).
      if (served_ > 0) stream_.transport().expires_after(server_.options.readTimeout);
    }
    for (;;) {
      beast::error_code ec;
      size_t n = buffer_.size() ? parser_->put(buffer_.data(), ec) : 0;
      buffer_.consume(n);
      if (ec == bhttp::error::need_more || (!ec && n == 0 && !parser_->is_done())) {
        return readMore();
      }
      if (ec) return failRead(ec);
      if (parser_->is_header_done() && !headerChecked_) {
        headerChecked_ = true;
        if (!checkHeader()) return;
      }
      if (parser_->is_done()) return onRequest();
    }
  }

  // Checks the header and applies the route's body limit once it is known; false if refused.
  bool checkHeader() {
    if (auto refusal = checkRequestHeader(*parser_, server_.bodyLimit, target_)) {
      refuse(refusal->status, refusal->code, refusal->message);
      return false;
    }
    return true;
  }

  void failRead(beast::error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == asio::error::operation_aborted ||
        ec == asio::error::eof || ec == asio::error::connection_reset) {
      return close();
    }
    // A TLS failure (a client gone without close_notify, a bad record): nothing readable
    // can be answered on it.
    if (stream_.isTls() &&
        (ec == asio::ssl::error::stream_truncated || ec.category() == asio::error::get_ssl_category())) {
      return close();
    }
    if (ec == beast::error::timeout) {
      // An idle keep-alive connection, or a request that did not arrive in time: the
      // stream has already closed the socket (no 408 can be sent), so just count it.
      if (buffer_.size() > 0 || (parser_ && parser_->got_some())) {
        server_.badRequests.fetch_add(1, std::memory_order_relaxed);
      }
      return close();
    }
    Refusal refusal = parseRefusal(ec, server_.options.maxHeaderBytes);
    refuse(refusal.status, refusal.code, refusal.message);
  }

  void onRequest() {
    server_.requests.fetch_add(1, std::memory_order_relaxed);
    ++served_;
    auto msg = parser_->release();
    parser_.reset();
    keepAlive_ = msg.keep_alive() && !server_.stopping.load();
    version_ = msg.version();
    isHead_ = msg.method() == bhttp::verb::head;

    auto built = requestFrom(msg, std::move(target_));
    if (auto* refusal = std::get_if<Refusal>(&built)) {
      return refuse(refusal->status, refusal->code, refusal->message);
    }
    Request req = std::move(std::get<Request>(built));
    req.remoteAddress = remote_;

    stream_.transport().expires_never();
    if (server_.upgrade && websocket::is_upgrade(msg)) {
      UpgradeDecision decision = server_.upgrade(req);
      if (decision.refusal) {
        keepAlive_ = false;
        busy_ = true;
        server_.inFlight.fetch_add(1);
        return respond(std::move(*decision.refusal), true);
      }
      if (decision.accept) {
        if (server_.webSockets.load() >= server_.webSocketOptions.maxConnections) {
          keepAlive_ = false;
          busy_ = true;
          server_.inFlight.fetch_add(1);
          server_.refused.fetch_add(1);
          Response busy;
          busy.status = 503;
          busy.contentType = "application/json";
          busy.body = fmt::format(
              R"({{"error":{{"code":"unavailable","message":"this node has its {} WebSocket connections"}}}})",
              server_.webSocketOptions.maxConnections) + "\n";
          return respond(std::move(busy), true);
        }
        return becomeWebSocket(std::move(msg), std::move(decision.accept));
      }
    }
    // Requests that arrived together (a burst of new connections) were read before their
    // responses existed: the budget is checked again before one runs.
    if (!server_.proceedOrWait(shared_from_this(), client_)) {
      waitingRequest_ = std::move(req);
      return;
    }
    run(std::move(req));
  }

  // Hands the socket to a WebSocket session (defined below), which answers the upgrade.
  void becomeWebSocket(bhttp::request<bhttp::string_body> msg,
                       std::function<std::shared_ptr<WebSocketListener>(std::shared_ptr<WebSocket>)> accept);

  void run(Request req) {
    busy_ = true;
    server_.inFlight.fetch_add(1);
    server_.handler(std::move(req), [self = shared_from_this()](Response res) {
      self->respond(std::move(res), true);
    });
  }

  // Sends a response from the thread that completed it (this connection's, or a worker, or
  // the thread that delivers a cluster peer's reply) with one non-blocking send, without
  // waking the connection's thread first: while a request is being handled nothing on the
  // connection's thread touches the socket or the session (no read or timer is pending; the
  // handler was the last step). The connection's thread then resumes reading, or writes the
  // part that did not fit into the socket buffer.
  void respond(Response res, bool countsAsRequest) {
    bool keepAlive = serialize(std::move(res));
    iovec iov[2] = {{outHead_.data(), outHead_.size()}, {outBody_.data(), outBody_.size()}};
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = outBody_.empty() ? 1 : 2;
    // Over TLS the bytes must go through the TLS stream, on the connection's thread.
    ssize_t n = stream_.isTls() ? 0
                                : ::sendmsg(stream_.transport().socket().native_handle(), &msg,
                                            MSG_DONTWAIT | MSG_NOSIGNAL);
    sentBytes(n > 0 ? static_cast<size_t>(n) : 0);
    asio::post(executor_, [self = shared_from_this(), keepAlive, countsAsRequest] {
      if (self->unsent_ == 0) return self->onWrite({}, keepAlive, countsAsRequest);
      self->writeRest(keepAlive, countsAsRequest);
    });
  }

  // Answers an unreadable request and closes the connection afterwards.
  void refuse(int status, const char* code, const std::string& message) {
    server_.badRequests.fetch_add(1, std::memory_order_relaxed);
    keepAlive_ = false;
    Response res;
    res.status = status;
    res.contentType = "application/json";
    res.body = fmt::format(R"({{"error":{{"code":"{}","message":"{}"}}}})", code, message) + "\n";
    respond(std::move(res), false);
  }

  // Serialises the response by hand into one header string plus the body (Beast's message
  // and serializer cost several allocations per response), so that both go out in one call,
  // and counts its bytes as unsent. Returns whether the connection stays open afterwards.
  bool serialize(Response res) {
    bool keepAlive = keepAlive_ && !server_.stopping.load();
    bool bodyless = res.status < 200 || res.status == 204 || res.status == 304;
    outHead_.clear();
    outHead_ += version_ == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
    appendDecimal(outHead_, static_cast<uint64_t>(res.status));
    outHead_ += ' ';
    outHead_ += std::string_view(bhttp::obsolete_reason(static_cast<bhttp::status>(res.status)));
    outHead_ += "\r\nServer: ";
    outHead_ += server_.options.serverHeader;
    outHead_ += "\r\n";
    if (!bodyless && fieldSafe(res.contentType)) {
      outHead_ += "Content-Type: ";
      outHead_ += res.contentType;
      outHead_ += "\r\n";
    }
    for (const auto& h : res.headers) {
      // A header that could split the response (CR, LF, NUL) is dropped, never sent.
      if (h.name.empty() || !fieldSafe(h.name) || !fieldSafe(h.value)) continue;
      outHead_ += h.name;
      outHead_ += ": ";
      outHead_ += h.value;
      outHead_ += "\r\n";
    }
    if (!bodyless) {
      outHead_ += "Content-Length: ";
      appendDecimal(outHead_, res.body.size());
      outHead_ += "\r\n";
    }
    if (!keepAlive) {
      outHead_ += "Connection: close\r\n";
    } else if (version_ == 10) {
      outHead_ += "Connection: keep-alive\r\n";
    }
    outHead_ += "\r\n";
    outBody_ = bodyless || isHead_ ? std::string() : std::move(res.body);
    written_ = 0;
    unsent_ = outHead_.size() + outBody_.size();
    server_.addUnsent(*client_, unsent_);
    return keepAlive;
  }

  // Writes what is left of the serialised response, watched by watchWrite.
  void writeRest(bool keepAlive, bool countsAsRequest) {
    if (!watching_) watchWrite();
    size_t inHead = std::min(written_, outHead_.size());
    std::array<asio::const_buffer, 2> buffers{asio::buffer(outHead_) + inHead,
                                              asio::buffer(outBody_) + (written_ - inHead)};
    stream_.transport().expires_never();
    stream_.async_write_some(
        buffers, [self = shared_from_this(), keepAlive, countsAsRequest](beast::error_code ec,
                                                                        size_t n) {
          self->sentBytes(n);
          if (!ec && self->unsent_ > 0) return self->writeRest(keepAlive, countsAsRequest);
          self->onWrite(ec, keepAlive, countsAsRequest);
        });
  }

  // The write timeout bounds inactivity, not the whole transfer: the write fails when the
  // client has acknowledged no byte during a whole write timeout. Progress is read from the
  // kernel (sent minus still unacknowledged, SIOCOUTQ), not from the socket taking more
  // bytes: a socket buffer of megabytes takes more only after a large part of it drains,
  // which for a slow but steady reader can take longer than the timeout.
  void watchWrite() {
    watching_ = true;
    ackedAtLastCheck_ = acknowledged();
    writeTimer_.expires_after(server_.options.writeTimeout);
    writeTimer_.async_wait([self = shared_from_this(), generation = writeGeneration_](
                               beast::error_code ec) {
      if (ec || !self->watching_ || generation != self->writeGeneration_) return;
      if (self->acknowledged() != self->ackedAtLastCheck_) return self->watchWrite();
      beast::error_code ignored;
      self->stream_.transport().socket().cancel(ignored);  // the write ends with operation_aborted
    });
  }

  void stopWatchingWrite() {
    if (!watching_) return;
    watching_ = false;
    ++writeGeneration_;
    writeTimer_.cancel();
  }

  // Bytes of this connection's responses the client has acknowledged.
  uint64_t acknowledged() {
    int queued = 0;
    if (::ioctl(stream_.transport().socket().native_handle(), SIOCOUTQ, &queued) != 0) queued = 0;
    return totalWritten_ - static_cast<uint64_t>(std::max(queued, 0));
  }

  void sentBytes(size_t n) {
    written_ += n;
    totalWritten_ += n;
    unsent_ -= n;
    server_.releaseUnsent(*client_, n);
  }

  void onWrite(beast::error_code ec, bool keepAlive, bool countsAsRequest) {
    busy_ = false;
    stopWatchingWrite();
    // The body's memory goes back now, not when a later response replaces it.
    std::string().swap(outBody_);
    if (countsAsRequest) server_.requestDone();
    if (ec || !keepAlive) return close();
    readRequest();
  }

  void close() {
    // Once upgraded, the connection is the WebSocket session's (stream_ is moved from).
    if (upgraded_) return;
    closed_ = true;
    server_.stopWaiting(*this);
    server_.releaseUnsent(*client_, std::exchange(unsent_, 0));
    std::string().swap(outBody_);  // no write is pending when a connection is closed
    stopWatchingWrite();
    beast::error_code ec;
    stream_.transport().socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.transport().close();
  }

  ConnStream stream_;
  // The connection's thread; kept apart from stream_, which a WebSocket upgrade moves away.
  ConnStream::executor_type executor_;
  Server::Impl& server_;
  std::shared_ptr<Client> client_;
  std::string remote_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  static constexpr size_t kReadChunk = 64 * 1024;
  bool headerChecked_ = false;
  bool sniffed_ = false;  // the first byte was checked for a TLS handshake
  bool isHead_ = false;
  std::string target_;  // the request's origin-form target, once its header is checked
  std::optional<Request> waitingRequest_;  // read, waiting for the budget to run
  uint64_t served_ = 0;                    // requests read on this connection
  bool awaitingNext_ = false;              // waiting for the next request of a keep-alive
  std::atomic<int64_t> idleSinceNs_{0};
  std::string outHead_;  // the response being written (one at a time per connection)
  std::string outBody_;
  size_t written_ = 0;  // bytes of outHead_ + outBody_ the socket has taken
  uint64_t totalWritten_ = 0;  // of all responses on this connection
  asio::steady_timer writeTimer_{executor_};
  uint64_t ackedAtLastCheck_ = 0;
  uint64_t writeGeneration_ = 0;
  bool watching_ = false;
  size_t unsent_ = 0;   // the rest, counted in the budget
  bool keepAlive_ = true;
  bool busy_ = false;
  bool closed_ = false;
  bool upgraded_ = false;
  unsigned version_ = 11;
};

// A WebSocket connection: the upgrade answered, then messages read one at a time and
// handed to the listener, and queued messages written one at a time. Everything runs on the
// connection's thread; send() and close() from other threads post to it.
class WebSocketSession : public WebSocket, public std::enable_shared_from_this<WebSocketSession> {
 public:
  WebSocketSession(ConnStream stream, Server::Impl& server, std::shared_ptr<Client> client,
                   std::string remote)
      : ws_(std::move(stream)), server_(server), client_(std::move(client)), remote_(std::move(remote)) {
    server_.webSockets.fetch_add(1);
  }

  ~WebSocketSession() override {
    doneFlushing();
    if (registration_) {
      MutexLock lock(server_.wsMu);
      server_.wsSessions.erase(*registration_);
    }
    server_.webSockets.fetch_sub(1);
    server_.leaveClient(client_);
  }

  void start(bhttp::request<bhttp::string_body> req,
             std::function<std::shared_ptr<WebSocketListener>(std::shared_ptr<WebSocket>)> accept) {
    {
      MutexLock lock(server_.wsMu);
      server_.wsSessions.push_back(weak_from_this());
      registration_ = std::prev(server_.wsSessions.end());
    }
    const auto& o = server_.webSocketOptions;
    websocket::stream_base::timeout timeouts{server_.options.readTimeout, o.idleTimeout, true};
    ws_.set_option(timeouts);
    ws_.set_option(websocket::stream_base::decorator(
        [name = server_.options.serverHeader](websocket::response_type& res) {
          res.set(bhttp::field::server, name);
        }));
    ws_.read_message_max(o.maxMessageBytes);
    ws_.auto_fragment(false);
    listener_ = accept(shared_from_this());
    upgradeRequest_ = std::move(req);
    ws_.async_accept(upgradeRequest_, [self = shared_from_this()](beast::error_code ec) {
      self->upgradeRequest_ = {};  // only the handshake needed it
      if (ec) return self->closed();
      self->accepted_ = true;
      self->writeNext();  // what was queued during the handshake
      self->read();
    });
  }

  bool send(std::string text) override {
    size_t n = text.size();
    // Past the budget a message is refused, except on an idle connection: one message always
    // fits (else a large one would wait for a drain that never comes).
    size_t before = closing_.load() ? 0 : unsent_.fetch_add(n);
    if (closing_.load() || (before > 0 && before + n > server_.webSocketOptions.maxUnsentBytes)) {
      if (!closing_.load()) unsent_.fetch_sub(n);
      refused_.store(true);
      return false;
    }
    asio::dispatch(ws_.get_executor(), [self = shared_from_this(), text = std::move(text)]() mutable {
      self->out_.push_back(std::move(text));
      self->writeNext();
    });
    return true;
  }

  size_t unsentBytes() const override { return unsent_.load(); }
  const std::string& remoteAddress() const override { return remote_; }

  void close(std::string lastText, std::string reason) override {
    if (closing_.exchange(true)) return;
    if (reason.size() > 123) reason.resize(123);
    asio::dispatch(ws_.get_executor(), [self = shared_from_this(), lastText = std::move(lastText),
                                        reason = std::move(reason)]() mutable {
      self->closeReason_ = std::move(reason);
      if (!self->done_ && !self->flushing_) {
        self->flushing_ = true;
        self->server_.webSocketsFlushing.fetch_add(1);
      }
      if (!lastText.empty()) {
        self->unsent_.fetch_add(lastText.size());
        self->out_.push_back(std::move(lastText));
      }
      self->closeAfterWrites_ = true;
      self->writeNext();
    });
  }

 private:
  void read() {
    ws_.async_read(in_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->closed();
      std::string text = beast::buffers_to_string(self->in_.data());
      self->in_.consume(self->in_.size());
      if (self->listener_) self->listener_->onMessage(std::move(text));
      self->read();
    });
  }

  void writeNext() {
    if (writing_ || done_ || !accepted_) return;
    if (out_.empty()) {
      if (closeAfterWrites_ && !closeSent_) {
        closeSent_ = true;
        // Every message is written; the close handshake waits for the client, stop() not.
        doneFlushing();
        writing_ = true;
        watchStall();
        ws_.async_close(websocket::close_reason(websocket::close_code::normal, closeReason_),
                        [self = shared_from_this()](beast::error_code) {
                          self->writing_ = false;
                          self->stopWatching();
                          // The read in progress ends with the client's close frame (or the
                          // timeout), and reports the connection closed.
                        });
      }
      return;
    }
    writing_ = true;
    watchStall();
    ws_.text(true);
    ws_.async_write(asio::buffer(out_.front()), [self = shared_from_this()](beast::error_code ec, size_t) {
      self->writing_ = false;
      self->stopWatching();
      if (self->done_) {  // closed meanwhile: the queue goes now that no write uses it
        self->out_.clear();
        return;
      }
      size_t n = self->out_.front().size();
      self->out_.pop_front();
      size_t before = self->unsent_.fetch_sub(n);
      if (ec) return self->fail();
      const auto& o = self->server_.webSocketOptions;
      if (before - n <= o.drainedBytes && self->refused_.exchange(false) && self->listener_) {
        self->listener_->onDrained();
      }
      self->writeNext();
    });
  }

  // A message the client does not take within the stall timeout (it stopped reading, and
  // the kernel's buffers are full) closes the connection.
  void watchStall() {
    stallTimer_.expires_after(server_.webSocketOptions.stallTimeout);
    stallTimer_.async_wait([self = shared_from_this(), generation = ++generation_](beast::error_code ec) {
      if (ec || generation != self->generation_ || !self->writing_) return;
      self->fail();
    });
  }
  void stopWatching() {
    ++generation_;
    stallTimer_.cancel();
  }

  void fail() {
    beast::error_code ignored;
    ws_.next_layer().transport().socket().shutdown(tcp::socket::shutdown_both, ignored);
    ws_.next_layer().transport().close();
  }

  void doneFlushing() {
    if (!flushing_) return;
    flushing_ = false;
    server_.flushed();
  }

  void closed() {
    if (done_) return;
    done_ = true;
    doneFlushing();
    closing_.store(true);
    stopWatching();
    unsent_.store(0);
    auto listener = std::move(listener_);
    if (listener) listener->onClosed();
    fail();
    if (!writing_) out_.clear();  // else the write in progress still reads its message
  }

 public:
  std::optional<std::list<std::weak_ptr<WebSocketSession>>::iterator> registration_;

 private:
  websocket::stream<ConnStream> ws_;
  Server::Impl& server_;
  std::shared_ptr<Client> client_;
  std::string remote_;
  std::shared_ptr<WebSocketListener> listener_;
  beast::flat_buffer in_;
  std::deque<std::string> out_;
  std::atomic<size_t> unsent_{0};
  std::atomic<bool> closing_{false};
  std::atomic<bool> refused_{false};
  bool writing_ = false;
  bool closeAfterWrites_ = false;
  bool accepted_ = false;  // the handshake is done: messages may be written
  bool flushing_ = false;  // counted in webSocketsFlushing until its last message is written
  bool closeSent_ = false;
  bool done_ = false;
  std::string closeReason_;
  asio::steady_timer stallTimer_{ws_.get_executor()};
  uint64_t generation_ = 0;
  bhttp::request<bhttp::string_body> upgradeRequest_;
};

void Session::becomeWebSocket(
    bhttp::request<bhttp::string_body> msg,
    std::function<std::shared_ptr<WebSocketListener>(std::shared_ptr<WebSocket>)> accept) {
  upgraded_ = true;
  closed_ = true;
  server_.open.fetch_sub(1);  // a WebSocket now, under its own limit
  auto ws = std::make_shared<WebSocketSession>(std::move(stream_), server_, client_,
                                               std::move(remote_));
  ws->start(std::move(msg), std::move(accept));
}

bool Server::Impl::proceedOrWait(const std::shared_ptr<Session>& session,
                                 const std::shared_ptr<Client>& client) {
  if (budgetAllows(*client)) return true;
  MutexLock lock(waitingMu);
  // Announced before checking again: a release that brings the bytes under the budget
  // meanwhile either is seen by this check or sees the count and wakes the waiting.
  waitingCount.fetch_add(1);
  if (budgetAllows(*client)) {
    waitingCount.fetch_sub(1);
    return true;
  }
  waiting.push_back(Waiting{session, client});
  session->waitingAt_ = std::prev(waiting.end());
  return false;
}

void Server::Impl::stopWaiting(Session& session) {
  std::shared_ptr<Session> entry;  // released after the lock, though never the last reference
  MutexLock lock(waitingMu);
  if (!session.waitingAt_) return;
  entry = std::move((*session.waitingAt_)->session);
  waiting.erase(*session.waitingAt_);
  session.waitingAt_.reset();
  waitingCount.fetch_sub(1);
}

void Server::Impl::releaseUnsent(Client& client, size_t n) {
  if (n == 0) return;
  size_t total = unsentBytes.fetch_sub(n);
  size_t own = client.unsentBytes.fetch_sub(n);
  auto crossed = [n](size_t before, size_t limit) { return before >= limit && before - n < limit; };
  // Only a release that brings a budget back under its limit can let a waiting session go on.
  if ((crossed(total, options.maxUnsentResponseBytes) ||
       crossed(own, options.maxUnsentResponseBytesPerClient)) &&
      waitingCount.load() > 0 && !stopping.load()) {
    wakeWaiting();
  }
}

// Resumes, oldest first, every waiting session whose client the budget now allows. Sessions
// admitted together run together: the budget is exceeded by at most their responses.
void Server::Impl::wakeWaiting() {
  std::vector<std::shared_ptr<Session>> ready;
  {
    MutexLock lock(waitingMu);
    for (auto it = waiting.begin(); it != waiting.end();) {
      if (budgetAllows(*it->client)) {
        it->session->waitingAt_.reset();
        ready.push_back(std::move(it->session));
        it = waiting.erase(it);
        waitingCount.fetch_sub(1);
      } else {
        ++it;
      }
    }
  }
  for (auto& session : ready) session->resume();
}

std::shared_ptr<Client> Server::Impl::joinClient(const std::string& key) {
  MutexLock lock(clientsMu);
  auto& client = clients[key];
  if (!client) {
    client = std::make_shared<Client>();
    client->key = key;
  }
  if (client->connections >= options.maxConnectionsPerClient) {
    if (client->connections == 0) clients.erase(key);
    return nullptr;
  }
  ++client->connections;
  return client;
}

void Server::Impl::leaveClient(const std::shared_ptr<Client>& client) {
  MutexLock lock(clientsMu);
  if (--client->connections == 0) clients.erase(client->key);
}

// Closes the keep-alive connection that has waited longest for its next request, to make
// room for a new one; false when no connection is waiting for one. (A scan of all
// connections, but only when the node is at its connection limit.)
bool Server::Impl::closeLongestIdle() {
  std::shared_ptr<Session> oldest;
  {
    MutexLock lock(mu);
    for (int attempt = 0; attempt < 3 && !oldest; ++attempt) {
      Session* candidate = nullptr;
      int64_t since = 0;
      for (const auto& r : sessions) {
        int64_t t = r.session->idleSinceNs();
        if (t != 0 && (since == 0 || t < since)) {
          since = t;
          candidate = r.session;
        }
      }
      if (!candidate) break;
      if (candidate->claimIdle(since)) oldest = candidate->weak_from_this().lock();
    }
  }
  if (!oldest) return false;
  oldest->closeForNewcomer();
  return true;
}

void Server::Impl::admit(tcp::socket socket) {
  beast::error_code ec;
  auto remote = socket.remote_endpoint(ec);
  if (ec) return;  // already gone; the socket closes with `socket`
  auto client = joinClient(clientKey(remote.address()));
  if (!client) {
    refusedPerClient.fetch_add(1);
    return;
  }
  if (open.load() >= options.maxConnections && !closeLongestIdle()) {
    refused.fetch_add(1);
    leaveClient(client);
    return;
  }
  accepted.fetch_add(1);
  open.fetch_add(1);
  socket.set_option(tcp::no_delay(true), ec);
  auto session = std::make_shared<Session>(std::move(socket), *this, std::move(client),
                                           remote.address().to_string());
  {
    MutexLock lock(mu);
    sessions.push_back(Registration{session.get(), session});
    session->registration_ = std::prev(sessions.end());
  }
  session->start();
}

void Server::Impl::accept() {
  // Connections are spread over the threads round-robin.
  auto& target = *contexts[nextContext++ % contexts.size()];
  acceptor->async_accept(target, [this](beast::error_code ec, tcp::socket socket) {
    if (stopping.load()) return;
    if (!ec) admit(std::move(socket));
    accept();
  });
}

Server::Server(ServerOptions options, BodyLimit bodyLimit, Handler handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(bodyLimit), std::move(handler))) {
  unsigned n = std::max(1u, impl_->options.threads);
  for (unsigned i = 0; i < n; ++i) {
    impl_->contexts.push_back(std::make_unique<asio::io_context>(1));
  }
  impl_->acceptor.emplace(*impl_->contexts[0]);
}

Server::~Server() {
  if (!impl_->threads.empty()) stop(std::chrono::milliseconds(0));
}

Result<void> Server::start() {
  beast::error_code ec;
  auto address = asio::ip::make_address(impl_->options.address, ec);
  if (ec) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("invalid listen address \"{}\"", impl_->options.address));
  }
  tcp::endpoint endpoint(address, impl_->options.port);
  auto& acc = *impl_->acceptor;
  acc.open(endpoint.protocol(), ec);
  if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acc.bind(endpoint, ec);
  if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Error(ErrorCode::kIo, fmt::format("cannot listen on {}:{}: {}", impl_->options.address,
                                             impl_->options.port, ec.message()));
  }
  impl_->boundPort = acc.local_endpoint().port();
  impl_->listenFd = acc.native_handle();
  for (auto& ctx : impl_->contexts) impl_->work.push_back(asio::make_work_guard(*ctx));
  impl_->accept();
  for (auto& ctx : impl_->contexts) {
    impl_->threads.emplace_back([c = ctx.get()] { c->run(); });
  }
  return {};
}

uint16_t Server::port() const { return impl_->boundPort; }

void Server::stopAccepting() {
  Impl& s = *impl_;
  if (s.stopping.exchange(true) || s.threads.empty()) return;
  // The kernel refuses connections from here on, without waiting for the first thread
  // (which may be running an inline invocation): shutdown(2) ends the listening state of
  // the descriptor, which stays open until that thread closes the acceptor.
  ::shutdown(s.listenFd, SHUT_RDWR);
  asio::dispatch(*s.contexts[0], [&s] {
    beast::error_code ec;
    s.acceptor->close(ec);
  });
  // Sessions are released outside the lock (their destructors take it).
  std::vector<std::shared_ptr<Session>> live;
  {
    MutexLock lock(s.mu);
    for (auto& r : s.sessions) {
      if (auto session = r.weak.lock()) live.push_back(std::move(session));
    }
  }
  for (auto& session : live) session->closeIfIdle();
  live.clear();
  std::vector<std::shared_ptr<WebSocketSession>> sockets;
  {
    MutexLock lock(s.wsMu);
    for (auto& w : s.wsSessions) {
      if (auto ws = w.lock()) sockets.push_back(std::move(ws));
    }
  }
  for (auto& ws : sockets) ws->close("", "the server is stopping");
}

void Server::setUpgradeHandler(UpgradeHandler handler, WebSocketOptions options) {
  impl_->upgrade = std::move(handler);
  impl_->webSocketOptions = options;
}

void Server::stop(std::chrono::milliseconds drain) {
  Impl& s = *impl_;
  if (s.threads.empty()) return;
  stopAccepting();
  {
    MutexLock lock(s.mu);
    lock.waitFor(s.idle, drain,
                 [&s] { return s.inFlight.load() == 0 && s.webSocketsFlushing.load() == 0; });
  }
  s.work.clear();
  for (auto& ctx : s.contexts) ctx->stop();
  for (auto& t : s.threads) t.join();
  s.threads.clear();
  // Sessions still waiting go before the io_contexts their sockets belong to.
  std::list<Impl::Waiting> waiting;
  {
    MutexLock lock(s.waitingMu);
    waiting.swap(s.waiting);
    for (auto& w : waiting) w.session->waitingAt_.reset();
  }
}

Server::Stats Server::stats() const {
  const Impl& s = *impl_;
  return Stats{s.accepted.load(),    s.refused.load(),     s.refusedPerClient.load(),
               s.idleClosed.load(),  s.requests.load(),    s.badRequests.load(),
               s.open.load(),        s.inFlight.load(),    s.unsentBytes.load(),
               s.waitingCount.load(),  s.webSockets.load(), s.tlsHandshakesFailed.load()};
}

std::variant<Request, Refusal> parseRequest(std::string_view bytes, size_t maxHeaderBytes,
                                           const Server::BodyLimit& bodyLimit) {
  bhttp::request_parser<bhttp::string_body> parser;
  parser.header_limit(static_cast<uint32_t>(std::min<size_t>(maxHeaderBytes, UINT32_MAX)));
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  asio::const_buffer rest(bytes.data(), bytes.size());
  std::string target;
  bool headerChecked = false;
  for (;;) {
    beast::error_code ec;
    size_t n = rest.size() ? parser.put(rest, ec) : 0;
    rest += n;
    if (ec == bhttp::error::need_more || (!ec && n == 0 && !parser.is_done())) {
      return Refusal{400, "bad_request", "the request ends before it is complete"};
    }
    if (ec) return parseRefusal(ec, maxHeaderBytes);
    if (parser.is_header_done() && !headerChecked) {
      headerChecked = true;
      if (auto refusal = checkRequestHeader(parser, bodyLimit, target)) return *refusal;
    }
    if (parser.is_done()) {
      auto msg = parser.release();
      return requestFrom(msg, std::move(target));
    }
  }
}

}  // namespace tern::http
