#include "cluster/peer_link.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "cluster/membership.h"
#include "cluster/peer_socket.h"
#include "util/thread_annotations.h"

namespace tern::cluster {

namespace {

using Clock = LinkClock;

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
    std::shared_ptr<PeerSocket> conn;
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
  std::vector<std::weak_ptr<PeerSocket>> inbound TERN_GUARDED_BY(mu);
  // Outgoing, connecting or in a handshake.
  std::vector<std::weak_ptr<PeerSocket>> opening TERN_GUARDED_BY(mu);
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
  void serve(std::shared_ptr<PeerSocket> conn, const std::string& peer) TERN_EXCLUDES(mu);
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
    ssl_st* ssl = nullptr;
    if (opt.tls && !(ssl = newLinkTls(*opt.tls, fd, TlsRole::kAccepting))) {
      spdlog::warn("cluster: direct link from {} refused: cannot start TLS", describe(from));
      ::close(fd);
      continue;
    }
    auto conn = std::make_shared<PeerSocket>(fd, ssl);
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

void PeerLinks::Impl::serve(std::shared_ptr<PeerSocket> conn, const std::string& peer) {
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
    uint64_t length = readBigEndian(header, 4);
    if (length < 8 || length - 8 > opt.maxEnvelopeBytes) {
      spdlog::warn("cluster: direct link from {} closed: a frame of {} bytes (limit {})", peer,
                   length, opt.maxEnvelopeBytes + 8);
      break;
    }
    uint64_t id = readBigEndian(header + 4, 8);
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
  ssl_st* ssl = opt.tls ? newLinkTls(*opt.tls, fd, TlsRole::kConnecting, hp->first) : nullptr;
  auto conn = std::make_shared<PeerSocket>(fd, ssl);
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
    if (readBigEndian(header, 4) != 8 || readBigEndian(header + 4, 8) != 0) {
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
    uint64_t length = readBigEndian(header, 4);
    if (length < 8 || length - 8 > opt.maxEnvelopeBytes) {
      why = fmt::format("the peer sent a frame of {} bytes", length);
      break;
    }
    uint64_t id = readBigEndian(header + 4, 8);
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
  std::vector<std::shared_ptr<PeerSocket>> in, out;
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
