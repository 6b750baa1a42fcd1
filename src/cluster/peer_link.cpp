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

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <fmt/format.h>

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

// Reads exactly `n` bytes; false on end of stream, error or timeout.
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

// Writes a frame (header and envelope) completely; false when the connection failed.
bool writeFrame(int fd, uint64_t id, std::string_view envelope) {
  uint8_t header[kFrameHeaderBytes];
  putU32(header, static_cast<uint32_t>(8 + envelope.size()));
  putU64(header + 4, id);
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

// One TCP connection. The descriptor is closed only when the last user lets go, so a
// late reply never writes to a number the process has reused; shutdown() ends its use.
struct Connection {
  explicit Connection(int f) : fd(f) {}
  ~Connection() { ::close(fd); }
  void shut() {
    if (!shut_.exchange(true)) ::shutdown(fd, SHUT_RDWR);
  }
  // Ends reading only: replies to calls already received can still be written.
  void stopReading() { ::shutdown(fd, SHUT_RD); }
  // Whether the other end has closed or reset the connection (without reading from it).
  bool peerClosed() const {
    pollfd p{fd, POLLRDHUP, 0};
    return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
  }
  bool write(uint64_t id, std::string_view envelope) {
    std::lock_guard lock(writeMu);
    return !shut_ && writeFrame(fd, id, envelope);
  }
  const int fd;
  std::mutex writeMu;
  std::atomic<bool> shut_{false};
};

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
    std::mutex mu;
    std::set<uint64_t> outstanding;  // calls sent, not answered
    bool broken = false;
  };
  std::mutex mu;
  std::map<std::string, std::shared_ptr<Link>> links;
  std::map<std::string, Clock::time_point> unreachableUntil;
  std::set<std::string> connecting;  // links being opened
  std::vector<std::weak_ptr<Connection>> inbound;
  uint32_t inboundOpen = 0;
  // Threads running (the acceptor excluded); stop() waits until there are none.
  uint32_t threads = 0;
  std::condition_variable threadsDone;

  void startThread(std::function<void()> body) {
    {
      std::lock_guard lock(mu);
      ++threads;
    }
    std::thread([self = shared_from_this(), body = std::move(body)]() mutable {
      body();
      body = nullptr;  // what it holds (a connection) goes before the thread counts as done
      std::lock_guard lock(self->mu);
      if (--self->threads == 0) self->threadsDone.notify_all();
    }).detach();
  }

  void acceptLoop();
  void serve(std::shared_ptr<Connection> conn);
  std::shared_ptr<Link> open(const std::string& address);
  // Opens a link to `address` (on its own thread), installs it and reads its replies until
  // it breaks; marks the peer unreachable for retryAfter when it cannot be opened.
  void connect(const std::string& address);
  void readReplies(std::shared_ptr<Link> link);
  // Marks the link broken and returns its unanswered calls (each to be reported lost once).
  std::vector<uint64_t> breakLink(Link& link);
};

void PeerLinks::Impl::acceptLoop() {
  pollfd fds[2] = {{listenFd, POLLIN, 0}, {wakePipe[0], POLLIN, 0}};
  while (!stopping) {
    int n = ::poll(fds, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (stopping || fds[1].revents) break;
    if (!(fds[0].revents & POLLIN)) continue;
    int fd = ::accept4(listenFd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    auto conn = std::make_shared<Connection>(fd);
    {
      std::lock_guard lock(mu);
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
    startThread([this, conn] {
      serve(conn);
      std::lock_guard lock(mu);
      --inboundOpen;
    });
  }
}

void PeerLinks::Impl::serve(std::shared_ptr<Connection> conn) {
  bool first = true;
  std::vector<uint8_t> frame;
  while (!stopping) {
    uint8_t header[kFrameHeaderBytes];
    if (!readExact(conn->fd, header, sizeof header)) break;
    uint64_t length = getBE(header, 4);
    if (length < 8 || length - 8 > opt.maxEnvelopeBytes) {
      spdlog::warn("cluster: direct link closed: a frame of {} bytes (limit {})", length,
                   opt.maxEnvelopeBytes + 8);
      break;
    }
    uint64_t id = getBE(header + 4, 8);
    frame.resize(length - 8);
    if (!readExact(conn->fd, frame.data(), frame.size())) break;
    // The reply keeps the connection open until it is written.
    Reply reply = [conn, id](std::string envelope) { conn->write(id, envelope); };
    if (!onRequest(frame, std::move(reply))) {  // refused: logged and counted there
      conn->shut();
      return;
    }
    if (first) {
      first = false;
      setReceiveTimeout(conn->fd, std::chrono::milliseconds(0));  // idle links are normal
    }
  }
  // The peer went away, sent a bad frame, or this node is stopping: calls still running
  // here answer on the connection if it is still there.
  conn->stopReading();
}

std::shared_ptr<PeerLinks::Impl::Link> PeerLinks::Impl::open(const std::string& address) {
  auto hp = splitHostPort(address);
  sockaddr_storage sa;
  socklen_t len = 0;
  if (!hp.ok() || !toSockaddr(hp->first, hp->second, sa, len)) return nullptr;
  int fd = ::socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return nullptr;
  auto conn = std::make_shared<Connection>(fd);
  int r = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), len);
  if (r < 0 && errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, static_cast<int>(opt.connectTimeout.count())) != 1) return nullptr;
    int err = 0;
    socklen_t el = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err != 0) return nullptr;
  } else if (r < 0) {
    return nullptr;
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  setNoDelay(fd);
  auto link = std::make_shared<Link>();
  link->conn = std::move(conn);
  link->address = address;
  return link;
}

std::vector<uint64_t> PeerLinks::Impl::breakLink(Link& link) {
  link.conn->shut();
  std::lock_guard lock(link.mu);
  link.broken = true;
  std::vector<uint64_t> lost(link.outstanding.begin(), link.outstanding.end());
  link.outstanding.clear();
  return lost;
}

void PeerLinks::Impl::connect(const std::string& address) {
  auto link = open(address);
  {
    std::lock_guard lock(mu);
    connecting.erase(address);
    if (!link || stopping) {
      unreachableUntil[address] = Clock::now() + opt.retryAfter;
      return;
    }
    unreachableUntil.erase(address);
    links[address] = link;
  }
  readReplies(link);  // until the link breaks
}

void PeerLinks::Impl::readReplies(std::shared_ptr<Link> link) {
  std::vector<uint8_t> frame;
  std::string why = "the connection closed";
  while (true) {
    uint8_t header[kFrameHeaderBytes];
    if (!readExact(link->conn->fd, header, sizeof header)) break;
    uint64_t length = getBE(header, 4);
    if (length < 8 || length - 8 > opt.maxEnvelopeBytes) {
      why = fmt::format("the peer sent a frame of {} bytes", length);
      break;
    }
    uint64_t id = getBE(header + 4, 8);
    frame.resize(length - 8);
    if (!readExact(link->conn->fd, frame.data(), frame.size())) break;
    {
      std::lock_guard lock(link->mu);
      if (link->outstanding.erase(id) == 0) continue;  // not a call of ours
    }
    onReply(id, frame);
  }
  {
    std::lock_guard lock(mu);
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
    std::lock_guard lock(c.mu);
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
          std::lock_guard lock(impl->mu);
          if (--impl->threads == 0) impl->threadsDone.notify_all();
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
    std::lock_guard lock(link->mu);
    if (link->broken) return false;
    link->outstanding.insert(id);
  }
  if (link->conn->write(id, envelope)) return true;
  // Not (completely) written: unless the reading thread already reported it lost, the call
  // was not sent and takes another path.
  std::lock_guard lock(link->mu);
  return link->outstanding.erase(id) == 0;
}

PeerLinks::LinkState PeerLinks::state(const std::string& address) const {
  Impl& c = *impl_;
  std::lock_guard lock(c.mu);
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
    std::lock_guard lock(c.mu);
    for (auto& w : c.inbound) {
      if (auto conn = w.lock()) in.push_back(std::move(conn));
    }
    for (auto& [address, link] : c.links) out.push_back(link->conn);
  }
  for (auto& conn : in) conn->stopReading();  // replies to running calls still go out
  for (auto& conn : out) conn->shut();
  in.clear();
  out.clear();
  std::unique_lock lock(c.mu);
  c.threadsDone.wait(lock, [&] { return c.threads == 0; });
  lock.unlock();
  if (c.listenFd >= 0) ::close(c.listenFd);
  for (int& fd : c.wakePipe) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  c.listenFd = -1;
}

}  // namespace tern::cluster
