#pragma once
// A function provider for tests: a loopback HTTP server whose latency and failures the
// test sets while it runs. Each request (POST of any path) is answered after `delayMs` with
// 200 {"provider": NAME, "path": PATH, "bytes": BODY LENGTH, "probe": bool}, except that
// every `failEvery`-th request, call or probe (0: none), is dropped: the connection is
// closed without a byte of response, so the function did not run there. One thread per connection; calls
// and probes are counted separately (a probe carries X-Tern-Probe: 1).

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace tern::test {

class ProviderServer {
 public:
  explicit ProviderServer(std::string name, int delayMs = 0);
  ~ProviderServer();
  ProviderServer(const ProviderServer&) = delete;
  ProviderServer& operator=(const ProviderServer&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void setDelayMs(int ms) { delayMs_ = ms; }
  void setFailEvery(int n) { failEvery_ = n; }
  int calls() const { return calls_.load(); }          // answered, not probes
  int dropped() const { return dropped_.load(); }
  int probes() const { return probes_.load(); }

 private:
  void serve();
  void handle(int fd);
  std::string name_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<int> delayMs_;
  std::atomic<int> failEvery_{0};
  std::atomic<int> seen_{0}, calls_{0}, dropped_{0}, probes_{0};
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::vector<std::thread> workers_;
  std::thread acceptor_;
};

}  // namespace tern::test
