#include "provider_server.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

#include <nlohmann/json.hpp>

#include "test_support.h"

namespace tern::test {

ProviderServer::ProviderServer(std::string name, int delayMs) : name_(std::move(name)), delayMs_(delayMs) {
  fd_ = listenOnLoopback(&port_);
  acceptor_ = std::thread([this] { serve(); });
}

ProviderServer::~ProviderServer() {
  stopping_ = true;
  ::shutdown(fd_, SHUT_RDWR);
  ::close(fd_);
  acceptor_.join();
  std::lock_guard lock(mu_);
  for (auto& t : workers_) t.join();
}

void ProviderServer::serve() {
  while (!stopping_) {
    int c = ::accept(fd_, nullptr, nullptr);
    if (c < 0) return;
    std::lock_guard lock(mu_);
    workers_.emplace_back([this, c] { handle(c); });
  }
}

void ProviderServer::handle(int c) {
  // Keep-alive: requests are answered one after the other until the client closes.
  std::string buf;
  char chunk[65536];
  for (;;) {
    size_t end;
    while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
      ssize_t n = ::read(c, chunk, sizeof chunk);
      if (n <= 0) return (void)::close(c);
      buf.append(chunk, static_cast<size_t>(n));
    }
    std::string head = buf.substr(0, end);
    size_t length = 0;
    for (const char* key : {"Content-Length: ", "content-length: "}) {
      if (auto at = head.find(key); at != std::string::npos) length = std::stoul(head.substr(at + 16));
    }
    while (buf.size() < end + 4 + length) {
      ssize_t n = ::read(c, chunk, sizeof chunk);
      if (n <= 0) return (void)::close(c);
      buf.append(chunk, static_cast<size_t>(n));
    }
    bool probe = head.find("X-Tern-Probe: 1") != std::string::npos;
    std::string path = head.substr(head.find(' ') + 1);
    path = path.substr(0, path.find(' '));
    buf.erase(0, end + 4 + length);
    int fail = failEvery_.load();
    if (fail > 0 && ++seen_ % fail == 0) {  // calls and probes alike
      ++dropped_;
      ::shutdown(c, SHUT_RDWR);
      return (void)::close(c);
    }
    if (int ms = delayMs_.load(); ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    (probe ? probes_ : calls_)++;
    std::string body = nlohmann::json{{"provider", name_}, {"path", path}, {"bytes", length}, {"probe", probe}}.dump();
    std::string resp = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\n\r\n" + body;
    if (::write(c, resp.data(), resp.size()) != static_cast<ssize_t>(resp.size())) return (void)::close(c);
  }
}

}  // namespace tern::test
