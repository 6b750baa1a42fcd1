#include "http/http_server.h"

#include "http/conn_stream.h"
#include "http/request_parser.h"
#include "http/request_rules.h"
#include "http/server_internal.h"
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
#include <cstring>
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
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
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

namespace {

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

// Whether a header name or value can be sent as it is: no CR, LF or NUL, which could split
// the response. Every response checks each of its fields, so several bytes at a time: with
// SSE2, sixteen (a compare against each of the three bytes, one mask); otherwise eight, a
// word having a zero byte exactly when (w - 0x01..01) & ~w & 0x80..80 is not zero, and XOR
// with a repeated byte turning that byte into zero. The last bytes are read as the block
// that ends the field, overlapping the one before it.
bool fieldSafe(std::string_view v) {
  const char* p = v.data();
  size_t n = v.size();
#if defined(__SSE2__)
  if (n >= 16) {
    const __m128i cr = _mm_set1_epi8('\r');
    const __m128i lf = _mm_set1_epi8('\n');
    const __m128i nul = _mm_setzero_si128();
    auto unsafe = [&](size_t at) {
      __m128i w = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + at));
      __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(w, cr), _mm_cmpeq_epi8(w, lf)),
                                 _mm_cmpeq_epi8(w, nul));
      return _mm_movemask_epi8(hit) != 0;
    };
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
      if (unsafe(i)) return false;
    }
    return i == n || !unsafe(n - 16);
  }
#endif
  constexpr uint64_t kOnes = 0x0101010101010101ull;
  constexpr uint64_t kHighs = 0x8080808080808080ull;
  auto hasZeroByte = [](uint64_t w) { return (w - kOnes) & ~w & kHighs; };
  auto unsafe = [&](size_t at) {
    uint64_t w;
    std::memcpy(&w, p + at, 8);
    return (hasZeroByte(w) | hasZeroByte(w ^ (kOnes * '\r')) | hasZeroByte(w ^ (kOnes * '\n'))) != 0;
  };
  if (n < 8) {
    for (char c : v) {
      if (c == '\r' || c == '\n' || c == '\0') return false;
    }
    return true;
  }
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    if (unsafe(i)) return false;
  }
  return i == n || !unsafe(n - 8);
}

// The first byte of a TLS connection: a handshake record (RFC 8446 5.1, content type 22).
constexpr unsigned char kTlsHandshakeRecord = 0x16;

}  // namespace

int64_t steadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// By hand rather than with Beast's message and serializer, which cost several allocations
// per response: the head's length is bounded first, then every piece is copied in place.
bool serializeHead(std::string& out, const Response& res, unsigned version, bool keepAlive,
                   bool isHead, const std::string& serverHeader) {
  using namespace std::string_view_literals;
  bool bodyless = res.status < 200 || res.status == 204 || res.status == 304;
  std::string_view reason = bhttp::obsolete_reason(static_cast<bhttp::status>(res.status));
  if (reason.starts_with('<')) reason = {};  // "<unknown-status>": an empty reason is valid
  std::string_view contentType;
  if (!bodyless && fieldSafe(res.contentType)) {
    contentType = res.contentType.empty() ? "text/plain; charset=utf-8"sv
                                          : std::string_view(res.contentType);
  }
  // A header that could split the response (CR, LF, NUL) is dropped, never sent.
  auto sendable = [](std::string_view name, std::string_view value) {
    return !name.empty() && fieldSafe(name) && fieldSafe(value);
  };
  size_t bound = 9 + 20 + 1 + reason.size() + 2 + 8 + serverHeader.size() + 2 + 14 +
                 contentType.size() + 2 + 16 + 20 + 2 + 24 + 2;
  for (const auto& h : res.headers) bound += h.name.size() + 2 + h.value.size() + 2;
  for (const auto& h : res.literalHeaders) bound += h.name.size() + 2 + h.value.size() + 2;
  out.resize(bound);
  char* p = out.data();
  auto put = [&p](std::string_view s) {
    if (s.empty()) return;  // an empty view may have no data (memcpy must not see null)
    std::memcpy(p, s.data(), s.size());
    p += s.size();
  };
  auto putDecimal = [&p](uint64_t v) { p = std::to_chars(p, p + 20, v).ptr; };
  put(version == 10 ? "HTTP/1.0 "sv : "HTTP/1.1 "sv);
  putDecimal(static_cast<uint64_t>(res.status));
  *p++ = ' ';
  put(reason);
  put("\r\nServer: "sv);
  put(serverHeader);
  put("\r\n"sv);
  if (!contentType.empty()) {
    put("Content-Type: "sv);
    put(contentType);
    put("\r\n"sv);
  }
  auto putHeader = [&](std::string_view name, std::string_view value) {
    if (!sendable(name, value)) return;
    put(name);
    put(": "sv);
    put(value);
    put("\r\n"sv);
  };
  for (const auto& h : res.headers) putHeader(h.name, h.value);
  for (const auto& h : res.literalHeaders) putHeader(h.name, h.value);
  if (!bodyless) {
    put("Content-Length: "sv);
    putDecimal(res.body.size());
    put("\r\n"sv);
  }
  if (!keepAlive) {
    put("Connection: close\r\n"sv);
  } else if (version == 10) {
    put("Connection: keep-alive\r\n"sv);
  }
  put("\r\n"sv);
  out.resize(static_cast<size_t>(p - out.data()));
  return !bodyless && !isHead;
}

Arrival Server::Impl::takeRequest(RequestParser& parser, const std::string& remote) {
  requests.fetch_add(1, std::memory_order_relaxed);
  bool wantsUpgrade = parser.isWebSocketUpgrade();
  Arrival a(std::move(parser.request()));  // constructed from it: one move
  a.keepAlive = parser.keepAlive() && !stopping.load();
  a.version = parser.version();
  a.isHead = parser.isHead();
  parser.reset();
  a.request.remoteAddress = remote;
  if (!upgrade || !wantsUpgrade) return a;
  UpgradeDecision decision = upgrade(a.request);
  if (decision.refusal) {
    a.keepAlive = false;
    a.next = Arrival::Next::kRespond;
    a.response = std::move(decision.refusal);
  } else if (decision.accept && webSockets.load() >= webSocketOptions.maxConnections) {
    a.keepAlive = false;
    a.next = Arrival::Next::kRespond;
    refused.fetch_add(1);
    a.response = refusalResponse(503, "unavailable",
                                 fmt::format("this node has its {} WebSocket connections",
                                             webSocketOptions.maxConnections));
  } else if (decision.accept) {
    a.next = Arrival::Next::kWebSocket;
    a.accept = std::move(decision.accept);
  }
  return a;
}

Response Server::Impl::refusalResponse(int status, const char* code, const std::string& message) {
  Response res;
  res.status = status;
  res.contentType = "application/json";
  res.body = fmt::format(R"({{"error":{{"code":"{}","message":"{}"}}}})", code, message) + "\n";
  return res;
}

// One connection of a server that speaks TLS: read a request, hand it to the handler, write
// the response, repeat while keep-alive. (A plain server's connections are PlainLoops'.)
class Session : public Connection {
 public:
  Session(tcp::socket socket, Server::Impl& server, std::shared_ptr<Client> client,
          std::string remote)
      : stream_(std::move(socket)),
        executor_(stream_.get_executor()),
        server_(server),
        client_(std::move(client)),
        remote_(std::move(remote)),
        parser_(server.options.maxHeaderBytes, server.bodyLimit) {}

  ~Session() {
    server_.releaseUnsent(*client_, unsent_);
    server_.unregisterConnection(*this);
    if (upgraded_) return;  // the connection and its client slot went to the WebSocket
    server_.leaveClient(client_);
    server_.open.fetch_sub(1);
  }

  void start() {
    asio::dispatch(executor_, [self = self()] { self->readRequest(); });
  }

  void closeIfIdle() override {
    asio::dispatch(executor_, [self = self()] {
      if (!self->busy_) self->close();
    });
  }

  void closeForNewcomer() override {
    asio::dispatch(executor_, [self = self()] {
      if (!self->awaitingNext_ || self->closed_) return;
      self->server_.idleClosed.fetch_add(1, std::memory_order_relaxed);
      self->close();
    });
  }

  void resume() override {
    asio::post(executor_, [self = self()] {
      if (self->closed_ || self->server_.stopping.load()) return self->close();
      if (self->waitingRequest_) {
        Request req = std::move(*self->waitingRequest_);
        self->waitingRequest_.reset();
        return self->run(std::move(req));
      }
      self->awaitRequest();
    });
  }

 private:
  std::shared_ptr<Session> self() { return std::static_pointer_cast<Session>(shared_from_this()); }

  // Before a request is read the unsent-response budget must allow it: while it does not,
  // the connection is not read, so its requests wait in the socket.
  void readRequest() {
    if (buffer_.size() == 0 && !parser_.begun()) {
      if (served_ > 0) markAwaitingNext();
      if (!server_.proceedOrWait(self(), client_)) {
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
    if (buffer_.size() > 0 || parser_.begun()) return parse();
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
                            [self = self()](beast::error_code ec, size_t n) {
                              self->awaitingNext_ = false;
                              self->idleSinceNs_.store(0, std::memory_order_relaxed);
                              if (ec) return self->failRead(ec);
                              self->buffer_.commit(n);
                              if (!self->sniffed_) return self->sniff();
                              self->parse();
                            });
  }

  // The connection's first byte says whether it speaks TLS: the handshake begins with the
  // bytes already read; plain HTTP is answered in plain text and closed.
  void sniff() {
    sniffed_ = true;
    bool tlsHello =
        static_cast<const unsigned char*>(buffer_.data().data())[0] == kTlsHandshakeRecord;
    const auto& identity = server_.options.tls;
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
        [self = self()](beast::error_code ec, size_t used) {
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
    if (!requestBegun_) {
      requestBegun_ = true;
      // Once a request has begun, it must arrive whole within the read timeout (the first
      // one within the read timeout from the start).
      if (served_ > 0) stream_.transport().expires_after(server_.options.readTimeout);
    }
    size_t used = 0;
    auto status = parser_.feed(
        std::string_view(static_cast<const char*>(buffer_.data().data()), buffer_.size()), used);
    buffer_.consume(used);
    switch (status) {
      case RequestParser::Status::kNeedMore:
        return readMore();
      case RequestParser::Status::kRefused: {
        const Refusal& r = parser_.refusal();
        return refuse(r.status, r.code, r.message);
      }
      case RequestParser::Status::kDone:
        return onRequest();
    }
  }

  void failRead(beast::error_code ec) {
    if (ec == beast::error::timeout) {
      // An idle keep-alive connection, or a request that did not arrive in time: the
      // stream has already closed the socket (no 408 can be sent), so just count it.
      if (buffer_.size() > 0 || parser_.begun()) {
        server_.badRequests.fetch_add(1, std::memory_order_relaxed);
      }
    }
    // Otherwise the client went, or TLS failed (a client gone without close_notify, a bad
    // record): nothing readable can be answered on it.
    close();
  }

  void onRequest() {
    ++served_;
    requestBegun_ = false;
    Arrival a = server_.takeRequest(parser_, remote_);
    keepAlive_ = a.keepAlive;
    version_ = a.version;
    isHead_ = a.isHead;
    stream_.transport().expires_never();
    switch (a.next) {
      case Arrival::Next::kRespond:
        busy_ = true;
        server_.inFlight.fetch_add(1);
        return respond(std::move(*a.response), true);
      case Arrival::Next::kWebSocket:
        return becomeWebSocket(std::move(a.request), std::move(a.accept));
      case Arrival::Next::kRun:
        break;
    }
    // Requests that arrived together (a burst of new connections) were read before their
    // responses existed: the budget is checked again before one runs.
    if (!server_.proceedOrWait(self(), client_)) {
      waitingRequest_ = std::move(a.request);
      return;
    }
    run(std::move(a.request));
  }

  // Hands the socket to a WebSocket session (defined below), which answers the upgrade.
  void becomeWebSocket(Request req,
                       std::function<std::shared_ptr<WebSocketListener>(std::shared_ptr<WebSocket>)> accept);

  void run(Request req) {
    busy_ = true;
    server_.inFlight.fetch_add(1);
    server_.handler(std::move(req), [self = self()](Response res) {
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
    asio::post(executor_, [self = self(), keepAlive, countsAsRequest] {
      if (self->unsent_ == 0) return self->onWrite({}, keepAlive, countsAsRequest);
      self->writeRest(keepAlive, countsAsRequest);
    });
  }

  // Answers an unreadable request and closes the connection afterwards.
  void refuse(int status, const char* code, const std::string& message) {
    server_.badRequests.fetch_add(1, std::memory_order_relaxed);
    keepAlive_ = false;
    respond(Server::Impl::refusalResponse(status, code, message), false);
  }

  // Serialises the response into one header string plus the body, so that both go out in
  // one call, and counts its bytes as unsent. Returns whether the connection stays open
  // afterwards.
  bool serialize(Response res) {
    bool keepAlive = keepAlive_ && !server_.stopping.load();
    bool body = serializeHead(outHead_, res, version_, keepAlive, isHead_, server_.options.serverHeader);
    outBody_ = body ? std::move(res.body) : std::string();
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
        buffers, [self = self(), keepAlive, countsAsRequest](beast::error_code ec,
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
    writeTimer_.async_wait([self = self(), generation = writeGeneration_](
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
  RequestParser parser_;
  beast::flat_buffer buffer_;
  static constexpr size_t kReadChunk = 64 * 1024;
  bool requestBegun_ = false;  // parse() has begun a request
  bool sniffed_ = false;  // the first byte was checked for a TLS handshake
  bool isHead_ = false;
  std::optional<Request> waitingRequest_;  // read, waiting for the budget to run
  uint64_t served_ = 0;                    // requests read on this connection
  bool awaitingNext_ = false;              // waiting for the next request of a keep-alive
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
// The upgrade request as Beast's WebSocket handshake reads it.
bhttp::request<bhttp::string_body> upgradeMessage(const Request& req) {
  bhttp::request<bhttp::string_body> msg;
  msg.method_string(req.method);
  msg.target(req.target);
  msg.version(11);
  for (const auto& h : req.headers) msg.insert(h.name, h.value);
  return msg;
}

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

  auto executor() { return ws_.get_executor(); }

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
    // Counted before this returns, not on the connection's thread: a stop that begins right
    // after (the hub's terminate frames, then Server::stop) must find it still flushing.
    server_.webSocketsFlushing.fetch_add(1);
    asio::dispatch(ws_.get_executor(), [self = shared_from_this(), lastText = std::move(lastText),
                                        reason = std::move(reason)]() mutable {
      self->closeReason_ = std::move(reason);
      if (self->done_) {
        self->server_.flushed();  // gone already: nothing is left to write
        return;
      }
      self->flushing_ = true;
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
    Request req,
    std::function<std::shared_ptr<WebSocketListener>(std::shared_ptr<WebSocket>)> accept) {
  upgraded_ = true;
  closed_ = true;
  server_.open.fetch_sub(1);  // a WebSocket now, under its own limit
  auto ws = std::make_shared<WebSocketSession>(std::move(stream_), server_, client_,
                                               std::move(remote_));
  ws->start(upgradeMessage(req), std::move(accept));
}

void Server::Impl::startWebSocket(
    tcp::socket socket, Request req,
    std::function<std::shared_ptr<WebSocketListener>(std::shared_ptr<WebSocket>)> accept,
    std::shared_ptr<Client> client, std::string remote) {
  open.fetch_sub(1);  // a WebSocket now, under its own limit
  auto ws = std::make_shared<WebSocketSession>(ConnStream(std::move(socket)), *this,
                                               std::move(client), std::move(remote));
  // Begun on the socket's own thread, where all its later steps run.
  asio::post(ws->executor(), [ws, msg = upgradeMessage(req), accept = std::move(accept)]() mutable {
    ws->start(std::move(msg), std::move(accept));
  });
}

bool Server::Impl::proceedOrWait(const std::shared_ptr<Connection>& session,
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
  waiting.push_back(WaitingEntry{session, client});
  session->waitingAt_ = std::prev(waiting.end());
  return false;
}

void Server::Impl::stopWaiting(Connection& session) {
  std::shared_ptr<Connection> entry;  // released after the lock, though never the last reference
  MutexLock lock(waitingMu);
  if (!session.waitingAt_) return;
  entry = std::move((*session.waitingAt_)->connection);
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
  std::vector<std::shared_ptr<Connection>> ready;
  {
    MutexLock lock(waitingMu);
    for (auto it = waiting.begin(); it != waiting.end();) {
      if (budgetAllows(*it->client)) {
        it->connection->waitingAt_.reset();
        ready.push_back(std::move(it->connection));
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
  std::shared_ptr<Connection> oldest;
  {
    MutexLock lock(mu);
    for (int attempt = 0; attempt < 3 && !oldest; ++attempt) {
      Connection* candidate = nullptr;
      int64_t since = 0;
      for (const auto& r : connections) {
        int64_t t = r.connection->idleSinceNs();
        if (t != 0 && (since == 0 || t < since)) {
          since = t;
          candidate = r.connection;
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
  if (plain) {
    int fd = socket.release(ec);
    if (ec) {  // the socket closes with `socket`
      open.fetch_sub(1);
      leaveClient(client);
      return;
    }
    return plain->adopt(fd, std::move(client), remote.address().to_string());
  }
  auto session = std::make_shared<Session>(std::move(socket), *this, std::move(client),
                                           remote.address().to_string());
  registerConnection(session);
  session->start();
}

void Server::Impl::registerConnection(const std::shared_ptr<Connection>& connection) {
  MutexLock lock(mu);
  connections.push_back(ConnectionEntry{connection.get(), connection});
  connection->registration_ = std::prev(connections.end());
}

void Server::Impl::unregisterConnection(Connection& connection) {
  if (!connection.registration_) return;
  MutexLock lock(mu);
  connections.erase(*connection.registration_);
  connection.registration_.reset();
}

void Server::Impl::accept() {
  // Connections are spread over the threads round-robin.
  auto& target = nextIoContext();
  acceptor->async_accept(target, [this](beast::error_code ec, tcp::socket socket) {
    if (stopping.load()) return;
    if (!ec) admit(std::move(socket));
    accept();
  });
}

Server::Impl::Impl(ServerOptions o, BodyLimit b, Handler h)
    : options(std::move(o)), bodyLimit(std::move(b)), handler(std::move(h)) {
  unsigned n = std::max(1u, options.threads);
  for (unsigned i = 0; i < n; ++i) contexts.push_back(std::make_unique<asio::io_context>(1));
  acceptor.emplace(*contexts[0]);
  if (!options.tls) plain = std::make_unique<PlainLoops>(*this, n);
}

Server::Impl::~Impl() = default;

Server::Server(ServerOptions options, BodyLimit bodyLimit, Handler handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(bodyLimit), std::move(handler))) {}

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
  if (impl_->plain) impl_->plain->start();
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
  std::vector<std::shared_ptr<Connection>> live;
  {
    MutexLock lock(s.mu);
    for (auto& r : s.connections) {
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
  if (s.plain) s.plain->stop();
  // Sessions still waiting go before the io_contexts their sockets belong to.
  std::list<WaitingEntry> waiting;
  {
    MutexLock lock(s.waitingMu);
    waiting.swap(s.waiting);
    s.waitingCount.store(0);
    for (auto& w : waiting) w.connection->waitingAt_.reset();
  }
}

Server::Stats Server::stats() const {
  const Impl& s = *impl_;
  return Stats{s.accepted.load(),    s.refused.load(),     s.refusedPerClient.load(),
               s.idleClosed.load(),  s.requests.load(),    s.badRequests.load(),
               s.open.load(),        s.inFlight.load(),    s.unsentBytes.load(),
               s.waitingCount.load(),  s.webSockets.load(), s.tlsHandshakesFailed.load()};
}

}  // namespace tern::http
