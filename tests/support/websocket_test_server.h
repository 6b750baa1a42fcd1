#pragma once
// A scripted WebSocket server on 127.0.0.1:0 for tests of WebSocket clients (the client in
// src/http and the commands built on it), run on an I/O thread of its own. Boost.Beast stays
// in websocket_test_server.cpp, compiled once into the test support library.
//
// Each text message a client sends is given to the script, whose Step says what to answer:
// messages to send in order, then optionally a close frame or a dropped TCP connection.
// In kNotFound mode every request, upgrade or not, is answered 404 "no such route".

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
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

  explicit WebSocketTestServer(Script script, Mode mode = Mode::kWebSocket);
  ~WebSocketTestServer();
  WebSocketTestServer(const WebSocketTestServer&) = delete;
  WebSocketTestServer& operator=(const WebSocketTestServer&) = delete;

  uint16_t port() const;
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port()); }

  // The target and Authorization header ("" when none) of the latest upgrade request.
  std::string lastTarget() const;
  std::string lastAuthorization() const;
  // The code and reason of the latest close frame a client sent, once one has arrived.
  std::optional<std::pair<uint16_t, std::string>> lastClose() const;
  // Every message received, in order, over all connections.
  std::vector<std::string> received() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tern::test
