#include "delay_proxy.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

#include "test_support.h"

namespace tern::test {


DelayProxy::DelayProxy(uint16_t upstreamPort, int delayMs) : upstream_(upstreamPort), delayMs_(delayMs) {
  fd_ = listenOnLoopback(&port_);
  acceptor_ = std::thread([this] { acceptLoop(); });
}

DelayProxy::~DelayProxy() {
  stopping_ = true;
  ::shutdown(fd_, SHUT_RDWR);
  acceptor_.join();
  {
    std::lock_guard lock(mu_);
    for (int s : open_) ::shutdown(s, SHUT_RDWR);
  }
  for (auto& t : threads_) t.join();
  for (int s : open_) ::close(s);
  ::close(fd_);
}

void DelayProxy::acceptLoop() {
  while (!stopping_) {
    int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    std::lock_guard lock(mu_);
    open_.push_back(c);
    threads_.emplace_back([this, c] { relay(c); });
  }
}

void DelayProxy::relay(int client) {
  // The delay, in slices so that the proxy can stop during it.
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(delayMs_.load());
  while (!stopping_ && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  int up = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  {
    std::lock_guard lock(mu_);
    open_.push_back(up);
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(upstream_.load());
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (stopping_ || ::connect(up, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::shutdown(client, SHUT_RDWR);
    return;
  }
  pollfd fds[2] = {{client, POLLIN, 0}, {up, POLLIN, 0}};
  char buf[65536];
  while (!stopping_) {
    if (::poll(fds, 2, 100) < 0) break;
    bool done = false;
    for (int k = 0; k < 2 && !done; ++k) {
      if (!(fds[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = ::read(fds[k].fd, buf, sizeof buf);
      if (n <= 0) {
        done = true;
        break;
      }
      for (ssize_t sent = 0; sent < n;) {
        ssize_t w = ::write(fds[1 - k].fd, buf + sent, static_cast<size_t>(n - sent));
        if (w <= 0) {
          done = true;
          break;
        }
        sent += w;
      }
    }
    if (done) break;
  }
  ::shutdown(client, SHUT_RDWR);
  ::shutdown(up, SHUT_RDWR);
}

}  // namespace tern::test
