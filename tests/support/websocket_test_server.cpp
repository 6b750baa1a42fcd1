// The scripted WebSocket server of websocket_test_server.h, on Boost.Beast.

#include "websocket_test_server.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <deque>
#include <mutex>
#include <thread>

namespace tern::test {

struct WebSocketTestServer::Impl {
  using tcp = boost::asio::ip::tcp;
  using error_code = boost::beast::error_code;

  Impl(Script script, Mode mode)
      : mode_(mode),
        script_(std::move(script)),
        acceptor_(ioc_, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    accept();
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~Impl() {
    ioc_.stop();
    thread_.join();
  }

  struct Session : std::enable_shared_from_this<Session> {
    Session(Impl* s, tcp::socket socket) : server(s), ws(std::move(socket)) {}

    void start() {
      boost::beast::http::async_read(ws.next_layer(), buffer, request,
                                     [self = shared_from_this()](error_code ec, size_t) {
                                       if (!ec) self->onRequest();
                                     });
    }

    void onRequest() {
      namespace bhttp = boost::beast::http;
      server->recordRequest(request);
      if (server->mode_ == Mode::kNotFound) {
        auto res = std::make_shared<bhttp::response<bhttp::string_body>>(bhttp::status::not_found,
                                                                         11);
        res->set(bhttp::field::content_type, "text/plain");
        res->body() = "no such route\n";
        res->keep_alive(false);
        res->prepare_payload();
        bhttp::async_write(ws.next_layer(), *res,
                           [self = shared_from_this(), res](error_code, size_t) {
                             error_code ignored;
                             self->ws.next_layer().shutdown(tcp::socket::shutdown_send, ignored);
                           });
        return;
      }
      ws.async_accept(request, [self = shared_from_this()](error_code ec) {
        if (!ec) self->read();
      });
    }

    void read() {
      ws.async_read(buffer, [self = shared_from_this()](error_code ec, size_t) {
        if (!ec) {
          self->onMessage();
        } else if (ec == boost::beast::websocket::error::closed) {
          const auto& why = self->ws.reason();
          self->server->recordClose(static_cast<uint16_t>(why.code),
                                    std::string(why.reason.data(), why.reason.size()));
        }
      });
    }

    void onMessage() {
      std::string text = boost::beast::buffers_to_string(buffer.data());
      buffer.consume(buffer.size());
      server->recordMessage(text);
      step = server->script_(text);
      outbox.assign(step.send.begin(), step.send.end());
      writeNext();
    }

    // Sends the step's messages one at a time, then closes, drops or reads on.
    void writeNext() {
      namespace websocket = boost::beast::websocket;
      if (!outbox.empty()) {
        ws.text(true);
        ws.async_write(boost::asio::buffer(outbox.front()),
                       [self = shared_from_this()](error_code ec, size_t) {
                         if (ec) return;
                         self->outbox.pop_front();
                         self->writeNext();
                       });
        return;
      }
      if (step.close) {
        ws.async_close(websocket::close_reason(static_cast<websocket::close_code>(step.close->first),
                                               step.close->second),
                       [self = shared_from_this()](error_code) {});
        return;
      }
      if (step.drop) {
        error_code ignored;
        ws.next_layer().shutdown(tcp::socket::shutdown_both, ignored);
        ws.next_layer().close(ignored);
        return;
      }
      read();
    }

    Impl* server;
    boost::beast::websocket::stream<tcp::socket> ws;
    boost::beast::flat_buffer buffer;
    boost::beast::http::request<boost::beast::http::string_body> request;
    Step step;
    std::deque<std::string> outbox;
  };

  void accept() {
    acceptor_.async_accept([this](error_code ec, tcp::socket socket) {
      if (ec) return;
      // As a node does: each frame leaves at once, not held back for the previous one's ACK.
      socket.set_option(tcp::no_delay(true), ec);
      std::make_shared<Session>(this, std::move(socket))->start();
      accept();
    });
  }

  void recordRequest(const boost::beast::http::request<boost::beast::http::string_body>& req) {
    std::lock_guard lock(mu_);
    lastTarget_ = std::string(req.target());
    auto auth = req.find(boost::beast::http::field::authorization);
    lastAuthorization_ = auth == req.end() ? "" : std::string(auth->value());
  }

  void recordClose(uint16_t code, std::string reason) {
    std::lock_guard lock(mu_);
    lastClose_ = std::make_pair(code, std::move(reason));
  }

  void recordMessage(const std::string& text) {
    std::lock_guard lock(mu_);
    received_.push_back(text);
  }

  Mode mode_;
  Script script_;
  boost::asio::io_context ioc_{1};
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  mutable std::mutex mu_;
  std::string lastTarget_;
  std::string lastAuthorization_;
  std::vector<std::string> received_;
  std::optional<std::pair<uint16_t, std::string>> lastClose_;
  std::thread thread_;
};

WebSocketTestServer::WebSocketTestServer(Script script, Mode mode)
    : impl_(std::make_unique<Impl>(std::move(script), mode)) {}

WebSocketTestServer::~WebSocketTestServer() = default;

uint16_t WebSocketTestServer::port() const { return impl_->port_; }

std::string WebSocketTestServer::lastTarget() const {
  std::lock_guard lock(impl_->mu_);
  return impl_->lastTarget_;
}

std::string WebSocketTestServer::lastAuthorization() const {
  std::lock_guard lock(impl_->mu_);
  return impl_->lastAuthorization_;
}

std::optional<std::pair<uint16_t, std::string>> WebSocketTestServer::lastClose() const {
  std::lock_guard lock(impl_->mu_);
  return impl_->lastClose_;
}

std::vector<std::string> WebSocketTestServer::received() const {
  std::lock_guard lock(impl_->mu_);
  return impl_->received_;
}

}  // namespace tern::test
