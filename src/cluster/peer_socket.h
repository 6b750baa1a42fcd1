#pragma once
// The sockets under direct links (peer_link.h): one TCP connection, plain or mutual TLS,
// that reads and writes the links' frames, and the socket helpers the listener and the
// connecting side share. Internal to src/cluster: only peer_link.cpp and peer_socket.cpp
// include it. It knows frames (length, call id, bytes), not what they carry.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <sys/socket.h>

#include "http/tls.h"
#include "util/thread_annotations.h"

struct ssl_st;  // OpenSSL's SSL

namespace tern::cluster {

using LinkClock = std::chrono::steady_clock;

// A socket address from a literal host (IPv4 or IPv6) and a port; false for anything else.
bool toSockaddr(const std::string& host, uint16_t port, sockaddr_storage& out, socklen_t& len);
// "HOST:PORT" ("[HOST]:PORT" for IPv6) of a socket address, for log lines.
std::string describe(const sockaddr_storage& sa);
void setNoDelay(int fd);
// Reads on a blocking socket fail after `t` without data (0: never).
void setReceiveTimeout(int fd, std::chrono::milliseconds t);
void setBlocking(int fd, bool blocking);

// The big-endian number in the `n` bytes at `p` (a frame's length and call id).
uint64_t readBigEndian(const uint8_t* p, int n);

// A TLS object for a new connection on `fd`, accepting or connecting (then expecting the
// peer's certificate to name `host`, an IP literal). Null when OpenSSL cannot make one.
enum class TlsRole : uint8_t { kAccepting, kConnecting };
ssl_st* newLinkTls(const http::LinkTls& tls, int fd, TlsRole role, const std::string& host = {});

// One TCP connection, plain or TLS. The descriptor is closed only when the last user lets
// go, so a late reply never writes to a number the process has reused; shut() ends its use.
//
// A plain connection's socket blocks. A TLS connection's does not: OpenSSL's SSL object
// does not allow an SSL_read on one thread while another thread calls SSL_write, so every
// call on it is made under `sslMu_`, and a call that needs the socket to be readable or
// writable returns at once (WANT_READ / WANT_WRITE), lets go of the mutex and waits with
// poll() before it tries again. The mutex is thus held only while OpenSSL works on bytes
// already there, never while one direction waits for the network, so a reader blocked on
// an idle link never delays a writer, nor the reverse.
class PeerSocket {
 public:
  // Takes `fd` and `ssl` (null: plain).
  PeerSocket(int fd, ssl_st* ssl) : fd_(fd), ssl_(ssl) {}
  ~PeerSocket();
  PeerSocket(const PeerSocket&) = delete;
  PeerSocket& operator=(const PeerSocket&) = delete;

  int fd() const { return fd_; }
  bool tls() const { return ssl_ != nullptr; }

  // Ends both directions (once); reads and writes in progress fail.
  void shut();
  // Ends reading only: replies to calls already received can still be written.
  void stopReading();
  // Whether the other end has closed or reset the connection (without reading from it).
  bool peerClosed() const;

  // TLS: runs the handshake (on the thread that owns the connection before it is shared),
  // by `deadline`. Empty on success, else why it failed.
  std::string handshake(LinkClock::time_point deadline) TERN_EXCLUDES(sslMu_);

  // Reads exactly `n` bytes; false on end of stream, error, or (TLS) `deadline` passing
  // (a plain socket's own receive timeout bounds its reads). failure() then says why.
  bool read(uint8_t* p, size_t n, std::optional<LinkClock::time_point> deadline = {})
      TERN_EXCLUDES(sslMu_);
  // Why the last read failed (TLS; the reading thread's own).
  const std::string& failure() const { return failure_; }

  // Writes one frame (header and envelope), whole, after any frame another thread is
  // writing. False when the connection failed or was shut.
  bool write(uint64_t id, std::string_view envelope) TERN_EXCLUDES(writeMu_, sslMu_);

 private:
  // Waits (no lock held) until the socket is ready for `events`, or has failed or closed;
  // false when `deadline` passed first.
  bool waitFor(short events, std::optional<LinkClock::time_point> deadline);

  const int fd_;
  ssl_st* const ssl_;  // null: plain; every call on it holds sslMu_
  Mutex sslMu_;
  Mutex writeMu_;      // frames are written whole, one at a time
  std::atomic<bool> shut_{false};
  std::string failure_;
};

}  // namespace tern::cluster
