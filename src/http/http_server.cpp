#include "http/http_server.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <fmt/format.h>

#include <array>
#include <condition_variable>
#include <iterator>
#include <limits>
#include <list>
#include <mutex>
#include <optional>
#include <thread>

#include <sys/socket.h>
#include <sys/uio.h>

namespace tern::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

const std::string* Request::header(std::string_view name) const {
  for (const auto& h : headers) {
    if (beast::iequals(h.name, name)) return &h.value;
  }
  return nullptr;
}

std::optional<std::string> percentDecode(std::string_view s, bool plusIsSpace) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      auto hex = [](char h) -> int {
        if (h >= '0' && h <= '9') return h - '0';
        if (h >= 'a' && h <= 'f') return h - 'a' + 10;
        if (h >= 'A' && h <= 'F') return h - 'A' + 10;
        return -1;
      };
      int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plusIsSpace) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::vector<std::string> queryValues(std::string_view query, std::string_view key) {
  std::vector<std::string> out;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    size_t eq = pair.find('=');
    auto k = percentDecode(pair.substr(0, eq), true);
    if (!k || *k != key) continue;
    auto v = percentDecode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1),
                           true);
    if (v) out.push_back(std::move(*v));
  }
  return out;
}

class Session;

struct Server::Impl {
  ServerOptions options;
  BodyLimit bodyLimit;
  Handler handler;

  // Declared before the io_context: destroying it destroys pending handlers, which hold
  // sessions, whose destructors update these.
  std::atomic<uint64_t> accepted{0}, refused{0}, requests{0}, badRequests{0}, open{0},
      inFlight{0};
  std::atomic<bool> stopping{false};
  int listenFd = -1;  // the acceptor's descriptor, for stopAccepting()
  std::mutex mu;
  std::condition_variable idle;
  std::list<std::weak_ptr<Session>> sessions;

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
  void requestDone() {
    if (inFlight.fetch_sub(1) == 1) {
      std::lock_guard lock(mu);
      idle.notify_all();
    }
  }
};

// One client connection: read a request, hand it to the handler, write the response,
// repeat while keep-alive.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Server::Impl& server)
      : stream_(std::move(socket)), server_(server) {
    beast::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = ep.address().to_string();
  }
  ~Session() { server_.open.fetch_sub(1); }

  void start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->readRequest(); });
  }

  // Closes the connection if it is waiting for a request (called when draining).
  void closeIfIdle() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      if (!self->busy_) {
        beast::error_code ec;
        self->stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
        self->stream_.close();
      }
    });
  }

 private:
  // Reads and parses the next request. Bytes already buffered are parsed synchronously;
  // the socket is read only when the parser needs more, so a request that arrives in one
  // segment costs one read and no further asynchronous steps.
  void readRequest() {
    if (buffer_.size() == 0 && !parser_) {
      // A keep-alive connection may sit idle until its next request begins...
      stream_.expires_after(server_.options.idleTimeout);
      return readMore();
    }
    parse();
  }

  void readMore() {
    stream_.async_read_some(buffer_.prepare(kReadChunk),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              if (ec) return self->failRead(ec);
                              self->buffer_.commit(n);
                              self->parse();
                            });
  }

  void parse() {
    if (!parser_) {
      // ...but once it has, the whole request must arrive within the read timeout.
      parser_.emplace();
      parser_->header_limit(static_cast<uint32_t>(server_.options.maxHeaderBytes));
      // Beast checks Content-Length against its (1 MiB) default when the header completes;
      // the limit that applies depends on the route and is set in checkHeader. (Not
      // boost::none: Beast 1.74 compares the length with the optional, and anything exceeds
      // "none".)
      parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
      headerChecked_ = false;
      stream_.expires_after(server_.options.readTimeout);
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

  // Applies the route's body limit once the header is known; false if refused.
  bool checkHeader() {
    auto& req = parser_->get();
    size_t limit = server_.bodyLimit(std::string_view(req.method_string()),
                                     std::string_view(req.target()));
    if (auto len = parser_->content_length(); len && *len > limit) {
      refuse(413, "body_too_large",
             fmt::format("the request body is {} bytes, the limit is {} bytes", *len, limit));
      return false;
    }
    parser_->body_limit(limit);
    return true;
  }

  void failRead(beast::error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == asio::error::operation_aborted ||
        ec == asio::error::eof || ec == asio::error::connection_reset) {
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
    if (ec == bhttp::error::header_limit) {
      return refuse(431, "headers_too_large",
                    fmt::format("request headers exceed {} bytes", server_.options.maxHeaderBytes));
    }
    if (ec == bhttp::error::body_limit) {
      return refuse(413, "body_too_large", "the request body exceeds its limit");
    }
    refuse(400, "bad_request", "malformed HTTP request: " + ec.message());
  }

  void onRequest() {
    server_.requests.fetch_add(1, std::memory_order_relaxed);
    auto msg = parser_->release();
    parser_.reset();
    keepAlive_ = msg.keep_alive() && !server_.stopping.load();
    version_ = msg.version();
    isHead_ = msg.method() == bhttp::verb::head;

    Request req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    std::string_view target = msg.target();
    size_t q = target.find('?');
    auto path = percentDecode(target.substr(0, q));
    if (!path) {
      return refuse(400, "bad_request", "malformed percent-encoding in the request path");
    }
    req.path = std::move(*path);
    if (q != std::string_view::npos) req.query = std::string(target.substr(q + 1));
    req.headers.reserve(8);
    for (const auto& f : msg) {
      req.headers.push_back(Header{std::string(f.name_string()), std::string(f.value())});
    }
    req.body = std::move(msg.body());
    req.remoteAddress = remote_;

    busy_ = true;
    server_.inFlight.fetch_add(1);
    stream_.expires_never();
    server_.handler(std::move(req), [self = shared_from_this()](Response res) {
      if (self->onOwnThread()) return self->write(std::move(res), true);
      self->sendFromOtherThread(std::move(res));
    });
  }

  // Whether the caller runs on this connection's io_context thread.
  bool onOwnThread() {
    auto* ex = stream_.get_executor().target<asio::io_context::executor_type>();
    return !ex || ex->running_in_this_thread();
  }

  // A response completed on another thread (a worker, or the thread that delivers a cluster
  // peer's reply) is sent from that thread with one non-blocking send, without waking the
  // connection's thread first: while a request is being handled nothing on the connection's
  // thread touches the socket or the session (no read or timer is pending; the handler was
  // the last step). The connection's thread then resumes reading, or writes the part that
  // did not fit into the socket buffer.
  void sendFromOtherThread(Response res) {
    bool keepAlive = serialize(std::move(res));
    iovec iov[2] = {{outHead_.data(), outHead_.size()}, {outBody_.data(), outBody_.size()}};
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = outBody_.empty() ? 1 : 2;
    ssize_t n = ::sendmsg(stream_.socket().native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    size_t sent = n > 0 ? static_cast<size_t>(n) : 0;
    asio::post(stream_.get_executor(), [self = shared_from_this(), sent, keepAlive] {
      if (sent == self->outHead_.size() + self->outBody_.size()) {
        return self->onWrite({}, keepAlive, true);
      }
      self->writeFrom(sent, keepAlive, true);
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
    write(std::move(res), false);
  }

  // Serialises the response and writes it.
  void write(Response res, bool countsAsRequest) {
    bool keepAlive = serialize(std::move(res));
    writeFrom(0, keepAlive, countsAsRequest);
  }

  // Serialises the response by hand into one header string plus the body (Beast's message
  // and serializer cost several allocations per response), so that both go out in one call.
  // Returns whether the connection stays open afterwards.
  bool serialize(Response res) {
    bool keepAlive = keepAlive_ && !server_.stopping.load();
    bool bodyless = res.status < 200 || res.status == 204 || res.status == 304;
    outHead_.clear();
    fmt::format_to(std::back_inserter(outHead_), "HTTP/1.{} {} {}\r\nServer: {}\r\n",
                   version_ == 10 ? 0 : 1, res.status,
                   std::string_view(bhttp::obsolete_reason(static_cast<bhttp::status>(res.status))),
                   server_.options.serverHeader);
    auto safe = [](std::string_view v) {
      return v.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
    };
    if (!bodyless && safe(res.contentType)) {
      outHead_ += "Content-Type: ";
      outHead_ += res.contentType;
      outHead_ += "\r\n";
    }
    for (const auto& h : res.headers) {
      // A header that could split the response (CR, LF, NUL) is dropped, never sent.
      if (h.name.empty() || !safe(h.name) || !safe(h.value)) continue;
      outHead_ += h.name;
      outHead_ += ": ";
      outHead_ += h.value;
      outHead_ += "\r\n";
    }
    if (!bodyless) fmt::format_to(std::back_inserter(outHead_), "Content-Length: {}\r\n", res.body.size());
    if (!keepAlive) {
      outHead_ += "Connection: close\r\n";
    } else if (version_ == 10) {
      outHead_ += "Connection: keep-alive\r\n";
    }
    outHead_ += "\r\n";
    outBody_ = bodyless || isHead_ ? std::string() : std::move(res.body);
    return keepAlive;
  }

  // Writes the serialised response from byte `offset` on (the bytes before it are sent).
  void writeFrom(size_t offset, bool keepAlive, bool countsAsRequest) {
    size_t inHead = std::min(offset, outHead_.size());
    std::array<asio::const_buffer, 2> buffers{asio::buffer(outHead_) + inHead,
                                              asio::buffer(outBody_) + (offset - inHead)};
    stream_.expires_after(server_.options.writeTimeout);
    asio::async_write(stream_, buffers,
                      [self = shared_from_this(), keepAlive, countsAsRequest](beast::error_code ec,
                                                                             size_t) {
                        self->onWrite(ec, keepAlive, countsAsRequest);
                      });
  }

  void onWrite(beast::error_code ec, bool keepAlive, bool countsAsRequest) {
    busy_ = false;
    if (countsAsRequest) server_.requestDone();
    if (ec || !keepAlive) return close();
    readRequest();
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.close();
  }

  beast::tcp_stream stream_;
  Server::Impl& server_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::string remote_;
  static constexpr size_t kReadChunk = 64 * 1024;
  bool headerChecked_ = false;
  bool isHead_ = false;
  std::string outHead_;  // the response being written (one at a time per connection)
  std::string outBody_;
  bool keepAlive_ = true;
  bool busy_ = false;
  unsigned version_ = 11;
};

void Server::Impl::accept() {
  // Connections are spread over the threads round-robin.
  auto& target = *contexts[nextContext++ % contexts.size()];
  acceptor->async_accept(target, [this](beast::error_code ec, tcp::socket socket) {
    if (stopping.load()) return;
    if (!ec) {
      if (open.load() >= options.maxConnections) {
        refused.fetch_add(1);
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        accepted.fetch_add(1);
        open.fetch_add(1);
        socket.set_option(tcp::no_delay(true), ec);
        auto session = std::make_shared<Session>(std::move(socket), *this);
        {
          std::lock_guard lock(mu);
          // Forget sessions that have ended; the list stays bounded by open connections.
          for (auto it = sessions.begin(); it != sessions.end();) {
            it = it->expired() ? sessions.erase(it) : std::next(it);
          }
          sessions.push_back(session);
        }
        session->start();
      }
    }
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
  std::lock_guard lock(s.mu);
  for (auto& w : s.sessions) {
    if (auto session = w.lock()) session->closeIfIdle();
  }
}

void Server::stop(std::chrono::milliseconds drain) {
  Impl& s = *impl_;
  if (s.threads.empty()) return;
  stopAccepting();
  {
    std::unique_lock lock(s.mu);
    s.idle.wait_for(lock, drain, [&s] { return s.inFlight.load() == 0; });
  }
  s.work.clear();
  for (auto& ctx : s.contexts) ctx->stop();
  for (auto& t : s.threads) t.join();
  s.threads.clear();
}

Server::Stats Server::stats() const {
  return Stats{impl_->accepted.load(), impl_->refused.load(), impl_->requests.load(),
               impl_->badRequests.load(), impl_->open.load(), impl_->inFlight.load()};
}

}  // namespace tern::http
