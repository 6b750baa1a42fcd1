#include "fake_http.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "test_support.h"

namespace tern::test {

FakeHttpEndpoint::FakeHttpEndpoint(Mode mode) : FakeHttpEndpoint(mode, std::string()) {}

FakeHttpEndpoint::FakeHttpEndpoint(std::string body) : FakeHttpEndpoint(Mode::kFixed, std::move(body)) {}

FakeHttpEndpoint::FakeHttpEndpoint(Mode mode, std::string body) : mode_(mode), body_(std::move(body)) {
  fd_ = listenOnLoopback(&port_);
  thread_ = std::thread([this] { serve(); });
}

FakeHttpEndpoint::~FakeHttpEndpoint() {
  stopping_ = true;
  ::shutdown(fd_, SHUT_RDWR);
  ::close(fd_);
  thread_.join();
  for (int c : held_) ::close(c);
}

std::string FakeHttpEndpoint::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

void FakeHttpEndpoint::serve() {
  while (!stopping_) {
    int c = ::accept(fd_, nullptr, nullptr);
    if (c < 0) return;
    std::string req;
    char buf[65536];
    size_t need = std::string::npos;
    while (true) {
      ssize_t n = ::read(c, buf, sizeof buf);
      if (n <= 0) break;
      req.append(buf, static_cast<size_t>(n));
      size_t end = req.find("\r\n\r\n");
      if (end != std::string::npos && need == std::string::npos) {
        size_t cl = req.find("Content-Length: ");
        need = end + 4 + (cl == std::string::npos ? 0 : std::stoul(req.substr(cl + 16)));
      }
      if (need != std::string::npos && req.size() >= need) break;
    }
    ++calls_;
    if (mode_ == Mode::kHang) {
      held_.push_back(c);
      continue;
    }
    std::string resp;
    if (mode_ == Mode::kNotHttp) {
      resp = "\x16\x03\x01 this is not HTTP\r\n\r\n";
    } else {
      int status = mode_ == Mode::kError ? 500 : 200;
      std::string body = mode_ == Mode::kAnswer ? nlohmann::json{{"bytes", req.size() - req.find("\r\n\r\n") - 4}}.dump()
                         : mode_ == Mode::kGarbage ? "<html>oops</html>"
                         : mode_ == Mode::kFixed   ? body_
                                                   : "internal error";
      resp = "HTTP/1.1 " + std::to_string(status) + (status == 200 ? " OK" : " Internal Server Error") +
             "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
             "\r\nConnection: close\r\n\r\n" + body;
    }
    (void)!::write(c, resp.data(), resp.size());
    ::close(c);
  }
}

}  // namespace tern::test
