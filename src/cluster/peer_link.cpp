#include "cluster/peer_link.h"

#include "cluster/membership.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <climits>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "util/thread_annotations.h"

namespace tern::cluster {

namespace {

using Clock = std::chrono::steady_clock;

void putU32(uint8_t* p, uint32_t v) {
  for (int i = 3; i >= 0; --i, v >>= 8) p[i] = static_cast<uint8_t>(v);
}
void putU64(uint8_t* p, uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<uint8_t>(v);
}
uint64_t getBE(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

// A socket address from a literal host and a port.
bool toSockaddr(const std::string& host, uint16_t port, sockaddr_storage& out, socklen_t& len) {
  std::memset(&out, 0, sizeof out);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out);
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

// Reads exactly `n` bytes from a blocking socket; false on end of stream, error or timeout.
bool readExact(int fd, uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t r = ::recv(fd, p, n, 0);
    if (r > 0) {
      p += r;
      n -= static_cast<size_t>(r);
    } else if (r < 0 && errno == EINTR) {
      continue;
    } else {
      return false;
    }
  }
  return true;
}

void putHeader(uint8_t* header, uint64_t id, size_t envelopeBytes) {
  putU32(header, static_cast<uint32_t>(8 + envelopeBytes));
  putU64(header + 4, id);
}

// Writes a frame (header and envelope) completely to a blocking socket; false when the
// connection failed.
bool writeFrame(int fd, uint64_t id, std::string_view envelope) {
  uint8_t header[kFrameHeaderBytes];
  putHeader(header, id, envelope.size());
  iovec iov[2] = {{header, sizeof header},
                  {const_cast<char*>(envelope.data()), envelope.size()}};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  size_t left = sizeof header + envelope.size();
  while (left > 0) {
    ssize_t w = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    left -= static_cast<size_t>(w);
    // Skip what was written.
    auto done = static_cast<size_t>(w);
    while (msg.msg_iovlen > 0 && done >= msg.msg_iov[0].iov_len) {
      done -= msg.msg_iov[0].iov_len;
      ++msg.msg_iov;
      --msg.msg_iovlen;
    }
    if (msg.msg_iovlen > 0) {
      msg.msg_iov[0].iov_base = static_cast<char*>(msg.msg_iov[0].iov_base) + done;
      msg.msg_iov[0].iov_len -= done;
    }
  }
  return true;
}

void setNoDelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void setReceiveTimeout(int fd, std::chrono::milliseconds t) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(t.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((t.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

void setBlocking(int fd, bool blocking) {
  int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, blocking ? flags & ~O_NONBLOCK : flags | O_NONBLOCK);
}

// "HOST:PORT" of a socket address, for log lines.
std::string describe(const sockaddr_storage& sa) {
  char host[INET6_ADDRSTRLEN] = "?";
  if (sa.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&sa);
    ::inet_ntop(AF_INET, &v4->sin_addr, host, sizeof host);
    return fmt::format("{}:{}", host, ntohs(v4->sin_port));
  }
  const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&sa);
  ::inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host);
  return fmt::format("[{}]:{}", host, ntohs(v6->sin6_port));
}

// OpenSSL's socket BIO writes with write(2), which raises SIGPIPE on a connection the peer
// has closed; this one sends with MSG_NOSIGNAL (the process's signal dispositions are not
// the library's to change). The descriptor is the BIO's data. The method table is made once
// and never changed.
BIO_METHOD* linkBioMethod() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "tern direct link");
    BIO_meth_set_write(m, [](BIO* bio, const char* p, int n) -> int {
      BIO_clear_retry_flags(bio);
      int fd = static_cast<int>(reinterpret_cast<intptr_t>(BIO_get_data(bio)));
      ssize_t w = ::send(fd, p, static_cast<size_t>(n), MSG_NOSIGNAL);
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        BIO_set_retry_write(bio);
      }
      return static_cast<int>(w);
    });
    BIO_meth_set_read(m, [](BIO* bio, char* p, int n) -> int {
      BIO_clear_retry_flags(bio);
      int fd = static_cast<int>(reinterpret_cast<intptr_t>(BIO_get_data(bio)));
      ssize_t r = ::recv(fd, p, static_cast<size_t>(n), 0);
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        BIO_set_retry_read(bio);
      }
      return static_cast<int>(r);
    });
    BIO_meth_set_ctrl(m, [](BIO*, int cmd, long, void*) -> long {
      return cmd == BIO_CTRL_FLUSH ? 1 : 0;
    });
    BIO_meth_set_create(m, [](BIO* bio) -> int {
      BIO_set_init(bio, 1);
      return 1;
    });
    return m;
  }();
  return method;
}

// OpenSSL's reason for the last failure on this thread, and its error queue emptied.
std::string openSslReason(int sslError) {
  unsigned long e = ERR_peek_last_error();
  std::string why;
  if (e != 0) {
    const char* r = ERR_reason_error_string(e);
    why = r ? r : "unknown TLS error";
  } else if (sslError == SSL_ERROR_SYSCALL || sslError == SSL_ERROR_ZERO_RETURN) {
    why = errno != 0 ? std::strerror(errno) : "the connection closed";
  } else {
    why = fmt::format("TLS error {}", sslError);
  }
  ERR_clear_error();
  return why;
}

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
class Connection {
 public:
  Connection(int fd, SSL* ssl) : fd_(fd), ssl_(ssl) {}
  ~Connection() {
    if (ssl_) SSL_free(ssl_);
    ::close(fd_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  int fd() const { return fd_; }
  bool tls() const { return ssl_ != nullptr; }

  void shut() {
    if (!shut_.exchange(true)) ::shutdown(fd_, SHUT_RDWR);
  }
  // Ends reading only: replies to calls already received can still be written.
  void stopReading() { ::shutdown(fd_, SHUT_RD); }
  // Whether the other end has closed or reset the connection (without reading from it).
  bool peerClosed() const {
    pollfd p{fd_, POLLRDHUP, 0};
    return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
  }

  // TLS: runs the handshake (on the thread that owns the connection before it is shared),
  // by `deadline`. Empty on success, else why it failed.
  std::string handshake(Clock::time_point deadline) {
    while (true) {
      int r = 0, err = 0;
      std::string why;
      {
        MutexLock lock(sslMu_);
        ERR_clear_error();
        errno = 0;
        r = SSL_do_handshake(ssl_);
        if (r == 1) return {};
        err = SSL_get_error(ssl_, r);
        if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
          long verdict = SSL_get_verify_result(ssl_);
          why = verdict != X509_V_OK ? verdictText(verdict) : openSslReason(err);
        }
      }
      if (!why.empty()) return why;
      if (!waitFor(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) {
        return "the TLS handshake timed out";
      }
    }
  }

  // Reads exactly `n` bytes; false on end of stream, error, or (TLS) `deadline` passing
  // (a plain socket's own receive timeout bounds its reads). failure() then says why.
  bool read(uint8_t* p, size_t n, std::optional<Clock::time_point> deadline = {}) {
    if (!ssl_) return readExact(fd_, p, n);
    while (n > 0) {
      int r = 0, err = 0;
      {
        MutexLock lock(sslMu_);
        ERR_clear_error();
        errno = 0;
        r = SSL_read(ssl_, p, static_cast<int>(std::min<size_t>(n, INT_MAX)));
        if (r <= 0) {
          err = SSL_get_error(ssl_, r);
          if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
            failure_ = openSslReason(err);
            return false;
          }
        }
      }
      if (r > 0) {
        p += r;
        n -= static_cast<size_t>(r);
      } else if (!waitFor(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) {
        failure_ = "timed out";
        return false;
      }
    }
    return true;
  }
  // Why the last read failed (TLS; the reading thread's own).
  const std::string& failure() const { return failure_; }

  // Writes one frame, whole, after any frame another thread is writing.
  bool write(uint64_t id, std::string_view envelope) {
    MutexLock order(writeMu_);
    if (shut_) return false;
    if (!ssl_) return writeFrame(fd_, id, envelope);
    // One buffer, so that a frame goes out as one TLS record when it fits in one.
    std::string frame(kFrameHeaderBytes + envelope.size(), '\0');
    putHeader(reinterpret_cast<uint8_t*>(frame.data()), id, envelope.size());
    std::memcpy(frame.data() + kFrameHeaderBytes, envelope.data(), envelope.size());
    size_t done = 0;
    while (done < frame.size()) {
      int r = 0, err = 0;
      {
        MutexLock lock(sslMu_);
        ERR_clear_error();
        r = SSL_write(ssl_, frame.data() + done,
                      static_cast<int>(std::min<size_t>(frame.size() - done, INT_MAX)));
        if (r <= 0) err = SSL_get_error(ssl_, r);
        ERR_clear_error();
      }
      if (r > 0) {
        done += static_cast<size_t>(r);
      } else if (shut_) {
        return false;
      } else if (err == SSL_ERROR_WANT_WRITE) {
        if (!waitFor(POLLOUT, std::nullopt)) return false;
      } else if (err == SSL_ERROR_WANT_READ) {
        // TLS 1.3 without renegotiation gives a writer no handshake to wait for; should
        // OpenSSL still ask, the reading thread consumes what arrives, so this waits a
        // little and tries again rather than wait for bytes another thread may take.
        waitFor(POLLIN, Clock::now() + std::chrono::milliseconds(10));
      } else {
        return false;
      }
    }
    return true;
  }

 private:
  static std::string verdictText(long verdict) {
    switch (verdict) {
      case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return "its certificate does not name the address connected to";
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
      case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
      case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
      case X509_V_ERR_CERT_UNTRUSTED:
      case X509_V_ERR_CERT_SIGNATURE_FAILURE:
        return fmt::format("its certificate is not signed by the site's CA (--peer-ca): {}",
                           X509_verify_cert_error_string(verdict));
      default:
        return fmt::format("its certificate was refused: {}",
                           X509_verify_cert_error_string(verdict));
    }
  }

  // Waits (no lock held) until the socket is ready for `events`, or has failed or closed;
  // false when `deadline` passed first.
  bool waitFor(short events, std::optional<Clock::time_point> deadline) {
    while (true) {
      int timeout = -1;
      if (deadline) {
        auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - Clock::now());
        if (left.count() <= 0) return false;
        timeout = static_cast<int>(std::min<int64_t>(left.count(), INT_MAX));
      }
      pollfd p{fd_, events, 0};
      int n = ::poll(&p, 1, timeout);
      if (n > 0) return true;
      if (n == 0) return false;
      if (errno != EINTR) return true;  // the next call reports the failure
    }
  }

  const int fd_;
  SSL* const ssl_;     // null: plain; every call on it holds sslMu_
  Mutex sslMu_;
  Mutex writeMu_;      // frames are written whole, one at a time
  std::atomic<bool> shut_{false};
  std::string failure_;
};

// A TLS object for a new connection on `fd`, accepting or connecting (then expecting the
// peer's certificate to name `host`, an IP literal). Null when OpenSSL cannot make one.
SSL* newTls(const http::LinkTls& tls, int fd, bool accepting, const std::string& host = {}) {
  SSL* ssl = SSL_new(tls.ctx);
  BIO* bio = ssl ? BIO_new(linkBioMethod()) : nullptr;
  if (!bio) {
    SSL_free(ssl);
    ERR_clear_error();
    return nullptr;
  }
  BIO_set_data(bio, reinterpret_cast<void*>(static_cast<intptr_t>(fd)));
  SSL_set_bio(ssl, bio, bio);
  if (accepting) {
    SSL_set_accept_state(ssl);
  } else {
    SSL_set_connect_state(ssl);
    if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str()) != 1) {
      SSL_free(ssl);
      ERR_clear_error();
      return nullptr;
    }
  }
  return ssl;
}

}  // namespace

struct PeerLinks::Impl : std::enable_shared_from_this<PeerLinks::Impl> {
  PeerLinkOptions opt;
  RequestHandler onRequest;
  ReplyHandler onReply;
  LostHandler onLost;

  int listenFd = -1;
  int wakePipe[2] = {-1, -1};
  uint16_t boundPort = 0;
  std::thread acceptor;
  std::atomic<bool> stopping{false};

  // Outgoing links, by peer address.
  struct Link {
    std::shared_ptr<Connection> conn;
    std::string address;
    Mutex mu;
    std::set<uint64_t> outstanding TERN_GUARDED_BY(mu);  // calls sent, not answered
    bool broken TERN_GUARDED_BY(mu) = false;
  };
  Mutex mu;
  std::map<std::string, std::shared_ptr<Link>> links TERN_GUARDED_BY(mu);
  std::map<std::string, Clock::time_point> unreachableUntil TERN_GUARDED_BY(mu);
  std::set<std::string> connecting TERN_GUARDED_BY(mu);  // links being opened
  // Why the last attempt to open a link to each peer failed, so that a failure is logged
  // as a warning when it is new and not again every retryAfter.
  std::map<std::string, std::string> lastFailure TERN_GUARDED_BY(mu);
  std::vector<std::weak_ptr<Connection>> inbound TERN_GUARDED_BY(mu);
  // Outgoing, connecting or in a handshake.
  std::vector<std::weak_ptr<Connection>> opening TERN_GUARDED_BY(mu);
  uint32_t inboundOpen TERN_GUARDED_BY(mu) = 0;
  // Threads running (the acceptor excluded); stop() waits until there are none.
  uint32_t threads TERN_GUARDED_BY(mu) = 0;
  std::condition_variable threadsDone;

  void startThread(std::function<void()> body) TERN_EXCLUDES(mu) {
    {
      MutexLock lock(mu);
      ++threads;
    }
    std::thread([self = shared_from_this(), body = std::move(body)]() mutable {
      body();
      body = nullptr;  // what it holds (a connection) goes before the thread counts as done
      self->threadEnded();
    }).detach();
  }
  // A thread counted in `threads` ends.
  void threadEnded() TERN_EXCLUDES(mu) {
    MutexLock lock(mu);
    if (--threads == 0) threadsDone.notify_all();
  }

  void acceptLoop() TERN_EXCLUDES(mu);
  // Reads and answers the requests of one accepted connection (TLS: after the handshake)
  // until it ends; `peer` names the other end in log lines.
  void serve(std::shared_ptr<Connection> conn, const std::string& peer) TERN_EXCLUDES(mu);
  // Connects to `address` (and, with TLS, completes the handshake and receives the
  // accepting side's first frame). Null, with `why`, when the link cannot be used.
  std::shared_ptr<Link> open(const std::string& address, std::string& why) TERN_EXCLUDES(mu);
  // Opens a link to `address` (on its own thread), installs it and reads its replies until
  // it breaks; marks the peer unreachable for retryAfter when it cannot be opened.
  void connect(const std::string& address) TERN_EXCLUDES(mu);
  void readReplies(std::shared_ptr<Link> link) TERN_EXCLUDES(mu);
  // Marks the link broken and returns its unanswered calls (each to be reported lost once).
  std::vector<uint64_t> breakLink(Link& link) TERN_EXCLUDES(link.mu);
};

void PeerLinks::Impl::acceptLoop() {
  pollfd fds[2] = {{listenFd, POLLIN, 0}, {wakePipe[0], POLLIN, 0}};
  while (!stopping) {
    int n = ::poll(fds, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (stopping || fds[1].revents) break;
    if (!(fds[0].revents & POLLIN)) continue;
    sockaddr_storage from{};
    socklen_t fromLen = sizeof from;
    int fd = ::accept4(listenFd, reinterpret_cast<sockaddr*>(&from), &fromLen, SOCK_CLOEXEC);
    if (fd < 0) continue;
    SSL* ssl = nullptr;
    if (opt.tls && !(ssl = newTls(*opt.tls, fd, /*accepting=*/true))) {
      spdlog::warn("cluster: direct link from {} refused: cannot start TLS", describe(from));
      ::close(fd);
      continue;
    }
    auto conn = std::make_shared<Connection>(fd, ssl);
    {
      MutexLock lock(mu);
      if (inboundOpen >= opt.maxConnections) {
        spdlog::warn("cluster: direct link refused: {} connections already open",
                     opt.maxConnections);
        continue;  // closed as `conn` goes
      }
      ++inboundOpen;
      std::erase_if(inbound, [](const auto& w) { return w.expired(); });
      inbound.push_back(conn);
    }
    setNoDelay(fd);
    setReceiveTimeout(fd, opt.firstFrameTimeout);
    startThread([this, conn, peer = describe(from)] {
      serve(conn, peer);
      MutexLock lock(mu);
      --inboundOpen;
    });
  }
}

void PeerLinks::Impl::serve(std::shared_ptr<Connection> conn, const std::string& peer) {
  const auto firstFrameBy = Clock::now() + opt.firstFrameTimeout;
  // Both ends speak the same: TLS begins with a handshake record (0x16); a frame begins
  // with its length's high byte, 0 for any frame within the limits.
  uint8_t first = 0;
  ssize_t peeked;
  do {
    peeked = ::recv(conn->fd(), &first, 1, MSG_PEEK);  // bounded by the receive timeout
  } while (peeked < 0 && errno == EINTR);
  if (peeked != 1) {
    conn->stopReading();
    return;
  }
  if (conn->tls() != (first == 0x16)) {
    if (conn->tls()) {
      spdlog::warn("cluster: direct link from {} refused: it sends plain frames and this "
                   "node's direct links use TLS (a peer without --peer-ca?)",
                   peer);
    } else {
      spdlog::warn("cluster: direct link from {} refused: it begins a TLS handshake and this "
                   "node's direct links are plain (a peer with --peer-ca?)",
                   peer);
    }
    conn->shut();
    return;
  }
  if (conn->tls()) {
    setBlocking(conn->fd(), false);
    if (std::string why = conn->handshake(firstFrameBy); !why.empty()) {
      if (!stopping) spdlog::warn("cluster: direct link from {} refused: {}", peer, why);
      conn->shut();
      return;
    }
    // The link is accepted: the connecting side waits for this before it sends a call.
    if (!conn->write(0, {})) {
      conn->shut();
      return;
    }
  }
  bool firstFrame = true;
  std::vector<uint8_t> frame;
  while (!stopping) {
    std::optional<Clock::time_point> by;
    if (firstFrame) by = firstFrameBy;
    uint8_t header[kFrameHeaderBytes];
    if (!conn->read(header, sizeof header, by)) break;
    uint64_t length = getBE(header, 4);
    if (length < 8 || length - 8 > opt.maxEnvelopeBytes) {
      spdlog::warn("cluster: direct link from {} closed: a frame of {} bytes (limit {})", peer,
                   length, opt.maxEnvelopeBytes + 8);
      break;
    }
    uint64_t id = getBE(header + 4, 8);
    frame.resize(length - 8);
    if (!conn->read(frame.data(), frame.size(), by)) break;
    // The reply keeps the connection open until it is written.
    Reply reply = [conn, id](std::string envelope) { conn->write(id, envelope); };
    if (!onRequest(frame, std::move(reply))) {  // refused: logged and counted there
      conn->shut();
      return;
    }
    if (firstFrame) {
      firstFrame = false;
      setReceiveTimeout(conn->fd(), std::chrono::milliseconds(0));  // idle links are normal
    }
  }
  // The peer went away, sent a bad frame, or this node is stopping: calls still running
  // here answer on the connection if it is still there.
  conn->stopReading();
}

std::shared_ptr<PeerLinks::Impl::Link> PeerLinks::Impl::open(const std::string& address,
                                                              std::string& why) {
  auto hp = splitHostPort(address);
  sockaddr_storage sa;
  socklen_t len = 0;
  if (!hp.ok() || !toSockaddr(hp->first, hp->second, sa, len)) {
    why = "not an IP address and port";
    return nullptr;
  }
  int fd = ::socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    why = fmt::format("socket: {}", std::strerror(errno));
    return nullptr;
  }
  SSL* ssl = opt.tls ? newTls(*opt.tls, fd, /*accepting=*/false, hp->first) : nullptr;
  auto conn = std::make_shared<Connection>(fd, ssl);
  if (opt.tls && !ssl) {
    why = "cannot start TLS";
    return nullptr;
  }
  {
    // stop() ends a connection still being opened rather than wait for its handshake.
    MutexLock lock(mu);
    if (stopping) {
      why = "this node is stopping";
      return nullptr;
    }
    std::erase_if(opening, [](const auto& w) { return w.expired(); });
    opening.push_back(conn);
  }
  int r = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), len);
  if (r < 0 && errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, static_cast<int>(opt.connectTimeout.count())) != 1) {
      why = "the connection timed out";
      return nullptr;
    }
    int err = 0;
    socklen_t el = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err != 0) {
      why = std::strerror(err);
      return nullptr;
    }
  } else if (r < 0) {
    why = std::strerror(errno);
    return nullptr;
  }
  setNoDelay(fd);
  if (conn->tls()) {
    auto by = Clock::now() + opt.handshakeTimeout;
    if (std::string failed = conn->handshake(by); !failed.empty()) {
      why = "TLS handshake: " + failed;
      return nullptr;
    }
    // TLS 1.3 ends the connecting side's handshake before the other side has checked its
    // certificate: the link is used once that side says it accepted it.
    uint8_t header[kFrameHeaderBytes];
    if (!conn->read(header, sizeof header, by)) {
      why = fmt::format("the peer did not accept the link ({})", conn->failure());
      return nullptr;
    }
    if (getBE(header, 4) != 8 || getBE(header + 4, 8) != 0) {
      why = "the peer's first frame is not the link's acceptance";
      return nullptr;
    }
  } else {
    setBlocking(fd, true);
  }
  auto link = std::make_shared<Link>();
  link->conn = std::move(conn);
  link->address = address;
  return link;
}

std::vector<uint64_t> PeerLinks::Impl::breakLink(Link& link) {
  link.conn->shut();
  MutexLock lock(link.mu);
  link.broken = true;
  std::vector<uint64_t> lost(link.outstanding.begin(), link.outstanding.end());
  link.outstanding.clear();
  return lost;
}

void PeerLinks::Impl::connect(const std::string& address) {
  std::string why;
  auto link = open(address, why);
  bool newFailure = false;
  {
    MutexLock lock(mu);
    connecting.erase(address);
    if (!link || stopping) {
      unreachableUntil[address] = Clock::now() + opt.retryAfter;
      if (!link) {
        auto& last = lastFailure[address];
        newFailure = last != why;
        last = why;
      }
    } else {
      unreachableUntil.erase(address);
      lastFailure.erase(address);
      links[address] = link;
    }
  }
  if (!link || stopping) {
    if (!link && !stopping) {
      spdlog::log(newFailure ? spdlog::level::warn : spdlog::level::debug,
                  "cluster: no direct link to {}: {}; calls to it go through NATS (tried "
                  "again after {} ms)",
                  address, why, opt.retryAfter.count());
    }
    return;
  }
  readReplies(link);  // until the link breaks
}

void PeerLinks::Impl::readReplies(std::shared_ptr<Link> link) {
  std::vector<uint8_t> frame;
  std::string why = "the connection closed";
  while (true) {
    uint8_t header[kFrameHeaderBytes];
    if (!link->conn->read(header, sizeof header)) break;
    uint64_t length = getBE(header, 4);
    if (length < 8 || length - 8 > opt.maxEnvelopeBytes) {
      why = fmt::format("the peer sent a frame of {} bytes", length);
      break;
    }
    uint64_t id = getBE(header + 4, 8);
    frame.resize(length - 8);
    if (!link->conn->read(frame.data(), frame.size())) break;
    {
      MutexLock lock(link->mu);
      if (link->outstanding.erase(id) == 0) continue;  // not a call of ours
    }
    onReply(id, frame);
  }
  {
    MutexLock lock(mu);
    auto it = links.find(link->address);
    if (it != links.end() && it->second == link) links.erase(it);
  }
  for (uint64_t id : breakLink(*link)) {
    onLost(id, fmt::format("direct link to {} lost: {}", link->address, why));
  }
}

PeerLinks::PeerLinks(PeerLinkOptions options, RequestHandler onRequest, ReplyHandler onReply,
                     LostHandler onLost)
    : impl_(std::make_shared<Impl>()) {
  impl_->opt = options;
  impl_->onRequest = std::move(onRequest);
  impl_->onReply = std::move(onReply);
  impl_->onLost = std::move(onLost);
}

PeerLinks::~PeerLinks() { stop(); }

Result<void> PeerLinks::listen(const std::string& host, uint16_t port) {
  Impl& c = *impl_;
  sockaddr_storage sa;
  socklen_t len = 0;
  if (!toSockaddr(host, port, sa, len)) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("direct link address must be an IP literal, got \"{}\"", host));
  }
  int fd = ::socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd >= 0) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&sa), len) != 0 || ::listen(fd, 64) != 0 ||
      ::pipe2(c.wakePipe, O_CLOEXEC) != 0) {
    int err = errno;
    if (fd >= 0) ::close(fd);
    return Error(ErrorCode::kIo, fmt::format("cannot listen for direct links on {}:{}: {}", host,
                                             port, std::strerror(err)));
  }
  sockaddr_storage bound;
  socklen_t bl = sizeof bound;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bl);
  c.boundPort = ntohs(bound.ss_family == AF_INET
                          ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                          : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  c.listenFd = fd;
  c.acceptor = std::thread([impl = impl_] { impl->acceptLoop(); });
  return {};
}

uint16_t PeerLinks::port() const { return impl_->boundPort; }

bool PeerLinks::send(const std::string& address, uint64_t id, std::string_view envelope) {
  Impl& c = *impl_;
  if (c.stopping || envelope.size() > c.opt.maxEnvelopeBytes) return false;
  std::shared_ptr<Impl::Link> link;
  {
    MutexLock lock(c.mu);
    if (auto it = c.links.find(address); it != c.links.end()) {
      link = it->second;
    } else {
      // No link yet: one is opened in the background and this call takes the other path,
      // so a slow or filtered peer never holds the calling (serving) thread.
      if (auto down = c.unreachableUntil.find(address);
          (down == c.unreachableUntil.end() || Clock::now() >= down->second) &&
          c.connecting.insert(address).second) {
        ++c.threads;
        std::thread([impl = impl_, address] {
          impl->connect(address);
          impl->threadEnded();
        }).detach();
      }
      return false;
    }
  }
  if (link->conn->peerClosed()) {
    // The peer went away and the link's thread has not noticed yet: the call must not be
    // written (a write still succeeds locally, and it would then be reported lost although
    // it never reached the peer). The link's thread retires the link.
    link->conn->shut();
    return false;
  }
  {
    MutexLock lock(link->mu);
    if (link->broken) return false;
    link->outstanding.insert(id);
  }
  if (link->conn->write(id, envelope)) return true;
  // Not (completely) written: unless the reading thread already reported it lost, the call
  // was not sent and takes another path.
  MutexLock lock(link->mu);
  return link->outstanding.erase(id) == 0;
}

PeerLinks::LinkState PeerLinks::state(const std::string& address) const {
  Impl& c = *impl_;
  MutexLock lock(c.mu);
  if (c.links.count(address)) return LinkState::kOpen;
  if (c.connecting.count(address)) return LinkState::kConnecting;
  auto down = c.unreachableUntil.find(address);
  if (down != c.unreachableUntil.end() && Clock::now() < down->second) {
    return LinkState::kUnreachable;
  }
  return LinkState::kNone;
}

void PeerLinks::stop() {
  Impl& c = *impl_;
  if (c.stopping.exchange(true)) return;
  if (c.wakePipe[1] >= 0) {
    char b = 1;
    [[maybe_unused]] auto w = ::write(c.wakePipe[1], &b, 1);
  }
  if (c.acceptor.joinable()) c.acceptor.join();
  std::vector<std::shared_ptr<Connection>> in, out;
  {
    MutexLock lock(c.mu);
    for (auto& w : c.inbound) {
      if (auto conn = w.lock()) in.push_back(std::move(conn));
    }
    for (auto& [address, link] : c.links) out.push_back(link->conn);
    for (auto& w : c.opening) {
      if (auto conn = w.lock()) out.push_back(std::move(conn));
    }
  }
  for (auto& conn : in) conn->stopReading();  // replies to running calls still go out
  for (auto& conn : out) conn->shut();
  in.clear();
  out.clear();
  {
    MutexLock lock(c.mu);
    lock.wait(c.threadsDone, [&]() TERN_REQUIRES(c.mu) { return c.threads == 0; });
  }
  if (c.listenFd >= 0) ::close(c.listenFd);
  for (int& fd : c.wakePipe) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  c.listenFd = -1;
}

}  // namespace tern::cluster
