#pragma once
// A TCP proxy on loopback that delays every new connection by an adjustable time before
// connecting it to its upstream, then relays bytes both ways: a slower network for tests
// (these machines have no tc netem).

#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace tern::test {

class DelayProxy {
 public:
  DelayProxy(uint16_t upstreamPort, int delayMs);
  ~DelayProxy();
  DelayProxy(const DelayProxy&) = delete;
  DelayProxy& operator=(const DelayProxy&) = delete;

  uint16_t port() const { return port_; }
  void setDelay(int ms) { delayMs_ = ms; }
  // New connections go to `port` (a node restarted on another port).
  void setUpstream(uint16_t port) { upstream_ = port; }

 private:
  void acceptLoop();
  void relay(int client);
  std::atomic<uint16_t> upstream_;
  std::atomic<int> delayMs_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::vector<int> open_;  // sockets to shut down at the end
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

}  // namespace tern::test
