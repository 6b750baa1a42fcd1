#pragma once
// A scripted WebSocket server on 127.0.0.1:0 for tests of WebSocket clients (the client in
// src/http and the commands built on it), run on an I/O thread of its own. Header-only:
// it brings Boost.Beast into the tests that include it, and only into those (link them with
// Boost::boost and define BOOST_BEAST_USE_STD_STRING_VIEW as tern_http does).
//
// Each text message a client sends is given to the script, whose Step says what to answer:
// messages to send in order, then optionally a close frame or a dropped TCP connection.
// In kNotFound mode every request, upgrade or not, is answered 404 "no such route".

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace tern::test {

class WebSocketTestServer {
 public:
  enum class Mode { kWebSocket, kNotFound };

  struct Step {
    std::vector<std::string> send;  // text messages, in order
    // After sending: a close frame with this code and reason.
    std::optional<std::pair<uint16_t, std::string>> close;
    bool drop = false;  // after sending: close the TCP connection without a close frame
  };
  using Script = std::function<Step(const std::string& message)>;

  // Answers every message with itself.
  static Step echo(const std::string& message) { return Step{{message}, std::nullopt, false}; }

  explicit WebSocketTestServer(Script script, Mode mode = Mode::kWebSocket)
      : mode_(mode),
        script_(std::move(script)),
        acceptor_(ioc_, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    accept();
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~WebSocketTestServer() {
    ioc_.stop();
    thread_.join();
  }
  WebSocketTestServer(const WebSocketTestServer&) = delete;
  WebSocketTestServer& operator=(const WebSocketTestServer&) = delete;

  uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // The target and Authorization header ("" when none) of the latest upgrade request.
  std::string lastTarget() const {
    std::lock_guard lock(mu_);
    return lastTarget_;
  }
  std::string lastAuthorization() const {
    std::lock_guard lock(mu_);
    return lastAuthorization_;
  }
  // The code and reason of the latest close frame a client sent, once one has arrived.
  std::optional<std::pair<uint16_t, std::string>> lastClose() const {
    std::lock_guard lock(mu_);
    return lastClose_;
  }
  // Every message received, in order, over all connections.
  std::vector<std::string> received() const {
    std::lock_guard lock(mu_);
    return received_;
  }

 private:
  using tcp = boost::asio::ip::tcp;
  using error_code = boost::beast::error_code;

  struct Session : std::enable_shared_from_this<Session> {
    Session(WebSocketTestServer* s, tcp::socket socket) : server(s), ws(std::move(socket)) {}

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

    WebSocketTestServer* server;
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

}  // namespace tern::test
