#pragma once
// A small synchronous WebSocket client (RFC 6455) over TCP or TLS, for talking to a node's
// stream endpoint (/v1/streams, docs/design/streams.md) as a device does: `tern stream
// subscribe` and the integration tests use it. ws:// for an http:// node URL, wss:// for an
// https:// one (connected like sendHttp: http_client.h), text messages, no extensions.
// Boost.Beast is confined to websocket_client.cpp; this header is transport-neutral.
//
// One thread at a time: the client runs its own I/O inside its calls, so it needs no thread
// of its own, and nothing happens on the connection between calls except what the kernel
// buffers. A receive() that times out leaves its read in flight; the next receive() goes
// on with it, so a timeout never loses or splits a message.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/http_client.h"
#include "util/error.h"

namespace tern::http {

struct WebSocketLimits {
  // Bound on one send() and on the closing handshake of close().
  std::chrono::milliseconds sendTimeout{10000};
  // A larger incoming message fails the connection (close code 1009).
  size_t maxMessageBytes = 1u << 20;
};

// What receive() got: the next message, or why there is none.
struct WebSocketReceive {
  enum class Kind {
    kMessage,   // `text` holds the next message
    kTimedOut,  // nothing arrived before the deadline; the connection stays usable
    kClosed,    // the peer closed the connection: `closeCode` and `closeReason` say how
    kFailed,    // the connection broke or is not open: `error` says why
  };
  Kind kind = Kind::kFailed;
  std::string text;
  // The peer's close code; 1005 when its close frame carried none, 1006 when the TCP
  // connection ended without a close frame.
  uint16_t closeCode = 0;
  std::string closeReason;
  std::optional<Error> error;
};

class WebSocketClient {
 public:
  explicit WebSocketClient(WebSocketLimits limits = {});
  // Drops an open connection without the closing handshake; call close() for a clean end.
  ~WebSocketClient();
  // A moved-from client may only be destroyed or assigned to.
  WebSocketClient(WebSocketClient&&) noexcept;
  WebSocketClient& operator=(WebSocketClient&&) noexcept;
  WebSocketClient(const WebSocketClient&) = delete;
  WebSocketClient& operator=(const WebSocketClient&) = delete;

  // Resolves and connects to `url` (with TLS for https://, the server's certificate checked
  // against `tls`, the system's trusted CAs when null), then upgrades GET <url.path><path>
  // to a WebSocket, sending `headers` with the upgrade request (e.g. Authorization).
  // `connectTimeout` bounds the whole of it. Errors: kUnavailable (cannot resolve or
  // connect, TLS failed, no answer in time, the server speaks no WebSocket), kInvalidArgument (a header that cannot be sent,
  // already connected); an HTTP answer other than 101 is an error whose message holds the
  // status and the start of the body, of the kind its status suggests (400 kInvalidArgument,
  // 401 and 403 kUnauthorized, 404 kNotFound, 429 kSaturated, otherwise kUnavailable).
  [[nodiscard]] Result<void> connect(const NodeUrl& url, std::string_view path,
                                     const std::vector<HttpHeader>& headers,
                                     std::chrono::milliseconds connectTimeout,
                                     const std::shared_ptr<const ClientTls>& tls = nullptr);

  // Sends one text message, bounded by the send timeout. Errors: kUnavailable (not open,
  // the connection broke or took nothing within the timeout; the connection is then
  // dropped).
  [[nodiscard]] Result<void> send(std::string_view text);

  // The next message, waiting until `deadline` at most. Pings are answered meanwhile. A
  // message above the limit is kFailed with kBodyTooLarge.
  [[nodiscard]] WebSocketReceive receive(std::chrono::steady_clock::time_point deadline);

  // Sends a close frame with `code` (1000 when it is not one an endpoint may send) and
  // `reason` (cut to 123 bytes at a character boundary), waits (within the send timeout)
  // for the peer's, and ends the connection. Messages still unread are dropped. Does
  // nothing when the connection is not open. Errors: kUnavailable (the handshake did not
  // complete; the connection is dropped all the same).
  Result<void> close(uint16_t code = 1000, std::string_view reason = {});

  // True between a successful connect() and the end of the connection.
  bool isOpen() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tern::http
