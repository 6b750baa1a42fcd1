#pragma once
// A real nats-server for tests: loopback only, a free port, JetStream with its store in
// the test's directory so a restarted server keeps streams and buckets, or the server a
// configuration file describes (a hub with leaf nodes). Stopped (SIGTERM) on destruction.
// With NatsTlsFiles it speaks only TLS and demands client certificates signed by the CA
// (`tls { cert_file key_file ca_file verify }`).

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace tern::test {

struct NatsTlsFiles {
  std::filesystem::path cert;  // the server's certificate (for localhost) and key
  std::filesystem::path key;
  std::filesystem::path ca;    // clients must present a certificate this CA signed
};

class NatsProcess {
 public:
  explicit NatsProcess(std::filesystem::path dir, std::optional<NatsTlsFiles> tls = std::nullopt);
  // A server run with `-c` on a file holding `listen: 127.0.0.1:PORT` and then `config`
  // (e.g. `jetstream { ... }` and `leafnodes { ... }` blocks); `{dir}` in it stands for
  // the server's directory.
  NatsProcess(std::filesystem::path dir, std::string config);
  ~NatsProcess();

  uint16_t port() const { return port_; }
  // With TLS the server is named "localhost", the name its certificate is checked for.
  std::string url() const {
    return (tls_ ? "nats://localhost:" : "nats://127.0.0.1:") + std::to_string(port_);
  }
  bool running() const { return pid_ > 0; }
  // SIGTERM and wait; start() again serves on the same port with the same store.
  void stop();
  void start();
  // SIGSTOP: the server keeps its connections open and answers nothing, as a server that
  // hangs would; resume() (SIGCONT) lets it go on. stop() resumes it first.
  void pause();
  void resume();

 private:
  std::filesystem::path dir_;
  std::string config_;  // empty: the default command line
  std::optional<NatsTlsFiles> tls_;
  pid_t pid_ = -1;
  bool paused_ = false;
  uint16_t port_ = 0;
};

}  // namespace tern::test
