#pragma once
// Internal to src/http: a connection's byte stream, plain TCP or TLS over it, shared by the
// server, the HTTP client and the WebSocket client. Included only by their translation units.

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/beast/websocket/teardown.hpp>

#include <memory>
#include <utility>

namespace tern::http {

// A connection's bytes: TCP, or TLS over that TCP once startTls() has run. Which one is
// decided at run time (by the server from a connection's first byte, by a client from the
// URL's scheme), so one Session, WebSocket session or client serves both. The TCP stream carries the deadlines either way. Movable
// (the TLS stream refers to the TCP stream, which lives on the heap).
class ConnStream {
 public:
  using executor_type = boost::beast::tcp_stream::executor_type;
  using TlsStream = boost::asio::ssl::stream<boost::beast::tcp_stream&>;

  explicit ConnStream(boost::asio::ip::tcp::socket socket)
      : tcp_(std::make_unique<boost::beast::tcp_stream>(std::move(socket))) {}

  executor_type get_executor() { return tcp_->get_executor(); }
  boost::beast::tcp_stream& transport() { return *tcp_; }
  // For boost::beast::get_lowest_layer, which Beast's WebSocket uses to close the socket.
  boost::beast::tcp_stream& next_layer() { return *tcp_; }
  TlsStream* tls() { return tls_.get(); }
  bool isTls() const { return tls_ != nullptr; }

  // From here on the bytes go through TLS, configured by `ctx` (a ServerTls's or a
  // ClientTls's: set up once, then only read, which OpenSSL allows from many threads).
  // `owner` keeps the context alive as long as the stream.
  void startTls(boost::asio::ssl::context& ctx, std::shared_ptr<const void> owner = {}) {
    tls_ = std::make_unique<TlsStream>(*tcp_, ctx);
    owner_ = std::move(owner);
  }

  template <typename Buffers, typename Handler>
  void async_read_some(const Buffers& buffers, Handler&& handler) {
    if (tls_) return tls_->async_read_some(buffers, std::forward<Handler>(handler));
    tcp_->async_read_some(buffers, std::forward<Handler>(handler));
  }
  template <typename Buffers, typename Handler>
  void async_write_some(const Buffers& buffers, Handler&& handler) {
    if (tls_) return tls_->async_write_some(buffers, std::forward<Handler>(handler));
    tcp_->async_write_some(buffers, std::forward<Handler>(handler));
  }

 private:
  std::unique_ptr<boost::beast::tcp_stream> tcp_;
  std::unique_ptr<TlsStream> tls_;
  std::shared_ptr<const void> owner_;
};

// How a WebSocket over a ConnStream ends its connection (found by Beast through ADL).
template <typename Handler>
void async_teardown(boost::beast::role_type role, ConnStream& stream, Handler&& handler) {
  using boost::beast::websocket::async_teardown;
  using boost::beast::async_teardown;
  if (stream.tls()) return async_teardown(role, *stream.tls(), std::forward<Handler>(handler));
  async_teardown(role, stream.transport(), std::forward<Handler>(handler));
}
inline void teardown(boost::beast::role_type role, ConnStream& stream, boost::beast::error_code& ec) {
  using boost::beast::websocket::teardown;
  using boost::beast::teardown;
  if (stream.tls()) return teardown(role, *stream.tls(), ec);
  teardown(role, stream.transport(), ec);
}

}  // namespace tern::http
