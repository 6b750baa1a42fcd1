#pragma once
// Direct links between the nodes of one site (docs/design/cluster.md, "Direct links"): a
// TCP connection from a forwarding node to the peer that runs the call, carrying the same
// signed envelopes as NATS. A call forwarded this way costs one round trip between the two
// nodes instead of two through nats-server. NATS stays the path between sites and the
// fallback whenever a link cannot be opened.
//
// Frames, in both directions:
//
//   offset  size  field
//   0       4     length L of what follows (8 + envelope), big-endian
//   4       8     call id, big-endian (chosen by the calling node, echoed in the reply)
//   12      L-8   envelope (envelope.h)
//
// The listening side answers each request frame on the connection it came in on. Nothing
// in a frame is trusted before its envelope's MAC verifies (the request handler does that);
// a connection whose first frame does not arrive within `firstFrameTimeout`, whose frame is
// oversized or refused by the handler, is closed.
//
// With `PeerLinkOptions::tls` the links are mutual TLS (docs/design/tls.md, "Direct
// links"): the frames above travel inside TLS 1.3, both nodes present their certificate
// and each verifies the other's against the site's CA; the connecting node also checks
// that the certificate names the IP address it connected to. Once its handshake is done,
// the accepting side sends one empty frame (call id 0, no envelope): the connecting side
// uses the link only after it arrives, so a refusal of its certificate (which TLS 1.3
// reports after the connecting side's handshake has ended) never costs a call. A link is
// TLS at both ends or plain at both ends: a listener refuses, and logs, a connection that
// speaks the other (told apart by its first byte: a TLS handshake begins with 0x16, a
// frame's length never does).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "http/tls.h"
#include "util/error.h"

namespace tern::cluster {

inline constexpr size_t kFrameHeaderBytes = 12;

struct PeerLinkOptions {
  size_t maxEnvelopeBytes = 8u << 20;  // larger frames are refused and the connection closed
  uint32_t maxConnections = 64;        // accepted connections open at once
  std::chrono::milliseconds connectTimeout{500};
  std::chrono::milliseconds firstFrameTimeout{5000};
  // A peer that could not be reached is not tried again for this long (calls to it take
  // the other path meanwhile).
  std::chrono::milliseconds retryAfter{2000};
  // How long opening a TLS link may take once connected (handshake and the accepting
  // side's first frame).
  std::chrono::milliseconds handshakeTimeout{5000};
  // Mutual TLS on every link, in both directions (null: plain frames).
  std::shared_ptr<const http::LinkTls> tls{};
};

class PeerLinks {
 public:
  // Sends a reply envelope back on the connection a request came in on; any thread, once.
  using Reply = std::function<void(std::string envelope)>;
  // A request frame arrived (on the connection's thread). Returns false when it was
  // refused; the connection is then closed.
  using RequestHandler = std::function<bool(std::span<const uint8_t> envelope, Reply reply)>;
  // A reply frame for call `id` arrived (on the link's reading thread).
  using ReplyHandler = std::function<void(uint64_t id, std::span<const uint8_t> envelope)>;
  // A link broke while call `id` was sent on it and not answered (it may have run).
  using LostHandler = std::function<void(uint64_t id, const std::string& why)>;

  PeerLinks(PeerLinkOptions options, RequestHandler onRequest, ReplyHandler onReply,
            LostHandler onLost);
  ~PeerLinks();
  PeerLinks(const PeerLinks&) = delete;
  PeerLinks& operator=(const PeerLinks&) = delete;

  // Accepts connections on HOST:PORT (an IPv4 or IPv6 literal; port 0: any free port).
  // Errors: kInvalidArgument (bad host), kIo (cannot bind or listen).
  Result<void> listen(const std::string& host, uint16_t port);
  uint16_t port() const;

  // Sends call `id` to the node at `address` (HOST:PORT literal) on its link. Returns false
  // when the call was not sent: no link is open yet (one is then opened in the background,
  // unless the peer was unreachable within retryAfter), or the link broke before the frame
  // was written. The caller then takes another path. After true, exactly one of the reply
  // and lost handlers is called for `id`.
  bool send(const std::string& address, uint64_t id, std::string_view envelope);

  // What this node knows of its link to `address`.
  enum class LinkState { kNone, kConnecting, kOpen, kUnreachable };
  LinkState state(const std::string& address) const;

  // Stops accepting and reading, closes the outgoing links and waits for every thread.
  // Replies to calls already received still go out on their connections; calls sent and
  // not answered get the lost handler.
  void stop();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace tern::cluster
