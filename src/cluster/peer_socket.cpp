#include "cluster/peer_socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "cluster/peer_link.h"
#include "util/openssl_errors.h"

namespace tern::cluster {

namespace {

void putU32(uint8_t* p, uint32_t v) {
  for (int i = 3; i >= 0; --i, v >>= 8) p[i] = static_cast<uint8_t>(v);
}
void putU64(uint8_t* p, uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<uint8_t>(v);
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

// Why an SSL call failed: OpenSSL's reason for the last failure on this thread (its error
// queue emptied), else what the socket said.
std::string openSslReason(int sslError) {
  if (ERR_peek_last_error() != 0) return takeOpenSslError("unknown TLS error");
  if (sslError == SSL_ERROR_SYSCALL || sslError == SSL_ERROR_ZERO_RETURN) {
    return errno != 0 ? std::strerror(errno) : "the connection closed";
  }
  return fmt::format("TLS error {}", sslError);
}

// Why the peer's certificate was refused, from the verification's verdict.
std::string verdictText(long verdict) {
  switch (certificateVerdict(verdict)) {
    case CertificateVerdict::kNameMismatch:
      return "its certificate does not name the address connected to";
    case CertificateVerdict::kUntrusted:
      return fmt::format("its certificate is not signed by the site's CA (--peer-ca): {}",
                         verifyResultText(verdict));
    default:
      return fmt::format("its certificate was refused: {}", verifyResultText(verdict));
  }
}

}  // namespace

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

uint64_t readBigEndian(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
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

ssl_st* newLinkTls(const http::LinkTls& tls, int fd, TlsRole role, const std::string& host) {
  SSL* ssl = SSL_new(tls.ctx);
  BIO* bio = ssl ? BIO_new(linkBioMethod()) : nullptr;
  if (!bio) {
    SSL_free(ssl);
    ERR_clear_error();
    return nullptr;
  }
  BIO_set_data(bio, reinterpret_cast<void*>(static_cast<intptr_t>(fd)));
  SSL_set_bio(ssl, bio, bio);
  if (role == TlsRole::kAccepting) {
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

PeerSocket::~PeerSocket() {
  if (ssl_) SSL_free(ssl_);
  ::close(fd_);
}

void PeerSocket::shut() {
  if (!shut_.exchange(true)) ::shutdown(fd_, SHUT_RDWR);
}

void PeerSocket::stopReading() { ::shutdown(fd_, SHUT_RD); }

bool PeerSocket::peerClosed() const {
  pollfd p{fd_, POLLRDHUP, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

std::string PeerSocket::handshake(LinkClock::time_point deadline) {
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

bool PeerSocket::read(uint8_t* p, size_t n, std::optional<LinkClock::time_point> deadline) {
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
bool PeerSocket::write(uint64_t id, std::string_view envelope) {
  MutexLock order(writeMu_);
  if (shut_) return false;
  if (!ssl_) return writeFrame(fd_, id, envelope);
  // One buffer, so that a frame goes out as one TLS record when it fits in one.
  std::string frame(kFrameHeaderBytes + envelope.size(), '\0');
  putHeader(reinterpret_cast<uint8_t*>(frame.data()), id, envelope.size());
  // An empty envelope (the acceptance frame) may have no data pointer at all.
  if (!envelope.empty()) {
    std::memcpy(frame.data() + kFrameHeaderBytes, envelope.data(), envelope.size());
  }
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
      waitFor(POLLIN, LinkClock::now() + std::chrono::milliseconds(10));
    } else {
      return false;
    }
  }
  return true;
}

bool PeerSocket::waitFor(short events, std::optional<LinkClock::time_point> deadline) {
  while (true) {
    int timeout = -1;
    if (deadline) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - LinkClock::now());
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

}  // namespace tern::cluster
