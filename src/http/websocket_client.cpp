#include "http/websocket_client.h"

#include "http/client_connect.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <fmt/format.h>

#include <algorithm>

namespace tern::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

// RFC 6455 close codes this client reports or sends.
constexpr uint16_t kCloseNormal = 1000;
constexpr uint16_t kCloseNoStatus = 1005;
constexpr uint16_t kCloseAbnormal = 1006;

// The codes an endpoint may put in a close frame (RFC 6455 7.4): 1005, 1006 and 1015 only
// report what happened, other values below 3000 are reserved to the RFC.
bool isSendableCloseCode(uint16_t code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

// A close frame's reason is at most 123 bytes (a control frame's 125, less the code).
constexpr size_t kMaxCloseReasonBytes = 123;

bool isHeaderName(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

bool isHeaderValue(std::string_view s) {
  return std::none_of(s.begin(), s.end(),
                      [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
}

// The start of a refusal's body for an error message: its first line, at most 200 bytes,
// with bytes outside printable ASCII shown as '?' (the body is the server's, not ours).
std::string bodyExcerpt(std::string_view body) {
  body = body.substr(0, std::min(body.find('\n'), size_t{200}));
  std::string out(body);
  for (char& c : out) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  while (!out.empty() && out.back() == '?') out.pop_back();  // a trailing '\r'
  return out;
}

ErrorCode refusalKind(int status) {
  switch (status) {
    case 400: return ErrorCode::kInvalidArgument;
    case 401:
    case 403: return ErrorCode::kUnauthorized;
    case 404: return ErrorCode::kNotFound;
    case 429: return ErrorCode::kSaturated;
    default: return ErrorCode::kUnavailable;
  }
}

}  // namespace

struct WebSocketClient::Impl {
  explicit Impl(WebSocketLimits l) : limits(l) {}

  ~Impl() { drop(); }

  // Runs the I/O of this connection until `done()` holds or `deadline` passes; true when
  // `done()` holds.
  template <typename Done>
  bool runUntil(Done done, Clock::time_point deadline) {
    while (!done()) {
      if (ioc.stopped()) ioc.restart();
      if (Clock::now() >= deadline) {
        // A past deadline still takes what is ready.
        ioc.poll();
        return done();
      }
      ioc.run_one_until(deadline);
    }
    return true;
  }

  // Closes the socket, which ends every operation in flight, and lets them finish.
  void drop() {
    if (!ws) return;
    beast::error_code ignored;
    ws->next_layer().transport().socket().shutdown(tcp::socket::shutdown_both, ignored);
    ws->next_layer().transport().close();
    if (ioc.stopped()) ioc.restart();
    // Every operation now completes at once with an error; the bound is a safeguard.
    ioc.run_for(std::chrono::seconds(1));
    ws.reset();
    readPending = false;
    readDone = false;
    buffer.clear();
  }

  Error unavailable(std::string what) const {
    return Error(ErrorCode::kUnavailable, fmt::format("{}: {}", where, what));
  }

  WebSocketReceive failed(Error e) {
    WebSocketReceive r;
    r.kind = WebSocketReceive::Kind::kFailed;
    r.error = std::move(e);
    return r;
  }

  WebSocketLimits limits;
  asio::io_context ioc{1};
  std::optional<websocket::stream<ConnStream>> ws;
  bool open = false;
  std::string where;  // "ws://HOST:PORT/PATH", for messages

  // The read in flight (at most one) and its outcome once it completed.
  beast::flat_buffer buffer;
  bool readPending = false;
  bool readDone = false;
  beast::error_code readEc;

  // How the connection ended, repeated to later receive() calls.
  std::optional<WebSocketReceive> ended;
};

WebSocketClient::WebSocketClient(WebSocketLimits limits)
    : impl_(std::make_unique<Impl>(limits)) {}
WebSocketClient::~WebSocketClient() = default;
WebSocketClient::WebSocketClient(WebSocketClient&&) noexcept = default;
WebSocketClient& WebSocketClient::operator=(WebSocketClient&&) noexcept = default;

bool WebSocketClient::isOpen() const { return impl_ && impl_->open; }

Result<void> WebSocketClient::connect(const NodeUrl& url, std::string_view path,
                                      const std::vector<HttpHeader>& headers,
                                      std::chrono::milliseconds connectTimeout,
                                      const std::shared_ptr<const ClientTls>& tls) {
  Impl& s = *impl_;
  if (s.open) return Error(ErrorCode::kInvalidArgument, "the WebSocket is already connected");
  for (const auto& h : headers) {
    if (!isHeaderName(h.name) || !isHeaderValue(h.value)) {
      return Error(ErrorCode::kInvalidArgument, fmt::format("invalid HTTP header \"{}\"", h.name));
    }
  }
  s.drop();
  s.ended.reset();
  const std::string target = url.path + std::string(path);
  const std::string base = url.text();
  s.where = fmt::format("{}{}{}", url.tls ? "wss" : "ws",
                        std::string_view(base).substr(url.tls ? 5 : 4), path);
  const auto deadline = Clock::now() + connectTimeout;
  if (s.ioc.stopped()) s.ioc.restart();

  // Connecting, the TLS handshake and the upgrade share the deadline through the TCP
  // stream's expiry, which closes the socket when it passes; it is cleared once the
  // WebSocket is open, after which runUntil() bounds each call instead.
  s.ws.emplace(tcp::socket(s.ioc));
  auto& tcpStream = s.ws->next_layer().transport();
  auto opened = openConnection(s.ioc, url, s.ws->next_layer(), tls, deadline, connectTimeout);
  if (!opened) {
    s.drop();
    return opened.error();
  }
  beast::error_code ec;

  // Frames are small and each is wanted at once (credits, cancels): no Nagle delay.
  tcpStream.socket().set_option(tcp::no_delay(true), ec);
  s.ws->set_option(websocket::stream_base::decorator([headers](websocket::request_type& req) {
    req.set(bhttp::field::user_agent, "tern/0.1.0");
    for (const auto& h : headers) req.set(h.name, h.value);
  }));
  s.ws->read_message_max(s.limits.maxMessageBytes);
  websocket::response_type res;
  s.ws->async_handshake(res, url.hostHeader(), target, [&](beast::error_code e) { ec = e; });
  s.ioc.run();
  s.ioc.restart();
  if (ec) {
    s.drop();
    int status = static_cast<int>(res.result_int());
    if (status == 400 && !url.tls && res.body().starts_with("this port speaks HTTPS")) {
      Url https = url;
      https.tls = true;
      return Error(ErrorCode::kUnavailable,
                   fmt::format("{} serves HTTPS, not plain HTTP: use {}", base, https.text()));
    }
    if (status != 0 && status != 101) {
      std::string message = fmt::format("{} answered HTTP {} to the WebSocket upgrade of {}",
                                        base, status, target);
      if (std::string body = bodyExcerpt(res.body()); !body.empty()) message += ": " + body;
      return Error(refusalKind(status), std::move(message));
    }
    if (ec == beast::error::timeout) {
      return Error(ErrorCode::kUnavailable,
                   fmt::format("no WebSocket upgrade from {} within {} ms", base,
                               connectTimeout.count()));
    }
    return Error(ErrorCode::kUnavailable,
                 fmt::format("the WebSocket upgrade of {} at {} failed: {}", target, base,
                             ec.message()));
  }
  tcpStream.expires_never();
  s.ws->text(true);
  s.open = true;
  return {};
}

Result<void> WebSocketClient::send(std::string_view text) {
  Impl& s = *impl_;
  if (!s.open) return Error(ErrorCode::kUnavailable, "the WebSocket is not open");
  bool done = false;
  beast::error_code ec;
  s.ws->async_write(asio::buffer(text.data(), text.size()), [&](beast::error_code e, size_t) {
    ec = e;
    done = true;
  });
  if (!s.runUntil([&] { return done; }, Clock::now() + s.limits.sendTimeout)) {
    s.open = false;
    s.drop();  // completes the write (aborted) before `done` goes out of scope
    return s.unavailable(
        fmt::format("the peer took no data within {} ms", s.limits.sendTimeout.count()));
  }
  if (ec) {
    s.open = false;
    s.drop();
    return s.unavailable(fmt::format("sending failed: {}", ec.message()));
  }
  return {};
}

WebSocketReceive WebSocketClient::receive(Clock::time_point deadline) {
  Impl& s = *impl_;
  if (s.ended) return *s.ended;
  if (!s.open) return s.failed(Error(ErrorCode::kUnavailable, "the WebSocket is not open"));
  if (!s.readPending && !s.readDone) {
    s.readPending = true;
    // The handler outlives this call when the deadline passes first: it touches only Impl.
    Impl* impl = &s;
    s.ws->async_read(s.buffer, [impl](beast::error_code e, size_t) {
      impl->readEc = e;
      impl->readPending = false;
      impl->readDone = true;
    });
  }
  if (!s.runUntil([&] { return s.readDone; }, deadline)) {
    WebSocketReceive r;
    r.kind = WebSocketReceive::Kind::kTimedOut;
    return r;
  }
  s.readDone = false;
  beast::error_code ec = s.readEc;
  if (!ec) {
    WebSocketReceive r;
    r.kind = WebSocketReceive::Kind::kMessage;
    r.text = beast::buffers_to_string(s.buffer.data());
    s.buffer.consume(s.buffer.size());
    return r;
  }

  WebSocketReceive r;
  if (ec == websocket::error::closed) {
    r.kind = WebSocketReceive::Kind::kClosed;
    const auto& why = s.ws->reason();
    r.closeCode = why.code == websocket::close_code::none ? kCloseNoStatus
                                                          : static_cast<uint16_t>(why.code);
    r.closeReason = std::string(why.reason.data(), why.reason.size());
  } else if (ec == asio::error::eof || ec == asio::error::connection_reset) {
    r.kind = WebSocketReceive::Kind::kClosed;
    r.closeCode = kCloseAbnormal;
  } else if (ec == websocket::error::message_too_big) {
    r = s.failed(Error(ErrorCode::kBodyTooLarge,
                       fmt::format("{}: a message exceeds {} bytes", s.where,
                                   s.limits.maxMessageBytes)));
  } else {
    r = s.failed(s.unavailable(fmt::format("the connection broke: {}", ec.message())));
  }
  s.open = false;
  s.drop();
  s.ended = r;
  return r;
}

Result<void> WebSocketClient::close(uint16_t code, std::string_view reason) {
  Impl& s = *impl_;
  if (!s.open) return {};
  s.open = false;
  s.ended = s.failed(Error(ErrorCode::kUnavailable, "the WebSocket was closed"));
  if (reason.size() > kMaxCloseReasonBytes) {
    size_t cut = kMaxCloseReasonBytes;
    while (cut > 0 && (static_cast<unsigned char>(reason[cut]) & 0xc0) == 0x80) --cut;
    reason = reason.substr(0, cut);
  }
  bool done = false;
  beast::error_code ec;
  s.ws->async_close(
      websocket::close_reason(
          static_cast<websocket::close_code>(isSendableCloseCode(code) ? code : kCloseNormal),
          reason),
      [&](beast::error_code e) {
        ec = e;
        done = true;
      });
  // A read in flight ends with the peer's close frame; both must be over.
  bool finished =
      s.runUntil([&] { return done && !s.readPending; }, Clock::now() + s.limits.sendTimeout);
  s.drop();
  if (!finished) {
    return s.unavailable(fmt::format("no closing handshake within {} ms",
                                     s.limits.sendTimeout.count()));
  }
  if (ec && ec != websocket::error::closed) {
    return s.unavailable(fmt::format("closing failed: {}", ec.message()));
  }
  return {};
}

}  // namespace tern::http
