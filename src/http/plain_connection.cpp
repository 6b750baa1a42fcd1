// Plain-HTTP connections, served by epoll loops of their own (docs/design/serving.md, "Plain
// connections"). Each loop owns its connections and runs their handlers inline; a
// response completed on another thread is sent from that thread and the loop is told.
// Every socket is registered once, edge-triggered, for both directions: a read that returns
// fewer bytes than it asked for means the socket is drained until the next edge, so a
// keep-alive request costs one recv, one sendmsg and a share of an epoll_wait.

#include "http/request_parser.h"
#include "http/server_internal.h"
#include "util/sanitizers.h"

#include <fcntl.h>
#include <linux/sockios.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace tern::http {

namespace {

// The first byte of a TLS connection: a handshake record (RFC 8446 5.1, content type 22).
constexpr unsigned char kTlsHandshakeRecord = 0x16;

// The loops' socket calls go to the kernel through syscall(2) rather than glibc's wrappers,
// which are cancellation points: each wrapper turns the thread's asynchronous cancellation
// on and off around the call, two atomic operations per call, and tern never cancels a
// thread. The results and errno are the same. ThreadSanitizer builds keep the wrappers,
// whose interceptors are how it sees a response sent on one thread and read on another.
#if TERN_THREAD_SANITIZER
ssize_t sysRecv(int fd, void* buf, size_t n) { return ::recv(fd, buf, n, 0); }
ssize_t sysSendmsg(int fd, const msghdr* msg, int flags) { return ::sendmsg(fd, msg, flags); }
int sysEpollWait(int epfd, epoll_event* events, int max, int timeoutMs) {
  return ::epoll_wait(epfd, events, max, timeoutMs);
}
#else
ssize_t sysRecv(int fd, void* buf, size_t n) {
  return syscall(SYS_recvfrom, fd, buf, n, 0, nullptr, nullptr);
}
ssize_t sysSendmsg(int fd, const msghdr* msg, int flags) {
  return syscall(SYS_sendmsg, fd, msg, flags);
}
// epoll_pwait without a signal mask is epoll_wait, and every architecture has it.
int sysEpollWait(int epfd, epoll_event* events, int max, int timeoutMs) {
  return static_cast<int>(syscall(SYS_epoll_pwait, epfd, events, max, timeoutMs, nullptr, 8));
}
#endif

int64_t toNs(std::chrono::milliseconds ms) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(ms).count();
}

}  // namespace

class PlainConnection;

// What a loop is asked to do for one of its connections, from any thread.
struct LoopTask {
  enum class Op { kStart, kAfterSend, kResume, kCloseIfIdle, kCloseForNewcomer };
  std::shared_ptr<PlainConnection> connection;
  Op op;
};

struct PlainLoops::Loop {
  explicit Loop(Server::Impl& s);
  ~Loop();

  // From any thread. On the loop's own thread the task runs after the current events,
  // without a system call.
  void post(LoopTask task);
  bool onThread() const { return current == this; }
  void run();
  void runTask(LoopTask& task);
  void sweep(int64_t now);

  Server::Impl& server;
  int epfd = -1;
  int wakeFd = -1;
  std::thread thread;
  std::atomic<bool> stopping{false};
  Mutex mu;
  std::vector<LoopTask> posted TERN_GUARDED_BY(mu);
  bool wakePending TERN_GUARDED_BY(mu) = false;
  // The loop's thread only.
  std::vector<LoopTask> local;
  std::list<std::shared_ptr<PlainConnection>> connections;
  // Closed during the current events; released after them, so that an event of the same
  // batch never finds its connection gone.
  std::vector<std::shared_ptr<PlainConnection>> closed;
  // The steady clock when epoll last returned, or when the last handler returned: the time
  // of what the loop does next, so the clock is read about twice per request instead of
  // five times. Deadlines set from it start at most one request's parsing early, and are
  // swept at a tenth of the shortest timeout anyway.
  int64_t now = 0;
  int64_t sweepEveryNs;
  static thread_local Loop* current;
};

thread_local PlainLoops::Loop* PlainLoops::Loop::current = nullptr;

class PlainConnection final : public Connection {
 public:
  using Loop = PlainLoops::Loop;

  PlainConnection(Loop& loop, int fd, std::shared_ptr<Client> client, std::string remote)
      : loop_(loop),
        server_(loop.server),
        fd_(fd),
        client_(std::move(client)),
        remote_(std::move(remote)),
        parser_(server_.options.maxHeaderBytes, server_.bodyLimit) {}

  ~PlainConnection() override {
    if (fd_ >= 0) ::close(fd_);
    server_.releaseUnsent(*client_, unsent_);
    server_.unregisterConnection(*this);
    if (upgraded_) return;  // the connection and its client slot went to the WebSocket
    server_.leaveClient(client_);
    server_.open.fetch_sub(1);
  }

  void closeIfIdle() override { loop_.post({self(), LoopTask::Op::kCloseIfIdle}); }
  void closeForNewcomer() override { loop_.post({self(), LoopTask::Op::kCloseForNewcomer}); }
  void resume() override { loop_.post({self(), LoopTask::Op::kResume}); }

  // The loop's thread from here on.

  void start(std::list<std::shared_ptr<PlainConnection>>::iterator at) {
    at_ = at;
    deadlineNs_ = loop_.now + toNs(server_.options.readTimeout);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = this;
    if (::epoll_ctl(loop_.epfd, EPOLL_CTL_ADD, fd_, &ev) != 0) {
      spdlog::warn("http: cannot watch the connection from {}: {}", remote_, std::strerror(errno));
      close();
    }
    // Bytes that arrived with the connection are reported by the registration itself.
  }

  void onEvents(uint32_t events) {
    if (closed_) return;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) readable_ = true;
    if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
      if (writing_) return writeRest();
    }
    if (!busy_ && !waiting_ && readable_) readAndParse();
  }

  void afterSend() {
    if (closed_) return;
    if (unsent_ > 0 && !sendFailed_) {
      writing_ = true;
      wroteLater_ = true;
      ackedAtLastCheck_ = acknowledged();
      deadlineNs_ = loop_.now + toNs(server_.options.writeTimeout);
      return writeRest();
    }
    finishResponse();
  }

  void onResume() {
    if (closed_) return;
    waiting_ = false;
    if (server_.stopping.load()) return close();
    if (waitingRequest_) {
      Request req = std::move(*waitingRequest_);
      waitingRequest_.reset();
      return runRequest(std::move(req));
    }
    // Waiting for the next request again: it may be idle for the idle timeout.
    if (inBegin_ == inEnd_ && !requestBegun_) {
      deadlineNs_ = loop_.now + toNs(server_.options.idleTimeout);
    }
    readAndParse();
  }

  void onCloseIfIdle() {
    if (!busy_) close();
  }

  void onCloseForNewcomer() {
    if (!awaitingNext_ || closed_) return;
    server_.idleClosed.fetch_add(1, std::memory_order_relaxed);
    close();
  }

  // The deadline passed: a request that did not arrive in time, an idle keep-alive
  // connection, or a write to check for progress.
  void onDeadline(int64_t now) {
    if (closed_ || deadlineNs_ == 0 || now < deadlineNs_) return;
    if (writing_) {
      // The write timeout bounds inactivity, not the whole transfer: it fails when the
      // client has acknowledged no byte during a whole timeout. Progress is read from the
      // kernel (sent minus still unacknowledged, SIOCOUTQ), not from the socket taking more
      // bytes: a socket buffer of megabytes takes more only after a large part of it
      // drains, which for a slow but steady reader can take longer than the timeout.
      uint64_t acked = acknowledged();
      if (acked != ackedAtLastCheck_) {
        ackedAtLastCheck_ = acked;
        deadlineNs_ = now + toNs(server_.options.writeTimeout);
        return;
      }
      sendFailed_ = true;
      return finishResponse();
    }
    if (busy_) return;
    // No 408 is sent: the client is not reading a response it has not finished asking for.
    if (requestBegun_) server_.badRequests.fetch_add(1, std::memory_order_relaxed);
    close();
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    server_.stopWaiting(*this);
    if (!busy_ || writing_) {
      // Nothing else touches the response: no handler is running.
      server_.releaseUnsent(*client_, std::exchange(unsent_, 0));
      std::string().swap(outBody_);
      if (writing_ && countsAsRequest_) server_.requestDone();
      writing_ = false;
    }
    // The descriptor stays open until the connection is destroyed, so that a response
    // still being produced can never be sent to another connection given the same number.
    ::epoll_ctl(loop_.epfd, EPOLL_CTL_DEL, fd_, nullptr);
    ::shutdown(fd_, SHUT_RDWR);
    loop_.closed.push_back(std::move(*at_));
    loop_.connections.erase(at_);
  }

 private:
  std::shared_ptr<PlainConnection> self() {
    return std::static_pointer_cast<PlainConnection>(shared_from_this());
  }

  // Before a new request is read the unsent-response budget must allow it: while it does
  // not, the connection is not read, so its requests wait in the socket.
  void nextRequest() {
    if (inBegin_ == inEnd_ && !requestBegun_) {
      // Idle since its response was handed to the socket (respond() noted when; a claim
      // for a newcomer may have taken that since, and the close it asked for follows).
      awaitingNext_ = true;
      int64_t now = loop_.now;
      if (std::exchange(wroteLater_, false)) idleSinceNs_.store(now, std::memory_order_relaxed);
      deadlineNs_ = now + toNs(server_.options.idleTimeout);
      if (!server_.proceedOrWait(self(), client_)) {
        waiting_ = true;
        deadlineNs_ = 0;
        return;
      }
    }
    readAndParse();
  }

  // Reads and parses until a request is handed on, the socket is drained, or the connection
  // closes. A request answered inline leads back here (finishResponse, nextRequest): that
  // call only notes it, and the loop below goes on with the next request, so that a client
  // pipelining requests without end never deepens the stack.
  void readAndParse() {
    if (reading_) {
      readAgain_ = true;
      return;
    }
    reading_ = true;
    readLoop();
    reading_ = false;
  }

  void readLoop() {
    for (;;) {
      if (inBegin_ == inEnd_) {
        inBegin_ = inEnd_ = 0;
        if (!readable_) return;
        if (!in_) in_ = std::make_unique<char[]>(kInCapacity);
        ssize_t n = sysRecv(fd_, in_.get(), kInCapacity);
        if (n == 0) return close();  // the client is gone (or shut its side down)
        if (n < 0) {
          if (errno == EINTR) continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK) {
            readable_ = false;
            return;
          }
          return close();
        }
        if (static_cast<size_t>(n) < kInCapacity) readable_ = false;
        inEnd_ = static_cast<size_t>(n);
        if (!sniffed_ && !sniff()) return;
      }
      if (!requestBegun_) {
        requestBegun_ = true;
        awaitingNext_ = false;
        idleSinceNs_.store(0, std::memory_order_relaxed);
        // A new connection's first request, and any request once it has begun, must arrive
        // whole within the read timeout.
        if (served_ > 0) deadlineNs_ = loop_.now + toNs(server_.options.readTimeout);
      }
      size_t used = 0;
      auto status = parser_.feed(std::string_view(in_.get() + inBegin_, inEnd_ - inBegin_), used);
      inBegin_ += used;
      switch (status) {
        case RequestParser::Status::kNeedMore:
          continue;
        case RequestParser::Status::kRefused: {
          const Refusal& r = parser_.refusal();
          return refuse(r.status, r.code, r.message);
        }
        case RequestParser::Status::kDone:
          readAgain_ = false;
          onRequest();
          if (closed_ || !std::exchange(readAgain_, false)) return;
          continue;
      }
    }
  }

  // A plain server closes a connection that begins a TLS handshake (it cannot answer in a
  // language the client understands) and logs it.
  bool sniff() {
    sniffed_ = true;
    if (static_cast<unsigned char>(in_[0]) != kTlsHandshakeRecord) return true;
    server_.badRequests.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("http: {} began a TLS handshake on port {}, which serves plain HTTP; "
                 "connection closed (use an http:// URL, or start ternd with --tls-cert)",
                 remote_, server_.boundPort);
    close();
    return false;
  }

  void onRequest() {
    ++served_;
    requestBegun_ = false;
    deadlineNs_ = 0;
    Arrival a = server_.takeRequest(parser_, remote_);
    keepAlive_ = a.keepAlive;
    version_ = a.version;
    isHead_ = a.isHead;
    switch (a.next) {
      case Arrival::Next::kRespond:
        return respondHere(std::move(*a.response), true);
      case Arrival::Next::kWebSocket:
        return becomeWebSocket(std::move(a.request), std::move(a.accept));
      case Arrival::Next::kRun:
        break;
    }
    // Requests that arrived together (a burst of new connections) were read before their
    // responses existed: the budget is checked again before one runs.
    if (!server_.proceedOrWait(self(), client_)) {
      waiting_ = true;
      waitingRequest_ = std::move(a.request);
      return;
    }
    runRequest(std::move(a.request));
  }

  void runRequest(Request&& req) {
    busy_ = true;
    inRun_ = true;
    server_.inFlight.fetch_add(1);
    server_.handler(std::move(req), [self = self()](Response res) {
      self->respond(std::move(res), true);
    });
    // A handler that ran inline took time of its own: the deadlines set after it start now.
    loop_.now = steadyNowNs();
    inRun_ = false;
    if (std::exchange(respondedInRun_, false)) afterSend();
  }

  // A response decided on the loop's thread (a refusal), not by the handler.
  void respondHere(Response res, bool countsAsRequest) {
    busy_ = true;
    inRun_ = true;
    if (countsAsRequest) server_.inFlight.fetch_add(1);
    respond(std::move(res), countsAsRequest);
    inRun_ = false;
    if (std::exchange(respondedInRun_, false)) afterSend();
  }

  // Answers an unreadable request and closes the connection afterwards.
  void refuse(int status, const char* code, const std::string& message) {
    server_.badRequests.fetch_add(1, std::memory_order_relaxed);
    keepAlive_ = false;
    deadlineNs_ = 0;
    respondHere(Server::Impl::refusalResponse(status, code, message), false);
  }

  // Sends the response from the thread that completed it (this connection's loop, a
  // worker, or the thread that delivers a cluster peer's reply) with one non-blocking send:
  // while a request is being handled the loop touches neither the socket's output nor the
  // response. The loop then goes on (at once when the handler answered inline), writing
  // the part that did not fit into the socket buffer, if any.
  void respond(Response res, bool countsAsRequest) {
    bool keepAlive = keepAlive_ && !server_.stopping.load();
    bool body = serializeHead(outHead_, res, version_, keepAlive, isHead_,
                              server_.options.serverHeader);
    outBody_ = body ? std::move(res.body) : std::string();
    written_ = 0;
    unsent_ = outHead_.size() + outBody_.size();
    server_.addUnsent(*client_, unsent_);
    keepAliveAfter_ = keepAlive;
    countsAsRequest_ = countsAsRequest;
    // A keep-alive connection is idle from the moment its client can have the whole
    // response, so that the order in which clients see responses is the order of idleness:
    // marked before the send (a client may act on the response before this thread runs
    // again), and unmarked if part of it is left for later (nextRequest marks it then).
    if (keepAlive) {
      int64_t now = loop_.onThread() ? loop_.now : steadyNowNs();
      idleSinceNs_.store(now, std::memory_order_relaxed);
    }
    iovec iov[2] = {{outHead_.data(), outHead_.size()}, {outBody_.data(), outBody_.size()}};
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = outBody_.empty() ? 1 : 2;
    ssize_t n = sysSendmsg(fd_, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      sentBytes(static_cast<size_t>(n));
    } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      sendFailed_ = true;
    }
    if (keepAlive && unsent_ > 0) idleSinceNs_.store(0, std::memory_order_relaxed);
    if (loop_.onThread() && inRun_) {
      respondedInRun_ = true;
      return;
    }
    loop_.post({self(), LoopTask::Op::kAfterSend});
  }

  void writeRest() {
    while (unsent_ > 0 && !sendFailed_) {
      size_t inHead = std::min(written_, outHead_.size());
      size_t inBody = written_ - inHead;
      iovec iov[2] = {{outHead_.data() + inHead, outHead_.size() - inHead},
                      {outBody_.data() + inBody, outBody_.size() - inBody}};
      msghdr msg{};
      msg.msg_iov = inHead < outHead_.size() ? iov : iov + 1;
      msg.msg_iovlen = inHead < outHead_.size() ? 2 : 1;
      ssize_t n = sysSendmsg(fd_, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0) {
        sentBytes(static_cast<size_t>(n));
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return;  // the next EPOLLOUT edge goes on
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        sendFailed_ = true;
      }
    }
    finishResponse();
  }

  void finishResponse() {
    busy_ = false;
    writing_ = false;
    deadlineNs_ = 0;
    // The body's memory goes back now, not when a later response replaces it.
    std::string().swap(outBody_);
    if (countsAsRequest_) server_.requestDone();
    if (sendFailed_ || !keepAliveAfter_) return close();
    nextRequest();
  }

  void sentBytes(size_t n) {
    written_ += n;
    totalWritten_ += n;
    unsent_ -= n;
    server_.releaseUnsent(*client_, n);
  }

  // Bytes of this connection's responses the client has acknowledged.
  uint64_t acknowledged() {
    int queued = 0;
    if (::ioctl(fd_, SIOCOUTQ, &queued) != 0) queued = 0;
    return totalWritten_ - static_cast<uint64_t>(std::max(queued, 0));
  }

  // Hands the socket to a WebSocket session on one of the server's Asio threads.
  void becomeWebSocket(
      Request req,
      std::function<std::shared_ptr<WebSocketListener>(std::shared_ptr<WebSocket>)> accept) {
    sockaddr_storage local{};
    socklen_t len = sizeof local;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&local), &len);
    ::epoll_ctl(loop_.epfd, EPOLL_CTL_DEL, fd_, nullptr);
    boost::asio::ip::tcp::socket socket(server_.nextIoContext());
    boost::system::error_code ec;
    socket.assign(local.ss_family == AF_INET6 ? boost::asio::ip::tcp::v6()
                                              : boost::asio::ip::tcp::v4(),
                  fd_, ec);
    if (ec) {
      spdlog::warn("http: cannot hand the connection from {} to its WebSocket: {}", remote_,
                   ec.message());
      return close();
    }
    fd_ = -1;
    upgraded_ = true;
    closed_ = true;
    server_.startWebSocket(std::move(socket), std::move(req), std::move(accept), client_, remote_);
    loop_.closed.push_back(std::move(*at_));
    loop_.connections.erase(at_);
  }

  static constexpr size_t kInCapacity = 16 * 1024;

  Loop& loop_;
  Server::Impl& server_;
  int fd_;
  std::shared_ptr<Client> client_;
  std::string remote_;
  std::list<std::shared_ptr<PlainConnection>>::iterator at_;  // in loop_.connections

  // The loop's thread only.
  RequestParser parser_;
  std::unique_ptr<char[]> in_;
  size_t inBegin_ = 0, inEnd_ = 0;  // bytes read and not parsed yet
  bool readable_ = false;           // the socket may have bytes (no short read since the edge)
  bool reading_ = false;            // readLoop() is on the stack
  bool readAgain_ = false;          // ...and should go on with the next request
  bool sniffed_ = false;            // the first byte was checked for a TLS handshake
  bool requestBegun_ = false;       // bytes of the next request were parsed
  bool awaitingNext_ = false;       // a keep-alive connection waiting for its next request
  bool waiting_ = false;            // waiting for the budget (resume() goes on)
  std::optional<Request> waitingRequest_;
  uint64_t served_ = 0;  // requests read on this connection
  int64_t deadlineNs_ = 0;
  bool writing_ = false;  // the rest of a response waits for the socket
  bool wroteLater_ = false;  // the last response was finished by the loop, not respond()
  uint64_t ackedAtLastCheck_ = 0;
  bool inRun_ = false;          // the handler is running on this thread
  bool respondedInRun_ = false;
  bool closed_ = false;
  bool upgraded_ = false;

  // Set on the loop's thread before the handler runs, read by respond().
  bool keepAlive_ = true;
  unsigned version_ = 11;
  bool isHead_ = false;
  // From the moment the handler runs until the loop goes on after the response, the
  // responding thread's: the loop's thread reads them only after the hand-off (or inline).
  bool busy_ = false;
  std::string outHead_;
  std::string outBody_;
  size_t written_ = 0;
  uint64_t totalWritten_ = 0;
  size_t unsent_ = 0;
  bool sendFailed_ = false;
  bool keepAliveAfter_ = false;
  bool countsAsRequest_ = false;
};

PlainLoops::Loop::Loop(Server::Impl& s) : server(s) {
  epfd = ::epoll_create1(EPOLL_CLOEXEC);
  wakeFd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;
  ::epoll_ctl(epfd, EPOLL_CTL_ADD, wakeFd, &ev);
  const auto& o = server.options;
  int64_t shortest = toNs(std::min({o.readTimeout, o.idleTimeout, o.writeTimeout}));
  sweepEveryNs = std::clamp<int64_t>(shortest / 10, 5'000'000, 250'000'000);
}

PlainLoops::Loop::~Loop() {
  if (epfd >= 0) ::close(epfd);
  if (wakeFd >= 0) ::close(wakeFd);
}

void PlainLoops::Loop::post(LoopTask task) {
  if (onThread()) {
    local.push_back(std::move(task));
    return;
  }
  bool wake = false;
  {
    MutexLock lock(mu);
    posted.push_back(std::move(task));
    wake = !std::exchange(wakePending, true);
  }
  if (wake) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wakeFd, &one, sizeof one);
  }
}

void PlainLoops::Loop::runTask(LoopTask& task) {
  auto& c = *task.connection;
  switch (task.op) {
    case LoopTask::Op::kStart:
      connections.push_back(task.connection);
      return c.start(std::prev(connections.end()));
    case LoopTask::Op::kAfterSend:
      return c.afterSend();
    case LoopTask::Op::kResume:
      return c.onResume();
    case LoopTask::Op::kCloseIfIdle:
      return c.onCloseIfIdle();
    case LoopTask::Op::kCloseForNewcomer:
      return c.onCloseForNewcomer();
  }
}

void PlainLoops::Loop::sweep(int64_t now) {
  for (auto it = connections.begin(); it != connections.end();) {
    auto& c = **it++;  // onDeadline may close (and unlist) this one
    c.onDeadline(now);
  }
}

void PlainLoops::Loop::run() {
  current = this;
  constexpr int kEvents = 64;
  epoll_event events[kEvents];
  std::vector<LoopTask> tasks;
  now = steadyNowNs();
  int64_t nextSweep = now + sweepEveryNs;
  while (!stopping.load(std::memory_order_relaxed)) {
    int timeoutMs = 0;
    if (local.empty()) {
      int64_t wait = nextSweep - now;
      timeoutMs = wait <= 0 ? 0 : static_cast<int>((wait + 999'999) / 1'000'000);
    }
    // Before it sleeps, the loop lets whatever else is runnable on its CPU go first and
    // looks again: a client or a peer on the same machine often has its next request ready
    // by then. Sleeping and being woken costs far more than the two calls (on a virtual
    // machine, several microseconds), and with wrk on the same two cores this took a node
    // from 0.33 sleeps per request to 0.05 (design/serving.md, "Plain connections").
    int n = sysEpollWait(epfd, events, kEvents, 0);
    if (n == 0 && timeoutMs > 0) {
      sched_yield();
      n = sysEpollWait(epfd, events, kEvents, 0);
      if (n == 0) n = sysEpollWait(epfd, events, kEvents, timeoutMs);
    }
    now = steadyNowNs();
    for (int i = 0; i < n; ++i) {
      if (events[i].data.ptr == nullptr) {
        uint64_t count;
        [[maybe_unused]] ssize_t r = ::read(wakeFd, &count, sizeof count);
        {
          MutexLock lock(mu);
          tasks.swap(posted);
          wakePending = false;
        }
        for (auto& t : tasks) runTask(t);
        tasks.clear();
        continue;
      }
      static_cast<PlainConnection*>(events[i].data.ptr)->onEvents(events[i].events);
    }
    while (!local.empty()) {
      tasks.swap(local);
      for (auto& t : tasks) runTask(t);
      tasks.clear();
    }
    if (now >= nextSweep) {
      sweep(now);
      nextSweep = now + sweepEveryNs;
    }
    closed.clear();
  }
  // Stopping: every connection closes here; responses still being produced elsewhere find
  // their socket shut.
  while (!connections.empty()) connections.front()->close();
  closed.clear();
  local.clear();
  MutexLock lock(mu);
  posted.clear();
}

PlainLoops::PlainLoops(Server::Impl& server, unsigned threads) : server_(server) {
  for (unsigned i = 0; i < std::max(1u, threads); ++i) {
    loops_.push_back(std::make_unique<Loop>(server));
  }
}

PlainLoops::~PlainLoops() { stop(); }

void PlainLoops::start() {
  for (auto& loop : loops_) loop->thread = std::thread([l = loop.get()] { l->run(); });
}

void PlainLoops::adopt(int fd, std::shared_ptr<Client> client, std::string remote) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    spdlog::warn("http: cannot make the connection from {} non-blocking: {}", remote,
                 std::strerror(errno));
  }
  auto& loop = *loops_[next_.fetch_add(1, std::memory_order_relaxed) % loops_.size()];
  auto connection = std::make_shared<PlainConnection>(loop, fd, std::move(client), std::move(remote));
  // Listed with its loop before the registry can ask anything of it.
  loop.post({connection, LoopTask::Op::kStart});
  server_.registerConnection(connection);
}

void PlainLoops::stop() {
  for (auto& loop : loops_) {
    if (!loop->thread.joinable()) continue;
    loop->stopping.store(true);
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(loop->wakeFd, &one, sizeof one);
    loop->thread.join();
  }
}

}  // namespace tern::http
