#pragma once
// A real nats-server for tests: loopback only, a free port, JetStream with its store in
// the test's directory so a restarted server keeps streams and buckets. Stopped (SIGTERM)
// on destruction.

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>

namespace tern::test {

class NatsProcess {
 public:
  explicit NatsProcess(std::filesystem::path dir);
  ~NatsProcess();

  uint16_t port() const { return port_; }
  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
  bool running() const { return pid_ > 0; }
  // SIGTERM and wait; start() again serves on the same port with the same store.
  void stop();
  void start();

 private:
  std::filesystem::path dir_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

}  // namespace tern::test
