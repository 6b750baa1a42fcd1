#pragma once
// A loopback HTTP endpoint that misbehaves on purpose, standing in for a Serverless
// function or a broken node: each request is answered by its mode.
//   kAnswer   200 with {"bytes": LENGTH OF THE BODY}
//   kHang     reads the request and never answers (the connection stays open)
//   kGarbage  200 with an HTML body
//   kNotHttp  bytes that are not HTTP, then closes
//   kError    500 with a short body
//   kFixed    200 with the JSON body it was made with

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace tern::test {

class FakeHttpEndpoint {
 public:
  enum class Mode { kAnswer, kHang, kGarbage, kNotHttp, kError, kFixed };
  explicit FakeHttpEndpoint(Mode mode);
  // kFixed: every request is answered with `body`.
  explicit FakeHttpEndpoint(std::string body);
  ~FakeHttpEndpoint();
  FakeHttpEndpoint(const FakeHttpEndpoint&) = delete;
  FakeHttpEndpoint& operator=(const FakeHttpEndpoint&) = delete;

  uint16_t port() const { return port_; }
  // http://127.0.0.1:PORT followed by `path`.
  std::string url(const std::string& path = "") const;
  int calls() const { return calls_.load(); }

 private:
  FakeHttpEndpoint(Mode mode, std::string body);
  void serve();
  Mode mode_;
  std::string body_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> calls_{0};
  std::vector<int> held_;
  std::thread thread_;
};

}  // namespace tern::test
