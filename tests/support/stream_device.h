#pragma once
// A device of the stream hub for tests: a WebSocket to /v1/streams (http/websocket_client.h)
// that sends frames and reads the node's frames as JSON, each read with a deadline.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "http/websocket_client.h"

namespace tern::test {

class StreamDevice {
 public:
  // Connects to the node on 127.0.0.1:port; fails the test when it cannot.
  explicit StreamDevice(uint16_t port);

  void send(const nlohmann::json& frame);
  void sendText(const std::string& text);
  // Sends without expecting success: false when the node ended the connection before the
  // whole frame was written (it may refuse an oversized frame from its header alone).
  bool trySendText(const std::string& text);
  // Sends a subscribe frame and waits for its "subscribed" (or returns the terminate that
  // came instead).
  nlohmann::json subscribe(nlohmann::json frame);

  // The next frame, waiting up to `patience`; nullopt when none came (or the connection
  // ended: see closed()).
  std::optional<nlohmann::json> next(std::chrono::milliseconds patience = std::chrono::seconds(60));
  // The next `n` data frames of `stream` (other frames are kept for later next() calls
  // only if they are of another stream); fewer when they do not come in time.
  std::vector<nlohmann::json> data(uint64_t stream, size_t n,
                                   std::chrono::milliseconds patience = std::chrono::seconds(60));
  // Sequence numbers of frames.
  static std::vector<uint64_t> seqs(const std::vector<nlohmann::json>& frames);

  bool closed() const { return closed_; }
  uint16_t closeCode() const { return closeCode_; }
  void close() { (void)ws_.close(); }

 private:
  http::WebSocketClient ws_;
  std::vector<nlohmann::json> kept_;
  bool closed_ = false;
  uint16_t closeCode_ = 0;
};

}  // namespace tern::test
